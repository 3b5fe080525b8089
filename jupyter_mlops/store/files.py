"""The store's files on disk: made private to their user, and recognised again later.

A store holds cell sources, params and models, so its folders are created 0700 and its
files 0600 whatever the umask. SQLite gives the ``-wal`` and ``-shm`` files the mode of
the database file, so creating ``mlops.db`` 0600 before SQLite opens it covers all three.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import NamedTuple

FOLDER_MODE = 0o700
FILE_MODE = 0o600
# Errors that mean "no room for these bytes": a full disk, a full quota, a file-size limit.
FULL_ERRNOS = frozenset(
    code for code in (errno.ENOSPC, getattr(errno, "EDQUOT", None), errno.EFBIG) if code)


def make_private_folder(path: Path) -> None:
    """Create the folder ``path`` 0700 (missing parents as ``mkdir -p`` would); an existing
    folder is left as it is."""
    if path.is_dir():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.mkdir(path, FOLDER_MODE)
    except FileExistsError:
        return  # made by another process at the same moment: theirs stays as it is
    os.chmod(path, FOLDER_MODE)  # the umask may have taken bits we need


def create_private_file(path: Path) -> None:
    """Create an empty ``path`` 0600 unless it exists already."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return
    try:
        if hasattr(os, "fchmod"):  # the umask may have taken bits we need
            os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)


class FileIdentity(NamedTuple):
    """Which file a path names: a deleted or replaced file has another (or none)."""

    device: int
    inode: int


def identity(path: Path) -> FileIdentity | None:
    """The identity of the file at ``path`` now, or None when there is none."""
    try:
        info = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return FileIdentity(info.st_dev, info.st_ino)
