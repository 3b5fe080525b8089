"""The predictions log's write path: a request's records are in a journal file before its
answer leaves, and one thread stores them, each exactly once.

Why a journal, and not a write to the store before answering: the store may stay locked
by another process for longer than the busy timeout, and an answer must neither wait for
it nor be lost when the wait gives up; and the server may be killed (SIGKILL, the OOM
killer) between answering and writing. So the scoring thread appends the records to an
append-only file beside the store, in one ``write`` to the operating system, before the
answer is sent; the predictions log's writer reads them back from the file in batches and
stores them. Memory holds one batch, whatever the backlog; the backlog waits on disk.
When everything in the file is stored, the file is emptied.

A ``write`` that returned survives the process being killed, not a power cut: that would
take an ``fsync`` per request, which a model server cannot afford.

A file whose process is gone is adopted by the next log opened on the store: renamed
(atomically, so one process takes it) to a name of its own, replayed into the store, and
removed. Every record is inserted only if the store does not hold it yet (same request,
version, role and time), so a file whose records were partly stored before the crash
still logs each of them once. A frame cut short by the kill was never answered: it is
left out. A frame that fails its checksum stops the replay and the file is kept, renamed
``*.unreadable``, never deleted.

Frame: ``magic, head length, payload length, CRC-32 of head and payload, CRC-32 of these
four`` (little-endian), then the head (the record's fields as JSON) and the payload (the
body as received, then the outputs). The header's own checksum tells a length damaged on
disk (the file is kept) from a frame cut short by a kill (left out).
"""

from __future__ import annotations

import collections
import json
import logging
import math
import os
import re
import struct
import threading
import time
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from ..errors import JournalError, StoreError, StoreFullError

log = logging.getLogger("jupyter_mlops.serving")
FOLDER = "journal"
_MAGIC = b"JMJ1"
_FRAME = struct.Struct("<4sIIII")
_RECENT_IDS = 4096  # request ids remembered, to tell a reused one apart
_NAME = re.compile(
    r"^predictions-(?P<host>.+)-(?P<pid>\d+)-(?P<start>\w+)-[0-9a-f]{8}\.journal\Z")


def journal_folder(store: Any) -> Path:
    return Path(store.path) / FOLDER


def _host() -> str:
    from ..store.process import hostname

    return re.sub(r"[^A-Za-z0-9.-]", "_", hostname())


def _own_name() -> str:
    from ..store.process import current_process

    pid, _host_name, start = current_process()
    return f"predictions-{_host()}-{pid}-{start or 'x'}-{uuid.uuid4().hex[:8]}.journal"


def _orphaned(name: str) -> bool:
    """True when the file's writer process is gone for sure."""
    from ..store.process import hostname, is_alive

    match = _NAME.match(name)
    if match is None or match["host"] != _host():
        return False  # another machine's, or not ours: never taken
    start = None if match["start"] == "x" else match["start"]
    return not is_alive(int(match["pid"]), hostname(), start)


# -- frames ------------------------------------------------------------------------------

def encode(records: list[Any]) -> bytes:
    """The frames of ``records`` (PredictionRecord), one after the other."""
    parts = []
    for r in records:
        outputs = r.outputs.encode("utf-8")
        head = json.dumps([r.request_id, r.created, r.name, r.version, r.role, r.answered,
                           r.content_type, r.n_rows, r.latency_ms, len(r.body)],
                          allow_nan=False, separators=(",", ":")).encode()
        crc = zlib.crc32(outputs, zlib.crc32(r.body, zlib.crc32(head)))
        fields = _FRAME.pack(_MAGIC, len(head), len(r.body) + len(outputs), crc, 0)[:-4]
        parts += [fields, struct.pack("<I", zlib.crc32(fields)), head, r.body, outputs]
    return b"".join(parts)


class CorruptFrame(Exception):
    """A frame that is not what was written (bad magic or checksum)."""


def _decode(head: bytes, payload: bytes) -> Any:
    (request_id, created, name, version, role, answered, content_type, n_rows, latency,
     body_len) = json.loads(head)
    return PredictionRecord(request_id, created, name, version, role, answered, content_type,
                            payload[:body_len], payload[body_len:].decode("utf-8"), n_rows,
                            latency)


def read_frames(fd: int, offset: int, end: int | None, *, max_records: int,
                max_bytes: int) -> tuple[list[Any], list[int]]:
    """Whole frames from ``offset`` (at most ``max_records`` and about ``max_bytes``, at
    least one); returns the records and the offset after each. Stops at a frame cut short
    (the tail a kill left); raises CorruptFrame at a damaged one, once the frames before
    it were returned."""
    records, ends = [], []
    used = 0
    while len(records) < max_records and (not records or used < max_bytes):
        try:
            frame = _read_frame(fd, offset, end)
        except CorruptFrame:
            if records:
                break
            raise
        if frame is None:
            break
        record, size = frame
        records.append(record)
        offset += size
        used += size
        ends.append(offset)
    return records, ends


