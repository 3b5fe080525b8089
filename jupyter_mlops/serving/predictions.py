"""The predictions log: every scored request's inputs and outputs, written off the response path.

A request handler only appends a :class:`PredictionRecord` to :class:`PredictionLog`'s
queue: the request body as received and the outputs as the JSON already made for the
answer, so nothing is encoded twice and nothing is encoded on the response path. One
background thread inserts the records in batches, one ``BEGIN IMMEDIATE`` transaction per
batch. ``flush()`` waits until everything appended so far is stored, and ``close()``
drains the queue before returning, so stopping a server loses nothing.

:func:`load_traffic` reads a version's requests back as one DataFrame (or array) in the
signature's columns and dtypes, for monitoring and A/B comparisons. Labels arrive later,
per request row, through :func:`log_labels`.
"""

from __future__ import annotations

import collections
import json
import logging
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ..errors import NotFoundError, StoreError, ValidationError, shorten
from .formats import InputSpec, dumps, jsonable

log = logging.getLogger("jupyter_mlops.serving")
REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,64}\Z")
_INSERT = ("INSERT INTO predictions (request_id, created, name, version, role, answered, n_rows, "
           "content_type, inputs, outputs, latency_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")


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


class PredictionLog:
    """A queue of records and the one thread that writes them to ``store`` in batches.

    Examples
    --------
    >>> log = PredictionLog(store)              # doctest: +SKIP
    >>> log.append(record); log.flush()         # doctest: +SKIP
    True
    """

    def __init__(self, store: Any, *, batch_size: int = 1000, interval_s: float = 0.1,
                 max_pending: int = 200_000) -> None:
        self.store = store
        self.batch_size = batch_size
        self.interval_s = interval_s
        self.max_pending = max_pending
        self._queue: collections.deque[PredictionRecord] = collections.deque()
        self._cond = threading.Condition()
        self._closing = False
        self._busy = 0
        self.appended = 0
        self.logged = 0
        self.dropped = 0
        self.failed = 0
        self._thread = threading.Thread(target=self._loop, name="jupyter-mlops-predictions",
                                        daemon=True)
        self._thread.start()

    def append(self, record: PredictionRecord) -> bool:
        """Queue a record; False (and counted in ``dropped``) when the queue is full."""
        with self._cond:
            if self._closing or len(self._queue) >= self.max_pending:
                self.dropped += 1
                return False
            self._queue.append(record)
            self.appended += 1
            # Wake the writer for the first record (it then lets a batch gather for
            # interval_s) and again when a batch is full.
            if len(self._queue) == 1 or len(self._queue) >= self.batch_size:
                self._cond.notify_all()
        return True

    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._queue) + self._busy

    def stats(self) -> dict[str, int]:
        with self._cond:
            return {"logged": self.logged, "pending": len(self._queue) + self._busy,
                    "dropped": self.dropped, "failed": self.failed}

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every record appended so far is stored; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._cond.notify_all()
            while self._queue or self._busy:
                left = deadline - time.monotonic()
                if left <= 0 or not self._thread.is_alive():
                    return False
                self._cond.wait(min(left, 0.05))
                self._cond.notify_all()
        return True

    def close(self, timeout: float = 30.0) -> bool:
        """Stop accepting records, store what is queued, end the thread."""
        done = self.flush(timeout)
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout=max(0.1, timeout))
        return done

    # -- the writer thread -----------------------------------------------------------

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                if not self._queue and self._closing:
                    return
                if len(self._queue) < self.batch_size and not self._closing:
                    # Let a batch gather: one transaction for many requests.
                    self._cond.wait(self.interval_s)
                count = min(len(self._queue), self.batch_size)
                batch = [self._queue.popleft() for _ in range(count)]
                self._busy = count
            try:
                self._write(batch)
            finally:
                with self._cond:
                    self._busy = 0
                    self._cond.notify_all()

    def _write(self, batch: list[PredictionRecord]) -> None:
        rows = [(r.request_id, r.created, r.name, r.version, r.role, int(r.answered), r.n_rows,
                 r.content_type, r.body.decode("utf-8", "replace"), r.outputs, r.latency_ms)
                for r in batch]
        for attempt in range(5):
            try:
                with self.store.write() as conn:
                    conn.executemany(_INSERT, rows)
            except StoreError as exc:
                if attempt == 4:
                    self.failed += len(rows)
                    log.error("%d predictions were not logged: %s", len(rows), exc)
                    return
                time.sleep(0.2 * (attempt + 1))
            else:
                self.logged += len(rows)
                return


# -- reading the log back ----------------------------------------------------------------

