"""The store: one SQLite file in WAL mode plus a folder of content-addressed artifacts.

One connection per process and store, guarded by a lock so threads can share it. Every
write is one ``BEGIN IMMEDIATE`` transaction: the write lock is taken up front, so two
writers queue on the busy timeout instead of failing half way (a deferred ``BEGIN``
upgrades its lock late and gets SQLITE_BUSY without waiting).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import (
    NotFoundError,
    SchemaVersionError,
    StoreCorruptError,
    StoreError,
    StoreFullError,
    StoreLockedError,
    StoreMissingError,
    StoreReadOnlyError,
    shorten,
)
from .artifacts import ArtifactStore
from .chunks import Chunks
from .files import FileIdentity, create_private_file, identity, make_private_folder
from .readonly import Fallback, open_read_only
from .recovery import reap_dead_runs
from .schema import MIGRATIONS, SCHEMA_VERSION

DB_NAME = "mlops.db"
DEFAULT_BUSY_TIMEOUT_S = 30.0
BUSY_TIMEOUT_ENV = "JUPYTER_MLOPS_BUSY_TIMEOUT"
# SQLite's automatic checkpoints are passive: while other processes keep writing they never
# find the moment to start the -wal over, and it grows without bound (gigabytes in a
# minute with eight writers). Past this size a writer starts it over itself (_checkpoint).
WAL_CHECKPOINT_BYTES = 8 * 2**20
CHECKPOINT_WAIT_S = 2.0

def _statements(script: str) -> list[str]:
    return [part.strip() for part in script.split(";") if part.strip()]


def write_signature(conn: sqlite3.Connection, sha256: str, chunks: Chunks | None = None) -> None:
    """Sign pickled bytes we just stored, and the digests of their chunks when the caller
    computed them from the same bytes, inside the caller's transaction (a no-op, with one
    warning, when this user has no usable key).

    Without ``chunks``, digests already recorded stay only beside the same signature (this
    user's, of the same bytes); beside any other they would never verify, so they go.
    """
    from .signing import sign

    signature = sign(sha256)
    if signature is None:
        return
    if chunks is not None:
        conn.execute("INSERT OR REPLACE INTO signatures (sha256, hmac, created, chunk_size, "
                     "chunks, chunks_hmac) VALUES (?, ?, ?, ?, ?, ?)",
                     (sha256, signature, time.time(), chunks.size, chunks.digests,
                      chunks.sign(sha256)))
        return
    # Every expression of an UPDATE reads the row as it was, so hmac there is the old one.
    conn.execute("INSERT INTO signatures (sha256, hmac, created) VALUES (?, ?, ?) "
                 "ON CONFLICT (sha256) DO UPDATE SET hmac = excluded.hmac, "
                 "created = excluded.created, "
                 "chunk_size = CASE WHEN hmac = excluded.hmac THEN chunk_size END, "
                 "chunks = CASE WHEN hmac = excluded.hmac THEN chunks END, "
                 "chunks_hmac = CASE WHEN hmac = excluded.hmac THEN chunks_hmac END",
                 (sha256, signature, time.time()))


class Store:
    """A jupyter_mlops store folder: ``mlops.db`` and ``artifacts/``.

    Examples
    --------
    >>> store = Store(tmp_path / ".mlops")          # doctest: +SKIP
    >>> store.schema_version == SCHEMA_VERSION       # doctest: +SKIP
    True
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        read_only: bool = False,
        busy_timeout_s: float | None = None,
    ) -> None:
        self.path = Path(path).expanduser().resolve()
        self.db_path = self.path / DB_NAME
        self.read_only = read_only
        if busy_timeout_s is None:
            busy_timeout_s = float(os.environ.get(BUSY_TIMEOUT_ENV, DEFAULT_BUSY_TIMEOUT_S))
        self.busy_timeout_s = busy_timeout_s
        self.artifacts = ArtifactStore(self.path / "artifacts")
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._pid = -1
        # Counts the connections this object opened, so caches of what the database holds
        # (tracking.storage's next steps) know when to start over.
        self.generation = 0
        self._wal_path = self.path / f"{DB_NAME}-wal"
        self._checkpoint_at = WAL_CHECKPOINT_BYTES
        self._batch: sqlite3.Connection | None = None  # see batch()
        self._batch_thread: int | None = None
        self._identity: FileIdentity | None = None
        self._fallback: Fallback | None = None
        self.connection()  # open now: a bad path or a newer schema should fail here, once

    # -- connection and schema -------------------------------------------------------

    def connection(self) -> sqlite3.Connection:
        """The process's connection, reopened after a fork (or, for a store read through a
        fallback, after its files changed)."""
        if self._fallback is not None and self._fallback.stale():
            self.close()
        if self._conn is None or self._pid != os.getpid():
            with self._lock:
                if self._conn is None or self._pid != os.getpid():
                    self._conn = self._open()
                    self._pid = os.getpid()
                    self.generation += 1
                    if not self.read_only:
                        reap_dead_runs(self)
        return self._conn

    def _connect(self) -> sqlite3.Connection:
        """A read-write connection; the folder (0700) and ``mlops.db`` (0600) made if missing."""
        try:
            make_private_folder(self.path)
        except OSError as exc:
            raise StoreReadOnlyError(
                f"Cannot create the store folder {self.path}: {exc.strerror}. "
                "Choose another folder with set_store(PATH) or %mlops store PATH."
            ) from None
        try:
            create_private_file(self.db_path)
        except PermissionError:
            pass  # an unwritable folder: SQLite's own open says so, in its words
        except OSError as exc:
            raise StoreError(f"Cannot create the store file {self.db_path}: {exc.strerror}.") from None
        return sqlite3.connect(
            self.db_path, isolation_level=None, check_same_thread=False, timeout=0
        )

    def _open(self) -> sqlite3.Connection:
        self._fallback = None
        try:
            if self.read_only:
                if not self.db_path.exists():
                    raise NotFoundError(f"No store at {self.path}; there is nothing to read.")
                conn, self._fallback = open_read_only(self.db_path, self.busy_timeout_s)
            else:
                conn = self._connect()
        except sqlite3.DatabaseError as exc:
            raise self._translate(exc) from None
        except OSError as exc:  # copying a store read through a fallback
            raise StoreReadOnlyError(
                f"Cannot read store {self.db_path}: {exc.strerror} ({shorten(exc.filename)}); "
                "check that its files can be read by you."
            ) from None
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")
            # The version comes first: a store we must refuse is left byte for byte as it
            # was, and PRAGMA journal_mode = WAL would rewrite its header.
            version = conn.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            self._close_connection(conn)
            raise self._translate(exc) from None
        if version > SCHEMA_VERSION and not self.read_only:
            # Reading is safe: migrations only add, so the tables and columns this version
            # knows are all there. Writing is not: newer code may rely on what it added.
            self._close_connection(conn)
            raise SchemaVersionError(
                f"Store schema {version} at {self.db_path} is newer than this jupyter_mlops "
                f"supports ({SCHEMA_VERSION}). Upgrade with pip install -U jupyter-mlops, or "
                "read it as it is with Store(path, read_only=True). Nothing was written."
            )
        if version < SCHEMA_VERSION and self.read_only:
            self._close_connection(conn)
            raise SchemaVersionError(
                f"Store {self.db_path} has schema {version} and needs an upgrade to "
                f"{SCHEMA_VERSION}; open it once without read_only to upgrade it."
            )
        self._identity = identity(self.db_path)
        try:
            if not self.read_only:
                self._use_wal(conn)
                # _checkpoint does their work: the automatic ones, run by every writer
                # after its commits, would hold the checkpoint lock that it needs.
                conn.execute("PRAGMA wal_autocheckpoint = 0")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.DatabaseError as exc:
            self._close_connection(conn)
            raise self._translate(exc) from None
        if version < SCHEMA_VERSION:
            self._migrate(conn)
        return conn

    def _use_wal(self, conn: sqlite3.Connection) -> None:
        """Switch the file to WAL unless another opener just did.

        A connection that last read the file in rollback mode asks for an exclusive lock to
        switch it, and a store already in WAL never grants one while other connections are
        open (each keeps a shared lock): it would wait out the busy timeout while the first
        opener migrates. So it asks briefly, and on a busy answer reads the header again,
        which shows WAL once another process switched it.
        """
        deadline = time.monotonic() + self.busy_timeout_s
        conn.execute("PRAGMA busy_timeout = 100")
        try:
            while True:
                try:
                    conn.execute("PRAGMA journal_mode = WAL")
                    return
                except sqlite3.OperationalError:
                    if time.monotonic() > deadline:
                        raise
                try:
                    conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
                    if str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
                        return
                except sqlite3.OperationalError:
                    pass  # still busy: ask again
        finally:
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")

    def _close_connection(self, conn: sqlite3.Connection) -> None:
        conn.close()
        if self._fallback is not None:
            self._fallback.close()
            self._fallback = None

    def _migrate(self, conn: sqlite3.Connection) -> None:
        for migration in MIGRATIONS:
            with self._transaction(conn):
                # Re-read inside the write lock: another process may have just applied it.
                current = conn.execute("PRAGMA user_version").fetchone()[0]
                if current >= migration.version:
                    continue
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS _migrations "
                    "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied REAL NOT NULL)"
                )
                for statement in _statements(migration.sql):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO _migrations (version, name, applied) VALUES (?, ?, ?)",
                    (migration.version, migration.name, time.time()),
                )
                conn.execute(f"PRAGMA user_version = {migration.version}")

    @property
    def file_identity(self) -> FileIdentity | None:
        """Which file this store opened (device, inode): a store deleted and made again at
        the same path is another file, and another store."""
        return self._identity

    @property
    def schema_version(self) -> int:
        return self.connection().execute("PRAGMA user_version").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._close_connection(self._conn)
            self._conn = None

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    # -- transactions ----------------------------------------------------------------

    def _translate(self, exc: sqlite3.Error) -> Exception:
        text = str(exc).lower()
        where = self.db_path
        if "locked" in text or "busy" in text:
            return StoreLockedError(
                f"Store {where} stayed locked by another process for {self.busy_timeout_s:g} s; "
                f"nothing was written. Retry, or wait longer by setting {BUSY_TIMEOUT_ENV}."
            )
        if "readonly" in text or "read-only" in text or "read only" in text:
            return StoreReadOnlyError(
                f"Store {where} is read-only; nothing was written. Choose a writable store "
                "with set_store(PATH) or %mlops store PATH."
            )
        if "full" in text:
            return StoreFullError(
                f"Store {where} is full (SQLITE_FULL); nothing more was written and what was "
                "stored before is intact. Free disk space, then retry."
            )
        if "not a database" in text or "malformed" in text or "corrupt" in text:
            return StoreCorruptError(
                f"{where} is not a readable jupyter_mlops store ({exc}). It was left untouched; "
                "move it aside or choose another store with set_store(PATH)."
            )
        if "unable to open" in text:
            return StoreReadOnlyError(
                f"Cannot open store {where}; check that its folder exists and is writable, "
                "or choose another with set_store(PATH)."
            )
        return StoreError(f"Store {where}: {exc}")

    @contextmanager
    def _transaction(self, conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise self._translate(exc) from None
            try:
                yield conn
                self.check_file()
            except BaseException as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error) and not isinstance(exc, sqlite3.IntegrityError):
                    raise self._translate(exc) from None
                raise
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise self._translate(exc) from None
            self._checkpoint(conn)

    def check_file(self) -> None:
        """Raise StoreMissingError when ``mlops.db`` is no longer the file this store opened.

        SQLite keeps writing into a deleted file through its open descriptor, and into the
        old one when another file was moved in its place: every later reader would miss
        what was acknowledged. One ``stat`` (a few microseconds) before each commit.
        """
        if self._identity is None or identity(self.db_path) == self._identity:
            return
        raise StoreMissingError(
            f"Store file {self.db_path} was deleted or replaced while this process had it "
            "open; nothing was written. Choose a store again with set_store(PATH) (a new "
            "one is created if it is gone)."
        )

    def _checkpoint(self, conn: sqlite3.Connection) -> None:
        """Start the -wal over once it is past WAL_CHECKPOINT_BYTES.

        TRUNCATE takes the write lock (queueing with the other writers) and waits for
        readers to leave the -wal, at most CHECKPOINT_WAIT_S in all. When it times out,
        the next TRUNCATE waits until either the -wal has grown by another
        WAL_CHECKPOINT_BYTES or a passive checkpoint (which never waits) finds that no
        reader needs it any more: a long reader stalls a write now and then, not every
        write. What was committed is committed: a failure here is never an error of the
        write.
        """
        try:
            size = self._wal_path.stat().st_size
        except OSError:
            return
        if size < WAL_CHECKPOINT_BYTES:
            self._checkpoint_at = WAL_CHECKPOINT_BYTES  # started over, maybe by another process
            return
        wait_ms = int(min(self.busy_timeout_s, CHECKPOINT_WAIT_S) * 1000)
        try:
            if size < self._checkpoint_at:
                busy, in_wal, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                if busy or copied < in_wal:
                    return
            conn.execute(f"PRAGMA busy_timeout = {wait_ms}")
            try:
                busy, in_wal, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            finally:
                conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")
        except sqlite3.Error:
            return
        if busy and in_wal >= 0:  # -1: it did not start, another connection was checkpointing
            self._checkpoint_at = size + WAL_CHECKPOINT_BYTES

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; everything inside commits together or not at all."""
        if self.read_only:
            raise StoreReadOnlyError(
                f"Store {self.db_path} was opened read-only; nothing was written. Open it "
                "without read_only, or choose another store with set_store(PATH)."
            )
        if self._batch is not None and self._batch_thread == threading.get_ident():
            # Inside batch(): a savepoint keeps this write all-or-nothing on its own, and
            # the batch's one transaction commits it.
            # Writes nest as blocks do, so one name serves: SQLite rolls back to and
            # releases the most recent savepoint of that name.
            conn = self._batch
            conn.execute("SAVEPOINT batched_write")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK TO batched_write")
                conn.execute("RELEASE batched_write")
                raise
            conn.execute("RELEASE batched_write")
            return
        with self._transaction(self.connection()) as conn:
            yield conn

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Every ``write()`` of this thread inside the block joins one transaction.

        A tracked cell's run start, or its autolog, figures and end, are many small writes;
        one ``BEGIN IMMEDIATE`` and one commit for all of them is what keeps ``%%track``
        cheap (MLflow's ``log_batch`` idea). Each write inside stays all-or-nothing on its
        own (a savepoint), so a failed one can be caught without losing the others.
        """
        if self._batch is not None and self._batch_thread == threading.get_ident():
            yield  # already inside a batch
            return
        with self.write() as conn:
            self._batch, self._batch_thread = conn, threading.get_ident()
            try:
                yield
            finally:
                self._batch = self._batch_thread = None

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        with self._lock:
            try:
                return self.connection().execute(sql, params).fetchall()
            except sqlite3.DatabaseError as exc:
                raise self._translate(exc) from None

    def signature(self, sha256: str) -> str | None:
        """This store's record of the user's signature of ``sha256``, if it has one."""
        rows = self.query("SELECT hmac FROM signatures WHERE sha256 = ?", (sha256,))
        return rows[0][0] if rows else None

    @property
    def db(self):
        """A sqlite_utils.Database over this store's connection, for ad-hoc queries."""
        import sqlite_utils

        return sqlite_utils.Database(self.connection())
