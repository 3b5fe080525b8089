"""Reading a store whose folder this process cannot write (a read-only copy, a colleague's).

A WAL database is read through the ``-shm`` index beside it. When that file is missing and
cannot be created, ``mode=ro`` fails, so such a store is opened another way:

- no ``-wal`` with data beside it: ``immutable=1``, which reads the database file alone;
- a ``-wal`` holding committed transactions (a copy taken while a kernel was writing, or a
  store whose last writer was killed): ``immutable`` would not see them, so the database and
  its ``-wal`` are copied into a private temporary folder and read from there.

Either way nothing is written beside the store. Should the files change later (their owner
writes to them again), the store notices through :meth:`Fallback.stale` and opens afresh.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
import weakref
from pathlib import Path
from urllib.parse import quote

# SQLITE_READONLY (its extended codes: a read-only folder, an -shm that cannot be set up)
# and SQLITE_CANTOPEN (an -wal that cannot be opened for its index).
_UNSHAREABLE_CODES = (8, 14)
_UNSHAREABLE_TEXT = ("readonly", "read-only", "unable to open")


def uri(db_path: Path, **options: str) -> str:
    """A SQLite URI for ``db_path``; ``?``, ``#`` and ``%`` in folder names are escaped."""
    query = "&".join(f"{key}={value}" for key, value in options.items())
    return f"file:{quote(db_path.as_posix(), safe='/')}?{query}"


def connect(db_path: Path, timeout_s: float, **options: str) -> sqlite3.Connection:
    return sqlite3.connect(uri(db_path, **options), uri=True, isolation_level=None,
                           check_same_thread=False, timeout=timeout_s)


def cannot_share(exc: sqlite3.Error) -> bool:
    """True when a ``mode=ro`` read failed because the ``-shm`` index cannot be used."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in _UNSHAREABLE_CODES
    text = str(exc).lower()
    return any(part in text for part in _UNSHAREABLE_TEXT)


def _signature(db_path: Path) -> tuple:
    """What would tell that the store's files changed: identity, size and time of each."""
    found = []
    for suffix in ("", "-wal", "-shm"):
        try:
            info = os.stat(f"{db_path}{suffix}")
        except FileNotFoundError:
            found.append(None)
        else:
            found.append((info.st_ino, info.st_size, info.st_mtime_ns))
    return tuple(found)


def _remove(folder: Path, owner_pid: int) -> None:
    if os.getpid() == owner_pid:  # a forked child leaves its parent's copy alone
        shutil.rmtree(folder, ignore_errors=True)


class Fallback:
    """How a store that could not be read in place was opened, and what to clean up."""

    def __init__(self, db_path: Path, timeout_s: float) -> None:
        self.db_path = db_path
        self.timeout_s = timeout_s
        self.signature = _signature(db_path)
        self.copy_folder: Path | None = None
        self._cleanup: weakref.finalize | None = None

    def open(self) -> sqlite3.Connection:
        wal = Path(f"{self.db_path}-wal")
        if not (wal.exists() and wal.stat().st_size > 0):
            return connect(self.db_path, self.timeout_s, mode="ro", immutable="1")
        self.copy_folder = Path(tempfile.mkdtemp(prefix="jupyter-mlops-read-"))
        self._cleanup = weakref.finalize(self, _remove, self.copy_folder, os.getpid())
        copy = self.copy_folder / self.db_path.name
        shutil.copyfile(self.db_path, copy)
        shutil.copyfile(wal, f"{copy}-wal")
        return connect(copy, self.timeout_s, mode="ro")

    def stale(self) -> bool:
        return _signature(self.db_path) != self.signature

    def close(self) -> None:
        if self._cleanup is not None:
            self._cleanup()


def open_read_only(db_path: Path,
                   timeout_s: float) -> tuple[sqlite3.Connection, Fallback | None]:
    """A read-only connection to ``db_path`` and, when it could not be read in place,
    the :class:`Fallback` that was used (closed together with the connection)."""
    conn = connect(db_path, timeout_s, mode="ro")
    try:
        conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()
        return conn, None
    except sqlite3.Error as exc:
        conn.close()
        if not cannot_share(exc):
            raise
    fallback = Fallback(db_path, timeout_s)
    try:
        return fallback.open(), fallback
    except BaseException:
        fallback.close()
        raise