def parse_since(since: str | float | None) -> float | None:
    """Seconds from ``"90s"``, ``"15m"``, ``"1h"``, ``"7d"`` (or a number of seconds)."""
    if since is None:
        return None
    if isinstance(since, (int, float)) and not isinstance(since, bool):
        seconds = float(since)
    else:
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", str(since))
        if match is None:
            raise ValidationError(
                f"A time window is a number with a unit s, m, h, d or w, such as 1h or 30m; "
                f"got {shorten(since)}."
            )
        unit = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[match.group(2)]
        seconds = float(match.group(1)) * unit
    if seconds <= 0:
        raise ValidationError(f"A time window must be longer than 0; got {shorten(since)}.")
    return seconds


@dataclass
class Traffic:
    """Logged requests of one version, one entry a row.

    ``inputs`` is a DataFrame (or an array) with the signature's dtypes; ``outputs``,
    ``request_ids``, ``rows`` (row number within its request), ``answered`` and
    ``labels`` (None where no label arrived) are lists aligned with it.
    """

    inputs: Any
    outputs: list
    request_ids: list[str]
    rows: list[int]
    answered: list[bool]
    latency_ms: list[float] = field(default_factory=list)
    labels: list | None = None

    def __len__(self) -> int:
        return len(self.request_ids)

    @property
    def n_requests(self) -> int:
        return len(set(self.request_ids))

    def labelled(self) -> list[int]:
        """Positions of the rows that have a label."""
        return [i for i, label in enumerate(self.labels or []) if label is not None]


def load_traffic(name: str, version: int, *, since: float | None = None, store: Any,
                 spec: InputSpec | None = None, roles: tuple[str, ...] | None = None,
                 max_rows: int = 1_000_000, with_labels: bool = True) -> Traffic:
    """Requests scored by ``name/version`` in the last ``since`` seconds (all when None).

    At most ``max_rows`` rows, the newest ones, keep memory bounded for busy models. The
    inputs come back as the version saw them: checked against ``spec`` and converted.
    """
    import numpy as np
    import pandas as pd

    from .formats import rows_of

    spec = spec or InputSpec(None)
    where = "name = ? AND version = ?"
    params: list[Any] = [name, version]
    if since is not None:
        where += " AND created >= ?"
        params.append(time.time() - since)
    if roles:
        where += f" AND role IN ({', '.join('?' for _ in roles)})"
        params.extend(roles)
    selected = []
    total = 0
    for row in store.query(
            f"SELECT id, n_rows FROM predictions WHERE {where} ORDER BY created DESC, id DESC",
            params):
        if total + row[1] > max_rows and selected:
            break
        selected.append(row[0])
        total += row[1]
    selected.reverse()
    # Consecutive requests with the same columns are gathered and conformed as one frame.
    groups: list[tuple[list[str] | None, list]] = []
    outputs: list = []
    request_ids: list[str] = []
    positions: list[int] = []
    answered: list[bool] = []
    latencies: list[float] = []
    for start in range(0, len(selected), 500):
        chunk = selected[start:start + 500]
        for request_id, content_type, body, outs, flag, latency, n_rows in store.query(
                "SELECT request_id, content_type, inputs, outputs, answered, latency_ms, n_rows "
                f"FROM predictions WHERE id IN ({', '.join('?' for _ in chunk)}) ORDER BY id",
                chunk):
            columns, rows = rows_of(body, content_type, spec)
            if groups and groups[-1][0] == columns:
                groups[-1][1].extend(rows)
            else:
                groups.append((columns, list(rows)))
            decoded = json.loads(outs)
            outputs.extend(decoded if isinstance(decoded, list) else [decoded] * n_rows)
            request_ids.extend([request_id] * n_rows)
            positions.extend(range(n_rows))
            answered.extend([bool(flag)] * n_rows)
            latencies.extend([latency] * n_rows)
    parts = []
    for columns, rows in groups:
        raw = pd.DataFrame(rows, columns=columns) if columns is not None else rows
        parts.append(spec.conform(raw, extra="drop"))
    if not parts:
        inputs: Any = pd.DataFrame(columns=list(spec.columns)) if spec.kind == "dataframe" \
            else np.empty((0,))
    elif isinstance(parts[0], pd.DataFrame):
        inputs = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    else:
        inputs = np.concatenate([np.asarray(p) for p in parts])
    traffic = Traffic(inputs, outputs, request_ids, positions, answered, latencies)
    if with_labels and request_ids:
        traffic.labels = _labels_for(store, request_ids, positions)
    return traffic


def _labels_for(store: Any, request_ids: list[str], positions: list[int]) -> list | None:
    wanted = sorted(set(request_ids))
    found: dict[tuple[str, int], Any] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start:start + 500]
        for request_id, row, label in store.query(
                "SELECT request_id, row, label FROM prediction_labels WHERE request_id IN "
                f"({', '.join('?' for _ in chunk)})", chunk):
            found[(request_id, row)] = json.loads(label)
    if not found:
        return None
    return [found.get((r, p)) for r, p in zip(request_ids, positions)]


