"""R9's canary: a secret file outside the store, and a record of every attempt to open it.

Opens are seen through Python's audit hook rather than by replacing ``builtins.open``: the
hook hears ``open``, ``io.open``, ``os.open`` and ``pathlib`` alike, in every thread of
the process (the server's thread pool included), and each path is resolved, so opening
the canary through a symlink or a ``..`` counts too.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

SECRET = b"CANARY-SECRET"

_watches: list[OpenWatch] = []
_hook_installed = False


def _real(target: object) -> str | None:
    if isinstance(target, int):
        return None  # an already open descriptor
    try:
        return os.path.realpath(os.fsdecode(os.fspath(target)))
    except (TypeError, ValueError, OSError):
        return None


def _on_audit_event(event: str, args: tuple) -> None:
    if event != "open" or not _watches:
        return
    real = _real(args[0])
    for watch in _watches:
        if real in watch.paths:
            watch.opened.append(real)


class OpenWatch:
    """``with OpenWatch(path, ...) as watch:`` → ``watch.opened`` lists every open of them.

    Audit hooks cannot be removed, so one hook is installed per process and does nothing
    while no watch is active.
    """

    def __init__(self, *paths: str | os.PathLike[str]) -> None:
        self.paths = {os.path.realpath(p) for p in paths}
        self.opened: list[str] = []

    def add(self, path: str | os.PathLike[str]) -> None:
        self.paths.add(os.path.realpath(path))

    def __enter__(self) -> OpenWatch:
        global _hook_installed
        if not _hook_installed:
            sys.addaudithook(_on_audit_event)
            _hook_installed = True
        _watches.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _watches.remove(self)


def plant_canaries(store_path: Path, artifact_root: Path) -> list[Path]:
    """Secret files where a traversal would land: beside the store, and in a sibling of
    the artifact folder whose name starts with the folder's (CVE-2026-35397's shape)."""
    beside = store_path.parent / "canary"
    sibling = artifact_root.parent / f"{artifact_root.name}-secret" / "canary"
    sibling.parent.mkdir(parents=True, exist_ok=True)
    for secret in (beside, sibling):
        secret.write_bytes(SECRET)
    return [beside, sibling]


def link_digest_folder_to_sibling(artifact_root: Path, canary: OpenWatch) -> str:
    """``artifacts/cd -> artifacts-secret/cd``, holding a secret under a valid digest: a
    prefix check on the resolved path string would let it through, a component-wise one
    does not (the CVE-2026-35397 shape). Returns the digest; the secret is watched."""
    digest = "cd" * 32
    secret_dir = artifact_root.parent / f"{artifact_root.name}-secret" / digest[:2]
    secret_dir.mkdir(parents=True)
    (secret_dir / digest).write_bytes(SECRET)
    canary.add(secret_dir / digest)
    (artifact_root / digest[:2]).symlink_to(secret_dir, target_is_directory=True)
    return digest


class InotifyOpens:
    """Whether files were opened by any process, through any name (Linux inotify).

    The audit hook of :class:`OpenWatch` hears only this process, and not an ``os.open``
    relative to a folder descriptor; the kernel hears every open of the watched inodes,
    a server in another process included. ``with InotifyOpens(path) as watch:`` then
    ``watch.opened()``. The kernel merges identical events that follow each other, so
    this says whether an open happened, not how many.
    """

    IN_OPEN = 0x20

    def __init__(self, *paths: str | os.PathLike[str]) -> None:
        import ctypes
        import ctypes.util

        self._libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        self._fd = self._libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self._fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        for path in paths:
            if self._libc.inotify_add_watch(self._fd, os.fsencode(path), self.IN_OPEN) < 0:
                raise OSError(ctypes.get_errno(), f"inotify_add_watch {path}")
        self._seen = False

    def opened(self) -> bool:
        """Whether any watched file was opened since the watch began."""
        import struct

        while True:
            try:
                data = os.read(self._fd, 1 << 16)
            except BlockingIOError:
                return self._seen
            offset = 0
            while offset < len(data):
                _, mask, _, size = struct.unpack_from("iIII", data, offset)
                self._seen = self._seen or bool(mask & self.IN_OPEN)
                offset += 16 + size

    def __enter__(self) -> InotifyOpens:
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self._fd)