def _read_frame(fd: int, offset: int, end: int | None) -> tuple[Any, int] | None:
    header = os.pread(fd, _FRAME.size, offset)
    if len(header) < _FRAME.size:
        return None
    magic, head_len, payload_len, crc, header_crc = _FRAME.unpack(header)
    if magic != _MAGIC or zlib.crc32(header[:-4]) != header_crc:
        raise CorruptFrame(f"no frame at byte {offset}")
    size = head_len + payload_len
    if end is not None and offset + _FRAME.size + size > end:
        return None
    data = os.pread(fd, size, offset + _FRAME.size)
    if len(data) < size:
        return None  # cut short by a kill: never answered
    if zlib.crc32(data) != crc:
        raise CorruptFrame(f"the frame at byte {offset} fails its checksum")
    try:
        return _decode(data[:head_len], data[head_len:]), _FRAME.size + size
    except (ValueError, TypeError) as exc:
        raise CorruptFrame(f"the frame at byte {offset} cannot be read: {exc}") from None


# -- the live journal --------------------------------------------------------------------

class Journal:
    """This process's journal file: appended by scoring threads, read by the log's writer.

    ``start`` is the first byte not yet stored, ``end`` the end of what was appended.
    """

    def __init__(self, folder: Path) -> None:
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            self.path = folder / _own_name()
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
            self._fd = os.open(self.path, flags, 0o600)
            self._read_fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError as exc:
            raise JournalError(f"Cannot create the predictions journal in {folder}: "
                               f"{exc.strerror}. Serve from a writable store, or without "
                               "logging (--no-log, log_predictions=False).") from None
        self._lock = threading.Lock()
        self.start = 0
        self.end = 0
        self.closed = False

    def append(self, records: list[Any]) -> None:
        """Write the records' frames; JournalError (and nothing written) when it cannot."""
        data = encode(records)
        with self._lock:
            if self.closed:
                raise JournalError("The predictions journal is closed: the server is stopping.")
            view = memoryview(data)
            try:
                while view:
                    view = view[os.write(self._fd, view):]
            except OSError as exc:
                try:
                    os.ftruncate(self._fd, self.end)  # no half frame before the next one
                except OSError:
                    pass
                error = StoreFullError if exc.errno == 28 else JournalError
                raise error(f"The predictions journal {self.path.name} cannot be written "
                            f"({exc.strerror}); the request was not answered.") from None
            self.end += len(data)

    @property
    def backlog(self) -> int:
        with self._lock:
            return self.end - self.start

    def take(self, max_records: int, max_bytes: int) -> tuple[list[Any], list[int]]:
        """The next records not yet stored (the writer thread only)."""
        with self._lock:
            start, end = self.start, self.end
        if start == end:
            return [], []
        return read_frames(self._read_fd, start, end, max_records=max_records,
                           max_bytes=max_bytes)

    def stored(self, upto: int) -> bool:
        """Everything before ``upto`` is in the store; True when the file was emptied."""
        with self._lock:
            self.start = upto
            if self.start != self.end:
                return False
            try:
                os.ftruncate(self._fd, 0)
            except OSError:
                return False  # a file that did not shrink is replayed at worst: still once
            self.start = self.end = 0
            return True

    def close(self) -> None:
        """Close the file; remove it when everything in it is stored, else leave it for
        the next log on this store."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            empty = self.start == self.end
            os.close(self._fd)
            os.close(self._read_fd)
            if empty:
                self.path.unlink(missing_ok=True)
            else:
                log.warning("%d byte(s) of predictions wait in %s; the next server (or "
                            "monitor) on this store writes them.", self.end - self.start,
                            self.path)


# -- files left by dead processes --------------------------------------------------------

def adopt_orphans(folder: Path) -> Iterator[Path]:
    """Take the journals whose process is gone, one at a time, under names of our own."""
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return
    for name in names:
        if not name.endswith(".journal") or not _orphaned(name):
            continue
        adopted = folder / _own_name()
        try:
            os.rename(folder / name, adopted)
        except OSError:
            continue  # another process took it first
        yield adopted


def replay(path: Path, write: Any, *, batch: int = 1000, max_bytes: int = 16 * 2**20) -> int:
    """Store the records of an adopted journal with ``write(records)``, then remove it.

    ``write`` inserts each record once and raises when it cannot (the file stays for a
    later try). Returns how many records were read.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    count = 0
    try:
        offset = 0
        while True:
            try:
                records, ends = read_frames(fd, offset, None, max_records=batch,
                                            max_bytes=max_bytes)
            except CorruptFrame as exc:
                kept = path.with_suffix(".unreadable")
                os.rename(path, kept)
                log.error("Predictions journal %s is damaged (%s): %d record(s) before that "
                          "were stored; the file is kept as %s.", path.name, exc, count,
                          kept.name)
                return count
            if not records:
                break
            write(records)
            count += len(records)
            offset = ends[-1]
    finally:
        os.close(fd)
    path.unlink(missing_ok=True)
    return count


