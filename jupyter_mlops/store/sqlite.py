"""The store: one SQLite file in WAL mode plus a folder of content-addressed artifacts.

One connection per process and store, guarded by a lock so threads can share it. Every
write is one ``BEGIN IMMEDIATE`` transaction: the write lock is taken up front, so two
writers queue on the busy timeout instead of failing half way (a deferred ``BEGIN``
upgrades its lock late and gets SQLITE_BUSY without waiting).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..entities import (
    SYSTEM_METRIC_PREFIX,
    Artifact,
    CellExecution,
    DatasetInput,
    Metric,
    Run,
)
from ..errors import (
    NotFoundError,
    SchemaVersionError,
    StoreCorruptError,
    StoreError,
    StoreFullError,
    StoreLockedError,
    StoreMissingError,
    StoreReadOnlyError,
    ValidationError,
    shorten,
)
from ..validation import MAX_STEP
from . import jsoncodec
from .artifacts import ArtifactStore
from .chunks import Chunks
from .files import FileIdentity, create_private_file, identity, make_private_folder
from .process import current_process, is_alive
from .readonly import Fallback, open_read_only
from .schema import MIGRATIONS, SCHEMA_VERSION

DB_NAME = "mlops.db"
DEFAULT_BUSY_TIMEOUT_S = 30.0
BUSY_TIMEOUT_ENV = "JUPYTER_MLOPS_BUSY_TIMEOUT"
# SQLite's automatic checkpoints are passive: while other processes keep writing they never
# find the moment to start the -wal over, and it grows without bound (gigabytes in a
# minute with eight writers). Past this size a writer starts it over itself (_checkpoint).
WAL_CHECKPOINT_BYTES = 8 * 2**20
CHECKPOINT_WAIT_S = 2.0

_INSERT_METRIC = (
    "INSERT INTO metrics (run_id, key, step, value, is_nan, timestamp) VALUES (?, ?, ?, ?, ?, ?)"
)
_UPSERT_LATEST = """
INSERT INTO latest_metrics (run_id, key, step, value, is_nan, timestamp) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (run_id, key) DO UPDATE SET
    step = excluded.step, value = excluded.value, is_nan = excluded.is_nan,
    timestamp = excluded.timestamp