def log_labels(request_id: str, labels: Any, *, store: Any = None) -> int:
    """Record the true values of a served request, one per row it scored.

    Examples
    --------
    >>> log_labels("7f3a…", [1, 0, 1])       # doctest: +SKIP
    3
    """
    from ..store.current import get_store
    from .formats import _clean

    store = store or get_store()
    if not isinstance(request_id, str) or not REQUEST_ID_RE.match(request_id):
        raise ValidationError(
            f"A request id has 1 to 64 letters, digits, '.', '_', ':' or '-'; got "
            f"{shorten(request_id)}."
        )
    rows = store.query("SELECT max(n_rows) FROM predictions WHERE request_id = ?", (request_id,))
    n_rows = rows[0][0] if rows else None
    if n_rows is None:
        raise NotFoundError(
            f"No logged request {request_id!r}; label a request id the server returned in "
            "its X-Request-Id header (logging may lag by a fraction of a second)."
        )
    values = _clean(jsonable(labels)) if not isinstance(labels, list) else _clean(labels)
    if not isinstance(values, list):
        values = [values]
    if len(values) != n_rows:
        raise ValidationError(
            f"Request {request_id!r} scored {n_rows} row(s); got {len(values)} label(s). "
            "Send one label per row, in the order of the rows."
        )
    now = time.time()
    with store.write() as conn:
        conn.executemany(
            "INSERT OR REPLACE INTO prediction_labels (request_id, row, label, created) "
            "VALUES (?, ?, ?, ?)",
            [(request_id, i, dumps(v), now) for i, v in enumerate(values)],
        )
    return n_rows


def predictions_frame(name: str | None = None, *, since: float | None = None, store: Any = None,
                      limit: int = 1000):
    """The newest logged requests (no inputs) as a DataFrame, for a quick look.

    Examples
    --------
    >>> predictions_frame("churn", since=3600)[["version", "role", "n_rows"]]  # doctest: +SKIP
    """
    import pandas as pd

    from ..store.current import get_store

    store = store or get_store()
    where, params = "1", []
    if name is not None:
        where, params = "name = ?", [name]
    if since is not None:
        where += " AND created >= ?"
        params.append(time.time() - since)
    rows = store.query(
        "SELECT request_id, created, name, version, role, answered, n_rows, latency_ms FROM "
        f"predictions WHERE {where} ORDER BY created DESC, id DESC LIMIT ?", [*params, limit])
    frame = pd.DataFrame(rows, columns=["request_id", "created", "name", "version", "role",
                                        "answered", "n_rows", "latency_ms"])
    frame["created"] = pd.to_datetime(frame["created"], unit="s", utc=True)
    frame["answered"] = frame["answered"].astype(bool)
    return frame


PRUNE_BATCH = 5000


def prune_predictions(older_than: str | float, *, name: str | None = None,
                      store: Any = None) -> int:
    """Delete logged requests older than ``older_than`` (``"30d"``, ``"12h"`` or seconds),
    of model ``name`` or of every model, with their labels; returns how many went.

    The log grows with every request served, and nothing else deletes from it. Rows go in
    transactions of a few thousand, so a running server's logger waits milliseconds,
    never the whole prune. SQLite reuses the freed pages; the file does not shrink.

    Examples
    --------
    >>> prune_predictions("30d")                 # doctest: +SKIP
    120000
    """
    from ..store.current import get_store

    store = store or get_store()
    cutoff = time.time() - parse_since(older_than)
    where, params = "created < ?", [cutoff]
    if name is not None:
        from ..registry.versions import check_model_name

        where, params = where + " AND name = ?", [cutoff, check_model_name(name)]
    deleted = 0
    while True:
        with store.write() as conn:
            ids = [i for (i,) in conn.execute(
                f"SELECT id FROM predictions WHERE {where} LIMIT {PRUNE_BATCH}", params)]
            if not ids:
                return deleted
            marks = ",".join("?" * len(ids))
            requests = [r for (r,) in conn.execute(
                f"SELECT DISTINCT request_id FROM predictions WHERE id IN ({marks})", ids)]
            conn.execute(f"DELETE FROM predictions WHERE id IN ({marks})", ids)
            # A request's labels go with the last of its rows (a challenger's may be newer).
            conn.executemany(
                "DELETE FROM prediction_labels WHERE request_id = ? AND NOT EXISTS "
                "(SELECT 1 FROM predictions WHERE request_id = ?)",
                [(r, r) for r in requests])
            deleted += len(ids)