# -- the predictions log: the journal and its writer ------------------------------------

_COLUMNS = ("request_id, created, name, version, role, answered, n_rows, content_type, inputs, "
            "outputs, latency_ms")
# Once: a replayed journal may hold records a crashed server had already stored.
_INSERT_ONCE = (f"INSERT INTO predictions ({_COLUMNS}) SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? "
                "WHERE NOT EXISTS (SELECT 1 FROM predictions WHERE request_id = ? AND "
                "created = ? AND name = ? AND version = ? AND role = ?)")


class PredictionRecord(NamedTuple):
    """One version's scoring of one request: the body as received, the outputs as JSON."""

    request_id: str
    created: float
    name: str
    version: int
    role: str
    answered: bool
    content_type: str
    body: bytes
    outputs: str
    n_rows: int
    latency_ms: float


def _row(r: PredictionRecord) -> tuple:
    try:
        body = r.body.decode("utf-8")
    except UnicodeDecodeError:  # the server refuses such bodies; a record built elsewhere
        body = r.body.decode("utf-8", "replace")
    return (r.request_id, r.created, r.name, r.version, r.role, int(r.answered), r.n_rows,
            r.content_type, body, r.outputs, r.latency_ms,
            r.request_id, r.created, r.name, r.version, r.role)


def store_records(store: Any, records: list[PredictionRecord]) -> None:
    """Insert ``records`` in one transaction, each only if the store does not hold it."""
    with store.write() as conn:
        conn.executemany(_INSERT_ONCE, [_row(r) for r in records])


def replay_journals(store: Any) -> int:
    """Store the predictions left in journals by servers that were killed; returns how
    many records were replayed. A locked store leaves them for a later try."""
    count = 0
    for path in adopt_orphans(journal_folder(store)):
        try:
            count += replay(path, lambda records: store_records(store, records))
        except StoreError as exc:
            log.warning("Predictions in %s wait for the store: %s", path.name, exc)
    return count