WHERE excluded.step >= latest_metrics.step
"""
# Every write to a run also drops its summary: it is rebuilt when the run ends.
_HEARTBEAT = "UPDATE runs SET heartbeat = ?, summary = NULL WHERE run_id = ?"


def run_summary(conn: sqlite3.Connection, run_id: str) -> str:
    """Latest metrics, tags and params of a run as one JSON text (``jsoncodec``), so a
    finished run is one decode for ``search_runs``: ``{"m": {...}, "t": {...}, "p": {...}}``.
    """
    metrics = {k: decode_metric(v, n) for k, v, n in conn.execute(
        "SELECT key, value, is_nan FROM latest_metrics WHERE run_id = ?", (run_id,))}
    tags = dict(conn.execute("SELECT key, value FROM tags WHERE run_id = ?", (run_id,)))
    params = ",".join(f"{json.dumps(k, allow_nan=False)}:{_param_json(v)}" for k, v in
                      conn.execute("SELECT key, value FROM params WHERE run_id = ?", (run_id,)))
    head = jsoncodec.dumps({"m": metrics, "t": tags})
    return f'{head[:-1]},"p":{{{params}}}}}'


def _param_json(text: str) -> str:
    # A param's stored JSON is plain JSON: spliced in as it is, unless a dict key in it
    # might read like one of the codec's tags.
    return jsoncodec.dumps(json.loads(text)) if '"$' in text else text


def read_summary(text: str) -> dict[str, dict[str, Any]]:
    """A summary ``run_summary`` wrote, or one written before the codec, which starts with
    the params (``{"p":``) and holds a NaN or an infinity as null in ``m``, named in ``x``."""
    if not text.startswith('{"p":'):
        return jsoncodec.loads(text)
    summary = json.loads(text)  # its params as stored: plain JSON, never tags
    for key, name in summary.pop("x").items():
        summary["m"][key] = float(name)
    return summary


def _statements(script: str) -> list[str]:
    return [part.strip() for part in script.split(";") if part.strip()]


def write_datasets(conn: sqlite3.Connection, inputs: Iterable[tuple[str, str, dict[str, Any]]],
                   run_id: str | None) -> None:
    """Record ``(name, role, fingerprint record)`` data inside the caller's transaction, and
    link it to ``run_id`` when there is one."""
    now = time.time()
    for name, role, info in inputs:
        conn.execute(
            "INSERT OR IGNORE INTO datasets (fingerprint, kind, shape, columns, dtypes, "
            "created) VALUES (?, ?, ?, ?, ?, ?)",
            (info["fingerprint"], info["kind"], _strict_json(info["shape"]),
             _strict_json(info.get("columns")), _strict_json(info.get("dtypes")), now),
        )
        if run_id is not None:
            conn.execute(
                "INSERT OR REPLACE INTO run_datasets (run_id, name, role, fingerprint) "
                "VALUES (?, ?, ?, ?)",
                (run_id, name, role, info["fingerprint"]),
            )


def _strict_json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, allow_nan=False)


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


def decode_metric(value: float | None, is_nan: int) -> float:
    # SQLite turns NaN into NULL, so NaN is kept as a flag beside a NULL value.
    return float("nan") if is_nan else float(value)  # type: ignore[arg-type]


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
        self._next_step: dict[tuple[str, str], int] = {}
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
                    self._next_step.clear()
                    if not self.read_only:
                        self.reap_dead_runs()
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

    # -- liveness --------------------------------------------------------------------

    def reap_dead_runs(self) -> list[str]:
        """Mark KILLED the RUNNING runs whose process is gone; returns their ids."""
        rows = self.query(
            "SELECT run_id, pid, host, proc_start FROM runs WHERE status = 'RUNNING'"
        )
        dead = [run_id for run_id, pid, host, start in rows if not is_alive(pid, host, start)]
        sessions = self.query(
            "SELECT DISTINCT s.session_id, s.pid, s.host, s.proc_start FROM sessions s "
            "JOIN cells c ON c.session_id = s.session_id WHERE c.status = 'running'"
        )
        dead_sessions = [s for s, pid, host, start in sessions if not is_alive(pid, host, start)]
        if not dead and not dead_sessions:
            return []
        with self.write() as conn:
            conn.executemany(
                "UPDATE runs SET status = 'KILLED', end_time = heartbeat, "
                "error_type = 'ProcessDied', error = 'The process running this run ended "
                "before the run did (killed or crashed).' "
                "WHERE run_id = ? AND status = 'RUNNING'",
                [(run_id,) for run_id in dead],
            )
            conn.executemany(
                "UPDATE cells SET status = 'killed' WHERE session_id = ? AND status = 'running'",
                [(session,) for session in dead_sessions],
            )
        return dead

    # -- runs --------------------------------------------------------------------------

    def _experiment_id(self, conn: sqlite3.Connection, name: str) -> int:
        row = conn.execute(
            "SELECT experiment_id FROM experiments WHERE name = ?", (name,)
        ).fetchone()
        if row:
            return row[0]
        return conn.execute(
            "INSERT INTO experiments (name, created) VALUES (?, ?)", (name, time.time())
        ).lastrowid

    def create_run(
        self,
        run_id: str,
        experiment: str,
        name: str | None,
        tags: dict[str, str] | None = None,
        *,
        session_id: str | None = None,
        cell_id: str | None = None,
        execution_count: int | None = None,
        source: str | None = None,
        parent_run_id: str | None = None,
        start_time: float | None = None,
    ) -> float:
        """Insert a RUNNING run; returns its start time (now unless ``start_time`` is given,
        as for a search's candidate that ran before it was recorded)."""
        pid, host, start = current_process()
        now = time.time()
        started = now if start_time is None else start_time
        with self.write() as conn:
            experiment_id = self._experiment_id(conn, experiment)
            conn.execute(
                "INSERT INTO runs (run_id, experiment_id, name, status, start_time, heartbeat, "
                "pid, host, proc_start, session_id, cell_id, execution_count, source, "
                "parent_run_id) VALUES (?, ?, ?, 'RUNNING', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, experiment_id, name, started, now, pid, host, start, session_id,
                 cell_id, execution_count, source, parent_run_id),
            )
            if tags:
                conn.executemany(
                    "INSERT INTO tags (run_id, key, value) VALUES (?, ?, ?)",
                    [(run_id, k, v) for k, v in tags.items()],
                )
        return started

    def finish_run(
        self,
        run_id: str,
        status: str,
        *,
        error_type: str | None = None,
        error: str | None = None,
        traceback: str | None = None,
        execution_count: int | None = None,
        end_time: float | None = None,
    ) -> None:
        now = time.time()
        ended = now if end_time is None else end_time
        with self.write() as conn:
            updated = conn.execute(
                "UPDATE runs SET status = ?, end_time = ?, heartbeat = ?, error_type = ?, "
                "error = ?, traceback = ?, execution_count = coalesce(?, execution_count) "
                "WHERE run_id = ? AND status = 'RUNNING'",
                (status, ended, now, error_type, error, traceback, execution_count, run_id),
            ).rowcount
            if not updated:
                row = conn.execute("SELECT status FROM runs WHERE run_id = ?", (run_id,)).fetchone()
                if row is None:
                    raise NotFoundError(f"No run {run_id!r} in {self.path}.")
            else:
                conn.execute("UPDATE runs SET summary = ? WHERE run_id = ?",
                             (run_summary(conn, run_id), run_id))
        self._forget_steps(run_id)

    def _forget_steps(self, run_id: str) -> None:
        for key in [k for k in self._next_step if k[0] == run_id]:
            del self._next_step[key]

    def log_params(self, run_id: str, encoded: dict[str, str]) -> None:
        """Params are write-once: the same value again is fine, a different one is refused."""
        if not encoded:
            return
        with self.write() as conn:
            existing = dict(
                conn.execute(
                    f"SELECT key, value FROM params WHERE run_id = ? AND key IN "
                    f"({','.join('?' * len(encoded))})",
                    (run_id, *encoded),
                ).fetchall()
            )
            for key, value in encoded.items():
                if key in existing and existing[key] != value:
                    raise ValidationError(
                        f"Param {key!r} was already logged as {shorten(existing[key])}; "
                        f"got {shorten(value)}. Params are write-once: log a metric or a "
                        "tag for values that change, or start a new run."
                    )
            conn.executemany(
                "INSERT OR IGNORE INTO params (run_id, key, value) VALUES (?, ?, ?)",
                [(run_id, k, v) for k, v in encoded.items()],
            )
            conn.execute(_HEARTBEAT, (time.time(), run_id))

    def next_step(self, conn: sqlite3.Connection, run_id: str, key: str) -> int:
        cache_key = (run_id, key)
        step = self._next_step.get(cache_key)
        if step is None:
            row = conn.execute(
                "SELECT max(step) FROM metrics WHERE run_id = ? AND key = ?", (run_id, key)
            ).fetchone()
            step = 0 if row[0] is None else row[0] + 1
        return step

    def log_metrics(
        self, run_id: str, values: Iterable[tuple[str, float, int | None]], timestamp: float
    ) -> None:
        """Append metric values; a ``None`` step means one past the key's last step."""
        with self.write() as conn:
            rows = []
            latest: dict[str, tuple] = {}
            pending: dict[str, int] = {}
            for key, value, step in values:
                if step is None:
                    step = pending.get(key)
                    if step is None:
                        step = self.next_step(conn, run_id, key)
                    if step > MAX_STEP:
                        raise ValidationError(
                            f"Metric {key!r} is at step {MAX_STEP}, the last a step can "
                            "hold; log it with an explicit step or under another name."
                        )
                is_nan = value != value
                row = (run_id, key, step, None if is_nan else value, int(is_nan), timestamp)
                rows.append(row)
                if key not in latest or step >= latest[key][2]:
                    latest[key] = row
                pending[key] = max(step + 1, pending.get(key, 0))
            conn.executemany(_INSERT_METRIC, rows)
            conn.executemany(_UPSERT_LATEST, list(latest.values()))
            conn.execute(_HEARTBEAT, (timestamp, run_id))
        for key, step in pending.items():
            cache_key = (run_id, key)
            self._next_step[cache_key] = max(step, self._next_step.get(cache_key, 0))

    def log_metric_points(self, run_id: str, points: Iterable[tuple[str, float, int, float]]
                          ) -> None:
        """Append ``(key, value, step, timestamp)`` points that carry their own steps and
        times, such as a loop's curves: thousands of rows, so no per-row work but the row."""
        rows = [(run_id, key, step, None if value != value else value, int(value != value),
                 when) for key, value, step, when in points]
        if not rows:
            return
        latest: dict[str, tuple] = {}
        for row in rows:
            if row[1] not in latest or row[2] >= latest[row[1]][2]:
                latest[row[1]] = row
        with self.write() as conn:
            conn.executemany(_INSERT_METRIC, rows)
            conn.executemany(_UPSERT_LATEST, list(latest.values()))
            conn.execute(_HEARTBEAT, (time.time(), run_id))
        for key, row in latest.items():
            cache_key = (run_id, key)
            self._next_step[cache_key] = max(row[2] + 1, self._next_step.get(cache_key, 0))

    def set_tags(self, run_id: str, tags: dict[str, str]) -> None:
        with self.write() as conn:
            conn.executemany(
                "INSERT INTO tags (run_id, key, value) VALUES (?, ?, ?) "
                "ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value",
                [(run_id, k, v) for k, v in tags.items()],
            )
            conn.execute(_HEARTBEAT, (time.time(), run_id))

    def add_artifact(
        self, run_id: str, name: str, kind: str, sha256: str, size: int, media_type: str | None,
        *, pickled: bool = False, chunks: Chunks | None = None,
    ) -> None:
        """Record an artifact of a run; ``pickled`` ones are signed (see ``signature``),
        with the digests of their chunks when given (see ``chunks.digests``)."""
        with self.write() as conn:
            if pickled:
                write_signature(conn, sha256, chunks)
            conn.execute(
                "INSERT INTO artifacts (run_id, name, kind, sha256, size, media_type, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, name) DO UPDATE SET "
                "kind = excluded.kind, sha256 = excluded.sha256, size = excluded.size, "
                "media_type = excluded.media_type, created = excluded.created",
                (run_id, name, kind, sha256, size, media_type, time.time()),
            )
            conn.execute(_HEARTBEAT, (time.time(), run_id))

    def add_datasets(self, run_id: str, inputs: Iterable[tuple[str, str, dict[str, Any]]]) -> None:
        """Link fingerprinted data to a run: ``(name, role, fingerprint record)`` triples."""
        with self.write() as conn:
            write_datasets(conn, inputs, run_id)

    # -- sessions and cells ----------------------------------------------------------

    def start_session(self, session_id: str, notebook: str | None, python: str) -> None:
        pid, host, start = current_process()
        with self.write() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO sessions (session_id, pid, host, proc_start, started, "
                "notebook, python, cwd) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (session_id, pid, host, start, time.time(), notebook, python, os.getcwd()),
            )

    def start_cell(
        self,
        session_id: str,
        execution_count: int | None,
        cell_id: str | None,
        source: str,
        defined: list[str],
        used: list[str],
        started: float,
        run_id: str | None = None,
    ) -> int:
        with self.write() as conn:
            return conn.execute(
                "INSERT INTO cells (session_id, execution_count, cell_id, source, defined, used, "
                "started, status, run_id) VALUES (?, ?, ?, ?, ?, ?, ?, 'running', ?)",
                (session_id, execution_count, cell_id, source, _strict_json(defined),
                 _strict_json(used), started, run_id),
            ).lastrowid

    def finish_cell(
        self,
        row_id: int,
        *,
        execution_count: int | None,
        duration_s: float,
        status: str,
        error: str | None,
        run_id: str | None,
        defined: list[str] | None = None,
        used: list[str] | None = None,
        unchanged: list[str] | None = None,
        modified: list[str] | None = None,
        statements_run: int | None = None,
        files: Sequence[tuple[str, str | None, int | None]] = (),
        usage: tuple[float | None, int | None, int | None] = (None, None, None),
    ) -> None:
        """The end of an execution; ``defined``, ``used``, ``unchanged`` and ``modified``
        say what it did, once known (None keeps what its start recorded); ``files`` the
        files it wrote, as ``(path, sha256, size)``; ``usage`` its CPU seconds and resident
        bytes at the start and at the peak."""
        as_json = [None if names is None else json.dumps(names, allow_nan=False)
                   for names in (defined, used, unchanged, modified)]
        with self.write() as conn:
            conn.execute(
                "UPDATE cells SET execution_count = coalesce(?, execution_count), duration_s = ?, "
                "status = ?, error = ?, run_id = coalesce(?, run_id), "
                "defined = coalesce(?, defined), used = coalesce(?, used), "
                "unchanged = coalesce(?, unchanged), modified = coalesce(?, modified), "
                "statements_run = ?, cpu_time_s = ?, start_rss = ?, peak_rss = ? WHERE id = ?",
                (execution_count, duration_s, status, error, run_id, *as_json, statements_run,
                 *usage, row_id),
            )
            conn.executemany(
                "INSERT OR REPLACE INTO cell_files (cell, path, sha256, size) VALUES (?, ?, ?, ?)",
                [(row_id, path, sha256, size) for path, sha256, size in files])

    # -- reading -----------------------------------------------------------------------

    def metric_history(self, run_id: str, key: str) -> list[Metric]:
        rows = self.query(
            "SELECT step, value, is_nan, timestamp FROM metrics WHERE run_id = ? AND key = ? "
            "ORDER BY step, timestamp, rowid",
            (run_id, key),
        )
        return [Metric(key, decode_metric(v, n), step, ts) for step, v, n, ts in rows]

    def resolve_run_id(self, ref: str) -> str:
        """A full run id from a full id or a unique prefix of at least 4 hex characters."""
        ref = (ref or "").strip().lower()
        if len(ref) == 32 and all(c in "0123456789abcdef" for c in ref):
            if self.query("SELECT 1 FROM runs WHERE run_id = ?", (ref,)):
                return ref
        elif len(ref) >= 4 and all(c in "0123456789abcdef" for c in ref):
            rows = self.query(
                "SELECT run_id FROM runs WHERE run_id >= ? AND run_id < ? LIMIT 2",
                (ref, ref + "g"),
            )
            if len(rows) == 1:
                return rows[0][0]
            if len(rows) > 1:
                raise ValidationError(
                    f"Run prefix {ref!r} matches several runs; give more characters."
                )
        else:
            raise ValidationError(
                f"A run is named by its id or an id prefix of at least 4 hex characters; "
                f"got {shorten(ref)}."
            )
        raise NotFoundError(f"No run {ref!r} in {self.path}. List runs with %mlops runs.")

    def cells(self, where: str = "1", params: Sequence[Any] = ()) -> list[CellExecution]:
        rows = self.query(
            "SELECT id, session_id, execution_count, cell_id, source, defined, used, started, "
            "duration_s, status, error, run_id, modified, statements_run, unchanged, "
            f"cpu_time_s, start_rss, peak_rss FROM cells WHERE {where} ORDER BY id",
            params,
        )
        return [
            CellExecution(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), json.loads(r[6]),
                          r[7], r[8], r[9], r[10], r[11], json.loads(r[12]), r[13],
                          json.loads(r[14]), r[15], r[16], r[17])
            for r in rows
        ]

    def get_run(self, run_ref: str) -> Run:
        from ..validation import decode_param

        run_id = self.resolve_run_id(run_ref)
        (row,) = self.query(
            "SELECT r.run_id, e.name, r.name, r.status, r.start_time, r.end_time, r.session_id, "
            "r.cell_id, r.execution_count, r.source, r.error_type, r.error, r.traceback, "
            "r.parent_run_id FROM runs r JOIN experiments e USING (experiment_id) "
            "WHERE r.run_id = ?",
            (run_id,),
        )
        params = {k: decode_param(v) for k, v in self.query(
            "SELECT key, value FROM params WHERE run_id = ? ORDER BY key", (run_id,))}
        metrics = {k: decode_metric(v, n) for k, v, n in self.query(
            "SELECT key, value, is_nan FROM latest_metrics WHERE run_id = ? ORDER BY key",
            (run_id,))}
        system = {k: metrics.pop(k) for k in list(metrics) if k.startswith(SYSTEM_METRIC_PREFIX)}
        tags = dict(self.query("SELECT key, value FROM tags WHERE run_id = ? ORDER BY key",
                               (run_id,)))
        artifacts = [Artifact(*r) for r in self.query(
            "SELECT name, kind, sha256, size, media_type FROM artifacts WHERE run_id = ? "
            "ORDER BY id", (run_id,))]
        inputs = [
            DatasetInput(name, role, fp, kind, tuple(json.loads(shape)),
                         None if cols is None else json.loads(cols),
                         None if dtypes is None else json.loads(dtypes))
            for name, role, fp, kind, shape, cols, dtypes in self.query(
                "SELECT rd.name, rd.role, d.fingerprint, d.kind, d.shape, d.columns, d.dtypes "
                "FROM run_datasets rd JOIN datasets d USING (fingerprint) WHERE rd.run_id = ? "
                "ORDER BY rd.role, rd.name", (run_id,))
        ]
        return Run(
            run_id=row[0], experiment=row[1], name=row[2], status=row[3], start_time=row[4],
            end_time=row[5], session_id=row[6], cell_id=row[7], execution_count=row[8],
            source=row[9], params=params, metrics=metrics, tags=tags, artifacts=artifacts,
            inputs=inputs, cells=self.cells("run_id = ?", (run_id,)), error_type=row[10],
            error=row[11], traceback=row[12], parent_run_id=row[13], system_metrics=system,
            _store=self,
        )
