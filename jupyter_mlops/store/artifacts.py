"""Content-addressed files: ``artifacts/<first two hex>/<sha256>``.

The same bytes are stored once however many runs log them. Files are written to a
temporary name (0600) and renamed into place, so a reader never sees half a file; folders
are made 0700. A disk that fills up half way leaves no temporary file behind and raises
StoreFullError.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from ..errors import (
    IntegrityError,
    NotFoundError,
    StoreFullError,
    ValidationError,
    shorten,
)
from .files import FULL_ERRNOS, make_private_folder

SHA256_RE = re.compile(r"^[0-9a-f]{64}\Z")
_CHUNK = 1 << 20


class ArtifactStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        # Folders this process made or found: a trial's few small files skip the checks.
        self._folders: set[Path] = set()

    def _folder(self, path: Path) -> None:
        if path not in self._folders:
            make_private_folder(path)
            self._folders.add(path)

    def path_for(self, sha256: str) -> Path:
        if not isinstance(sha256, str) or not SHA256_RE.fullmatch(sha256):
            raise ValidationError(
                f"An artifact digest is 64 lowercase hex characters; got {shorten(sha256)}."
            )
        return self.root / sha256[:2] / sha256

    def put_file(self, source: str | os.PathLike[str]) -> tuple[str, int]:
        """Copy a file in while hashing it, in bounded memory."""
        hasher = hashlib.sha256()
        size = 0

        def copy(out: BinaryIO) -> None:
            nonlocal size
            with open(source, "rb") as src:
                while chunk := src.read(_CHUNK):
                    hasher.update(chunk)
                    out.write(chunk)
                    size += len(chunk)

        self._write_atomically(lambda: self.path_for(hasher.hexdigest()), copy)
        return hasher.hexdigest(), size

    def put_bytes(self, data: bytes, sha256: str | None = None) -> tuple[str, int]:
        """Store ``data``; ``sha256`` is its digest when the caller has just computed it
        (hashing 50 MB twice costs as much as reading it)."""
        digest = sha256 or hashlib.sha256(data).hexdigest()
        target = self.path_for(digest)
        if not target.exists():
            self._write_atomically(lambda: target, lambda out: out.write(data))
        return digest, len(data)

    def _write_atomically(self, target: Callable[[], Path],
                          write: Callable[[BinaryIO], object]) -> None:
        """``write`` into a temporary file, then rename it to ``target()`` (known once
        written, for a file hashed on the way in) unless that file exists already."""
        tmp = None
        try:
            self._folder(self.root)
            try:
                fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".incoming-")
            except FileNotFoundError:  # the folder went away since: make it again
                self._folders.clear()
                self._folder(self.root)
                fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".incoming-")
            with os.fdopen(fd, "wb") as out:
                write(out)
            final = target()
            if final.exists():
                os.unlink(tmp)
            else:
                self._folder(final.parent)
                try:
                    os.replace(tmp, final)
                except FileNotFoundError:
                    self._folders.discard(final.parent)
                    self._folder(final.parent)
                    os.replace(tmp, final)
        except BaseException as exc:
            if tmp is not None and os.path.exists(tmp):
                os.unlink(tmp)
            if isinstance(exc, OSError) and exc.errno in FULL_ERRNOS:
                raise StoreFullError(
                    f"No room to store an artifact in {self.root} ({exc.strerror}); nothing "
                    "was written and what was stored before is intact. Free disk space (or "
                    "raise the file size limit), then retry."
                ) from None
            raise

    def open(self, sha256: str) -> BinaryIO:
        """The artifact's file, opened once and judged by what was opened.

        The digest folder is opened relative to the artifact root and the file relative to
        that folder, neither following a link; the open descriptor must then be a regular
        file on the root's device. A link swapped in at any moment is refused, never
        followed: there is no check on a name that a later open could race.
        """
        self.path_for(sha256)
        refused = IntegrityError(
            f"Artifact file {sha256[:12]} is not a regular file inside {self.root}; it "
            "was not read. Log it again from its source."
        )
        try:
            fd = _open_below(self.root, (sha256[:2], sha256))
        except FileNotFoundError:
            raise NotFoundError(
                f"Artifact {sha256[:12]} is recorded but its file is missing from {self.root}."
            ) from None
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK, errno.ENXIO):
                raise refused from None
            raise
        if fd is None:
            raise refused
        return os.fdopen(fd, "rb")

    def read_verified(self, sha256: str) -> bytes:
        """The bytes of an artifact, refused if they no longer hash to ``sha256``."""
        with self.open(sha256) as handle:
            data = handle.read()
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256:
            raise IntegrityError(
                f"Artifact file {sha256[:12]} was changed on disk (its sha256 is now "
                f"{actual[:12]}); it was not loaded. Log it again from its source."
            )
        return data


_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
# O_NONBLOCK: a FIFO planted under an artifact's name would otherwise block the open.
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_FILE_FLAGS = os.O_RDONLY | _NOFOLLOW | _CLOEXEC | _NONBLOCK
_FOLDER_FLAGS = os.O_RDONLY | _NOFOLLOW | _CLOEXEC | getattr(os, "O_DIRECTORY", 0)


def _open_below(root: Path, parts: tuple[str, ...]) -> int | None:
    """A descriptor for ``root/parts...``, each part opened relative to the folder before
    it without following links, or None when the file found is not a regular file on the
    root's device. The root itself is the store's choice and may be a link."""
    if os.open not in os.supports_dir_fd:  # no openat: open by name, the last part unfollowed
        fd = os.open(root.joinpath(*parts), _FILE_FLAGS)
        return _regular(fd, os.stat(root).st_dev)
    folder = os.open(root, os.O_RDONLY | _CLOEXEC | getattr(os, "O_DIRECTORY", 0))
    try:
        device = os.fstat(folder).st_dev
        for part in parts[:-1]:
            inner = os.open(part, _FOLDER_FLAGS, dir_fd=folder)
            os.close(folder)
            folder = inner
        fd = os.open(parts[-1], _FILE_FLAGS, dir_fd=folder)
    finally:
        os.close(folder)
    return _regular(fd, device)


def _regular(fd: int, device: int) -> int | None:
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_dev != device:
        os.close(fd)
        return None
    if _NONBLOCK:
        os.set_blocking(fd, True)
    return fd
