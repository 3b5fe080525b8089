"""This user's signature on pickled bytes: an HMAC-SHA256 made with a key outside the store.

A sha256 in the store only proves the bytes were not changed *after* their row was
written; whoever can write the store can write a malicious pickle and its matching digest
as well. The signature closes that hole: it is made with a random key kept in
``~/.jupyter_mlops/key`` (mode 0600), so only this user's own jupyter_mlops can vouch for
the bytes it pickled. Signing the sha256 rather than the bytes costs microseconds and is as
strong, because the bytes are checked against that sha256 before anything trusts them.

The same key signs *statements* about store rows that decide what runs: which bytes a
model version is, which version an alias names, which script replay may run, which
digests the chunks of a large pickled file have (``chunks``). Each kind of
statement has its own domain string, and its fields are encoded as a JSON list, so a
signature made for one kind or one set of fields never stands for another.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import stat
import warnings
from collections.abc import Sequence
from pathlib import Path

KEY_FILE_ENV = "JUPYTER_MLOPS_KEY_FILE"
_DOMAIN = b"jupyter_mlops pickled bytes v1\0"
STATEMENT_KINDS = ("model version", "vouched model version", "alias", "replay script",
                   "environment", "chunk digests", "trigger", "pipeline files",
                   "pipeline cache entry")
# Keys read so far, by where they were looked up (the setting and the home folder): a
# load checks several signatures, and building a Path each time costs more than the HMACs.
_keys: dict[tuple[str | None, str | None], bytes] = {}
_warned: set[Path] = set()


def key_path() -> Path:
    """Where this user's key lives: ``$JUPYTER_MLOPS_KEY_FILE`` or ``~/.jupyter_mlops/key``."""
    configured = os.environ.get(KEY_FILE_ENV)
    return Path(configured) if configured else Path.home() / ".jupyter_mlops" / "key"


class KeyUnavailable(Exception):
    """The key cannot be read or created; the message says why and what to do."""


def _read_key(path: Path) -> bytes:
    info = path.lstat()
    if not stat.S_ISREG(info.st_mode):
        raise KeyUnavailable(f"{path} is not a regular file; remove it so a new key is made.")
    if info.st_mode & 0o077:
        raise KeyUnavailable(
            f"{path} can be read or written by other users, so it proves nothing; run "
            f"`chmod 600 {path}`."
        )
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        raise KeyUnavailable(f"{path} belongs to another user; remove it so a new key is made.")
    key = bytes.fromhex(path.read_text().strip())
    if len(key) < 32:
        raise KeyUnavailable(f"{path} holds no valid key; remove it so a new key is made.")
    return key


def _create_key(path: Path) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return  # another process made it first; read theirs
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_hex(32) + "\n")


def user_key(create: bool) -> bytes:
    """The key, made on first use when ``create``; raises KeyUnavailable otherwise."""
    lookup = (os.environ.get(KEY_FILE_ENV), os.environ.get("HOME"))
    if lookup in _keys:
        return _keys[lookup]
    path = key_path()
    try:
        if create and not path.exists():
            _create_key(path)
        key = _read_key(path)
    except FileNotFoundError:
        raise KeyUnavailable(f"there is no key at {path}") from None
    except (OSError, ValueError) as exc:
        raise KeyUnavailable(f"the key at {path} cannot be used ({exc})") from None
    _keys[lookup] = key
    return key


def _mac(key: bytes, sha256: str) -> str:
    # A digest is ASCII; anything else read from the store just fails to verify.
    text = str(sha256).encode("utf-8", "backslashreplace")
    return hmac.new(key, _DOMAIN + text, hashlib.sha256).hexdigest()


def _statement_mac(key: bytes, kind: str, fields: Sequence[object]) -> str:
    if kind not in STATEMENT_KINDS:
        raise ValueError(f"unknown kind of statement {kind!r}")
    body = json.dumps(list(fields), ensure_ascii=True, separators=(",", ":"), allow_nan=False)
    domain = f"jupyter_mlops {kind} v1\0".encode("ascii")
    return hmac.new(key, domain + body.encode("ascii"), hashlib.sha256).hexdigest()


def _warn_unsigned(exc: KeyUnavailable) -> None:
    path = key_path()
    if path not in _warned:
        _warned.add(path)
        warnings.warn(
            f"jupyter_mlops cannot sign pickled models: {exc}. They are stored, but "
            f"loading them will need allow_pickle=True. Set {KEY_FILE_ENV} to a "
            "writable path to fix this.", stacklevel=4)


def sign(sha256: str) -> str | None:
    """This user's signature of ``sha256``; None (and one warning) when no key can be made."""
    try:
        return _mac(user_key(create=True), sha256)
    except KeyUnavailable as exc:
        _warn_unsigned(exc)
        return None


def sign_statement(kind: str, fields: Sequence[object]) -> str | None:
    """This user's signature of a statement (see ``STATEMENT_KINDS``) about ``fields``
    (strings, integers or None); None (and one warning) when no key can be made."""
    try:
        return _statement_mac(user_key(create=True), kind, fields)
    except KeyUnavailable as exc:
        _warn_unsigned(exc)
        return None


def verify_statement(kind: str, fields: Sequence[object], signature: str | None) -> str | None:
    """None when ``signature`` is this user's for the statement, else the reason it is not."""
    if signature is None:
        return "it carries no signature of yours"
    try:
        key = user_key(create=False)
    except KeyUnavailable as exc:
        return f"its signature cannot be checked: {exc}"
    try:
        expected = _statement_mac(key, kind, fields)
    except (TypeError, ValueError):  # a value no jupyter_mlops writes (bytes, NaN, ...)
        return "its fields hold values jupyter_mlops never writes"
    if not isinstance(signature, str) or not hmac.compare_digest(expected, signature):
        return "its signature does not match your key"
    return None


def verify(sha256: str, signature: str | None) -> str | None:
    """None when ``signature`` is this user's for ``sha256``, else the reason it is not."""
    if signature is None:
        return ("it carries no signature of yours (it was stored by another user, by an "
                "older jupyter_mlops, or written into the store by other means)")
    try:
        key = user_key(create=False)
    except KeyUnavailable as exc:
        return f"its signature cannot be checked: {exc}"
    if not isinstance(signature, str) or not hmac.compare_digest(_mac(key, sha256), signature):
        return ("its signature does not match your key (the store was changed by someone "
                "else, or was written by another user)")
    return None
