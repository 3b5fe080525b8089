"""The files a cell writes, noted while it runs and fingerprinted when it ends.

An audit hook (``sys.addaudithook``: it sees every ``open``, whatever library calls it) notes
the paths the kernel's own thread opens for writing while a top-level cell runs; at the end
each one still on disk gets its sha256 and size, stored with the execution. Writes made in C
without Python's ``open`` (some model savers), by other threads or by child processes are not
seen. The store's own files are left out.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
MAX_FILES = 100  # per execution: a cell writing thousands of files is a data job
MAX_HASHED = 256 * 2**20  # larger files are recorded with their size only
_IGNORED = ("/dev/", "/proc/", "/sys/")


class WriteRecorder:
    """Paths opened for writing between ``start`` and ``stop``, by the thread that started."""

    def __init__(self) -> None:
        self._paths: dict[str, None] | None = None
        self._thread: int | None = None
        self._exclude: str = ""

    def __call__(self, event: str, args: tuple) -> None:
        if event != "open" or self._paths is None or threading.get_ident() != self._thread:
            return
        path, _, flags = args
        if path is None or isinstance(path, int) or not flags & _WRITE_FLAGS:
            return
        try:
            absolute = os.path.abspath(os.fsdecode(path))
        except (TypeError, ValueError):
            return
        if absolute.startswith(_IGNORED) or absolute.startswith(self._exclude):
            return
        if len(self._paths) < MAX_FILES:
            self._paths[absolute] = None

    def start(self, exclude: str) -> None:
        self._thread = threading.get_ident()
        self._exclude = os.path.join(os.path.abspath(exclude), "")
        self._paths = {}

    def stop(self) -> list[tuple[str, str | None, int | None]]:
        """``(path, sha256, size)`` of the files written since ``start`` that exist."""
        paths, self._paths = self._paths or {}, None
        return [found for found in map(fingerprint_file, paths) if found is not None]


def fingerprint_file(path: str) -> tuple[str, str | None, int | None] | None:
    """``(path, sha256, size)`` of a regular file (no sha256 past ``MAX_HASHED``)."""
    try:
        size = os.stat(path).st_size
        if not os.path.isfile(path):
            return None
        if size > MAX_HASHED:
            return path, None, size
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(2**20), b""):
                digest.update(block)
        return path, digest.hexdigest(), size
    except OSError:
        return None


_recorder: WriteRecorder | None = None


def recorder() -> WriteRecorder:
    """This process's recorder; its audit hook is installed once (hooks cannot be removed)."""
    global _recorder
    if _recorder is None:
        _recorder = WriteRecorder()
        sys.addaudithook(_recorder)
    return _recorder