class PredictionLog:
    """The journal of a server's records and the one thread that stores them in batches.

    Examples
    --------
    >>> log = PredictionLog(store)              # doctest: +SKIP
    >>> log.append(record); log.flush()         # doctest: +SKIP
    True
    """

    def __init__(self, store: Any, *, batch_size: int = 1000, interval_s: float = 0.1,
                 max_batch_bytes: int = 16 * 2**20) -> None:
        self.store = store
        self.batch_size = batch_size
        self.interval_s = interval_s
        self.max_batch_bytes = max_batch_bytes
        self.journal = Journal(journal_folder(store))
        self._cond = threading.Condition()
        self._stamp = threading.Lock()
        self._recent: collections.OrderedDict[str, float] = collections.OrderedDict()
        self._closing = False
        self._hurry = False  # flush() wants the batch stored now
        self._writer_waits = False  # the writer waits for a first record
        self._replaying = True
        self._spilled_to = 0  # journal offset up to which failed records were counted
        self.appended = 0
        self.logged = 0
        self.spilled = 0
        self.replayed = 0
        self.write_errors = 0
        self.last_error: str | None = None
        self._thread = threading.Thread(target=self._run, name="jupyter-mlops-predictions",
                                        daemon=True)
        self._thread.start()

    def append(self, record: PredictionRecord) -> bool:
        """Journal one record (see :meth:`extend`); True once it is in the journal."""
        self.extend([record])
        return True

    def extend(self, records: list[PredictionRecord]) -> None:
        """Journal the records of one request before it is answered.

        Raises JournalError (a StoreError) when the journal cannot be written: the caller
        must then not answer. "Same request id, version, role and time" is a record's
        identity in the store, so a request id a client sends twice gets a later time.
        """
        if not records:
            return
        with self._stamp:
            request_id, created = records[0].request_id, records[0].created
            last = self._recent.pop(request_id, None)
            if last is not None and created <= last:
                created = math.nextafter(last, math.inf)
                records = [r._replace(created=created) for r in records]
            self._recent[request_id] = created
            if len(self._recent) > _RECENT_IDS:
                self._recent.popitem(last=False)
            self.journal.append(records)
        with self._cond:
            self.appended += len(records)
            # Wake the writer only when it waits for a first record or a batch is full:
            # waking it per request would store batches of one, on the answering CPU.
            if self._writer_waits or self.appended - self.logged >= self.batch_size:
                self._cond.notify_all()

    @property
    def pending(self) -> int:
        with self._cond:
            return self.appended - self.logged

    def stats(self) -> dict[str, Any]:
        """What ``/health`` shows: stored, waiting in the journal, spilled (kept in the
        journal past a write that gave up on a lock), replayed from killed servers."""
        with self._cond:
            return {"logged": self.logged, "pending": self.appended - self.logged,
                    "spilled": self.spilled, "replayed": self.replayed,
                    "replaying": self._replaying, "journal_bytes": self.journal.backlog,
                    "write_errors": self.write_errors, "last_error": self.last_error}

    def _idle(self) -> bool:
        return not self._replaying and self.journal.backlog == 0

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every record appended so far is stored; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._hurry = True
            self._cond.notify_all()
            while not self._idle():
                left = deadline - time.monotonic()
                if left <= 0 or not self._thread.is_alive():
                    return False
                self._cond.wait(min(left, 0.05))
                if not self._hurry:  # the writer took a batch; the rest is wanted now too
                    self._hurry = True
                    self._cond.notify_all()
        return True

    def close(self, timeout: float = 30.0) -> bool:
        """Store what is journaled (up to ``timeout`` s) and end the thread; what could
        not be stored stays in the journal for the next log on this store."""
        done = self.flush(timeout)
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout=max(0.1, timeout))
        if not self._thread.is_alive():
            self.journal.close()
        return done

    # -- the writer thread -----------------------------------------------------------

    def _wait(self, seconds: float) -> None:
        with self._cond:
            if not self._closing:
                self._cond.wait(seconds)

    def _write(self, records: list[PredictionRecord]) -> bool:
        try:
            store_records(self.store, records)
        except Exception as exc:  # the records stay journaled and are retried
            with self._cond:
                self.write_errors += 1
                # Its kind only: /health answers anyone, and messages name the store's path.
                self.last_error = type(exc).__name__
            if isinstance(exc, StoreError):
                log.debug("Storing %d prediction(s) waits: %s", len(records), exc)
            else:
                log.exception("Storing %d prediction(s) failed; they stay in the journal",
                              len(records))
            return False
        with self._cond:
            self.last_error = None
        return True

    def _replay_orphans(self) -> None:
        try:
            for path in adopt_orphans(self.journal.path.parent):
                while not self._closing:
                    try:
                        count = replay(path, self._store_or_raise)
                    except StoreError:
                        self._wait(1.0)
                        continue
                    with self._cond:
                        self.replayed += count
                    break
        finally:
            with self._cond:
                self._replaying = False
                self._cond.notify_all()

    def _store_or_raise(self, records: list[PredictionRecord]) -> None:
        if not self._write(records):
            raise StoreError(f"the store could not be written ({self.last_error})")

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException:
            # What is journaled stays there: the next log on this store stores it.
            log.exception("The predictions writer stopped; %s keeps what it did not store",
                          self.journal.path)
            raise

    def _loop(self) -> None:
        self._replay_orphans()
        failures = 0
        while True:
            with self._cond:
                while self.journal.backlog == 0 and not self._closing:
                    self._writer_waits = True
                    self._cond.wait()
                self._writer_waits = False
                if self.journal.backlog == 0:
                    break
                # Let a batch gather: one transaction for many requests.
                deadline = time.monotonic() + self.interval_s
                while not (self._closing or self._hurry or
                           self.appended - self.logged >= self.batch_size):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                self._hurry = False
            try:
                records, ends = self.journal.take(self.batch_size, self.max_batch_bytes)
            except Exception as exc:  # noqa: BLE001 - a damaged journal: said, not fatal
                with self._cond:
                    self.last_error = type(exc).__name__
                log.error("Predictions journal %s cannot be read: %s", self.journal.path, exc)
                self._wait(5.0)
                if self._closing:
                    break
                continue
            if not records:  # cannot happen: the end moves only past whole frames
                self._wait(0.1)
                continue
            if self._write(records):
                failures = 0
                emptied = self.journal.stored(ends[-1])
                with self._cond:
                    self.logged += len(records)
                    if emptied:
                        self._spilled_to = 0
                    self._cond.notify_all()
                continue
            failures += 1
            with self._cond:
                fresh = sum(1 for end in ends if end > self._spilled_to)
                self.spilled += fresh
                self._spilled_to = max(self._spilled_to, ends[-1])
                if fresh:
                    log.warning("%d prediction(s) wait in the journal for the store (%s)",
                                fresh, self.last_error)
            if self._closing:
                break
            self._wait(min(0.1 * 2 ** failures, 2.0))
        self.journal.close()
