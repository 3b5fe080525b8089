"""Artifact bytes by sha256, and what the server knows of its store."""

from __future__ import annotations

import hashlib
import re
from typing import Any, BinaryIO

from ...errors import IntegrityError, NotFoundError, ValidationError, shorten
from ...store import Store
from ...store.artifacts import SHA256_RE
from .values import Relative, has_table

CHUNK = 1 << 20

# \Z, not $: a media type ending in "\n" would reach the Content-Type header.
MEDIA_TYPE_RE = re.compile(r"^[A-Za-z0-9][\w.+-]*/[A-Za-z0-9][\w.+-]*\Z")


class Artifact:
    """An artifact opened for serving: one descriptor, its labels, and a running sha256.

    :func:`open_artifact` has read it once and found its sha256 right before anything is
    sent; :meth:`read` hashes again what is sent, so :meth:`intact` tells whether the
    bytes changed in place on the way.
    """

    def __init__(self, handle: BinaryIO, sha256: str, size: int, head: bytes) -> None:
        self.handle, self.sha256, self.size, self.head = handle, sha256, size, head
        self._hasher = hashlib.sha256()
        self._read = 0

    def read(self, size: int) -> bytes:
        chunk = self.handle.read(size)
        self._hasher.update(chunk)
        self._read += len(chunk)
        return chunk

    def intact(self) -> bool:
        """Whether what :meth:`read` returned is exactly the artifact's bytes."""
        return self._read == self.size and self._hasher.hexdigest() == self.sha256

    def close(self) -> None:
        self.handle.close()


def _check_digest(sha256: Any) -> None:
    if not isinstance(sha256, str) or not SHA256_RE.fullmatch(sha256):
        raise ValidationError(f"An artifact digest is 64 lowercase hex characters; got "
                              f"{shorten(sha256)}.")


def open_artifact(store: Store | None, sha256: str) -> tuple[Artifact, dict[str, Any]]:
    """The artifact's bytes, opened once, and how to label them.

    The digest is checked (64 lowercase hex characters) before any file is looked at. The
    file is opened through the store's confined open (no link followed, a regular file
    inside the artifact folder), then read once to check its sha256: nothing of a file
    that is not the artifact is ever sent.
    """
    _check_digest(sha256)
    missing = NotFoundError(f"No artifact {sha256[:12]} in the store.")
    if store is None:
        raise missing
    rows = store.query(
        "SELECT name, media_type, size FROM artifacts WHERE sha256 = ? ORDER BY id LIMIT 1",
        (sha256,))
    recorded = bool(rows)
    if not recorded and has_table(store, "model_versions"):
        # Registered models keep their bytes in the same content-addressed folder.
        versions = store.query(
            "SELECT name, version, size FROM model_versions WHERE sha256 = ? LIMIT 1",
            (sha256,))
        if versions:
            name, version, size = versions[0]
            rows = [(f"{name}-v{version}.bin", None, size)]
    try:
        handle = store.artifacts.open(sha256)
    except (NotFoundError, IntegrityError):
        raise missing from None
    try:
        artifact = _verified(handle, sha256)
    except BaseException:
        handle.close()
        raise
    name, media_type, size = rows[0] if rows else (sha256, None, artifact.size)
    if not media_type or not MEDIA_TYPE_RE.match(media_type):
        media_type = _sniff(artifact.head)
    return artifact, {"name": name.replace("\\", "/").rsplit("/", 1)[-1],
                      "media_type": media_type, "size": size, "bytes": artifact.size,
                      "recorded": recorded}


def artifact_info(store: Store | None, sha256: str) -> dict[str, Any]:
    """How an artifact is labelled, after the same checks as :func:`open_artifact`."""
    artifact, info = open_artifact(store, sha256)
    artifact.close()
    return info


def _verified(handle: BinaryIO, sha256: str) -> Artifact:
    """Read the whole file once: its sha256 must be the digest it is served under."""
    hasher = hashlib.sha256()
    head = b""
    size = 0
    while chunk := handle.read(CHUNK):
        if not size:
            head = chunk[:8]
        hasher.update(chunk)
        size += len(chunk)
    actual = hasher.hexdigest()
    if actual != sha256:
        raise IntegrityError(
            f"Artifact file {sha256[:12]} was changed on disk (its sha256 is now "
            f"{actual[:12]}); it was not served. Log it again from its source."
        )
    handle.seek(0)
    return Artifact(handle, sha256, size, head)


def _sniff(head: bytes) -> str:
    """PNG and JPEG by their magic bytes (figures of evaluations), else opaque bytes."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    return "application/octet-stream"


def store_status(store: Store | None, relative: Relative, store_path: Any) -> dict[str, Any]:
    from ... import __version__

    where = relative(str(store_path))
    return {
        "version": __version__,
        "store": {
            "exists": store is not None,
            "path": where if where is not None else str(store_path).replace(
                "\\", "/").rsplit("/", 1)[-1],
            "schema_version": store.schema_version if store is not None else None,
        },
    }
