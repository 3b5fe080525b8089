"""Files under DVC: a pointer instead of a copy.

A file a run reads is under DVC when a ``.dvc`` file beside it, or a ``dvc.lock`` in a
folder above it (up to the git repository's root), names it with an md5. When that md5 is
the file's own (DVC's plain md5 of a file's bytes) the run records it with the git
revision, so ``get_dataset`` can get the bytes back through ``dvc.api`` rather than from a
copy in the store: the file is not copied when the DVC file naming it is committed
unchanged at that revision. DVC itself is not needed to record this; the YAML of ``.dvc``
and ``dvc.lock`` files is read here.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

GIT_TIMEOUT_S = 5


def dvc_pointers(paths: list[str]) -> dict[str, dict[str, Any]]:
    """``{path: {md5, repo, path, rev, committed, source}}`` for those of ``paths`` under
    DVC whose recorded md5 is the file's. Never raises: a file we cannot judge is simply
    not under DVC."""
    found = {}
    for path in paths:
        try:
            pointer = _pointer(os.path.abspath(path))
        except Exception:  # noqa: BLE001 - unreadable YAML, no git, a file gone: no pointer
            pointer = None
        if pointer is not None:
            found[path] = pointer
    return found


def _pointer(path: str) -> dict[str, Any] | None:
    entry = _from_dvc_file(path) or _from_lock(path)
    if entry is None:
        return None
    md5, source = entry
    hasher = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(2**20), b""):
            hasher.update(block)
    digest = hasher.hexdigest()
    if digest != md5:
        return None  # the file changed since `dvc add`: DVC holds other bytes
    repo = _git(os.path.dirname(path), "rev-parse", "--show-toplevel")
    if repo is None:
        return None
    rev = _git(repo, "rev-parse", "HEAD")
    committed = rev is not None and _git(
        repo, "status", "--porcelain", "--", os.path.relpath(source, repo)) == ""
    return {"md5": md5, "repo": repo, "path": os.path.relpath(path, repo), "rev": rev,
            "committed": committed, "source": os.path.relpath(source, repo)}


def _yaml(path: str) -> Any:
    import yaml

    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def _md5_of(outs: Any, folder: str, path: str) -> str | None:
    for out in outs or []:
        if not isinstance(out, dict) or not isinstance(out.get("path"), str):
            continue
        named = os.path.normpath(os.path.join(folder, out["path"]))
        md5 = out.get("md5")
        if named == path and isinstance(md5, str) and not md5.endswith(".dir"):
            return md5
    return None


def _from_dvc_file(path: str) -> tuple[str, str] | None:
    source = path + ".dvc"
    if not os.path.isfile(source):
        return None
    md5 = _md5_of((_yaml(source) or {}).get("outs"), os.path.dirname(path), path)
    return (md5, source) if md5 else None


def _from_lock(path: str) -> tuple[str, str] | None:
    for lock in _locks_above(os.path.dirname(path), int(time.monotonic())):
        folder = os.path.dirname(lock)
        stages = (_yaml(lock) or {}).get("stages") or {}
        for stage in stages.values():
            if not isinstance(stage, dict):
                continue
            where = os.path.normpath(os.path.join(folder, stage.get("wdir") or "."))
            md5 = _md5_of(stage.get("outs"), where, path)
            if md5:
                return md5, lock
    return None


@lru_cache(maxsize=256)
def _locks_above(folder: str, _tick: int) -> tuple[str, ...]:
    """The dvc.lock files in ``folder`` and above it, up to its git repository's root;
    cached for a second: the files of one folder are read together."""
    found = []
    for above in (Path(folder), *Path(folder).parents):
        if (above / "dvc.lock").is_file():
            found.append(str(above / "dvc.lock"))
        if (above / ".git").exists():
            break
    return tuple(found)


@lru_cache(maxsize=256)
def _git_cached(folder: str, args: tuple[str, ...], _tick: int) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True,
                              timeout=GIT_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _git(folder: str, *args: str) -> str | None:
    # Cached for a second: one cell reading a thousand files of one repository asks once.
    return _git_cached(folder, args, int(time.monotonic()))


def record_pointers(conn: Any, pointers: list[tuple[str, dict[str, Any]]]) -> None:
    """Write ``(fingerprint, pointer)`` rows inside the caller's transaction."""
    conn.executemany(
        "INSERT OR REPLACE INTO dvc_files (fingerprint, md5, repo, path, rev, recorded) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [(fp, p["md5"], p["repo"], p["path"], p["rev"] if p["committed"] else None,
          time.time()) for fp, p in pointers])


def pointer_of(store: Any, fingerprint: str) -> dict[str, Any] | None:
    """The latest DVC pointer recorded for a file's fingerprint, with a revision."""
    rows = store.query("SELECT md5, repo, path, rev FROM dvc_files WHERE fingerprint = ? "
                       "AND rev IS NOT NULL ORDER BY recorded DESC LIMIT 1", (fingerprint,))
    if not rows:
        return None
    return dict(zip(("md5", "repo", "path", "rev"), rows[0]))


def read_from_dvc(pointer: dict[str, Any], what: str) -> bytes:
    """The file's bytes through ``dvc.api``; without DVC, an error that says how to get
    them."""
    from ..errors import NotFoundError, shorten

    call = (f"dvc.api.read({pointer['path']!r}, repo={pointer['repo']!r}, "
            f"rev={pointer['rev']!r}, mode='rb')")
    try:
        import dvc.api
    except ImportError:
        raise NotFoundError(
            f"{what} was not copied into the store: it is under DVC (md5 {pointer['md5']}). "
            f"Install DVC (pip install dvc) to get it back here, or run {call}.") from None
    try:
        return dvc.api.read(pointer["path"], repo=pointer["repo"], rev=pointer["rev"],
                            mode="rb")
    except Exception as exc:  # noqa: BLE001 - DVC's own errors, a repository gone, ...
        raise NotFoundError(
            f"{what} was not copied into the store: it is under DVC (md5 {pointer['md5']}), "
            f"and DVC could not read it at revision {pointer['rev'][:12]} "
            f"({type(exc).__name__}: {shorten(str(exc), 200)}). Get it into DVC's cache "
            f"(dvc fetch, or dvc pull from its remote, in {pointer['repo']}), then retry "
            f"or run {call}.") from None
