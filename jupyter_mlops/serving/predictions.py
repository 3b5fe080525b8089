"""The predictions log read back: traffic for monitoring and A/B tests, labels, pruning.

Every answered request's inputs and outputs are written by :class:`PredictionLog`
(``journal.py``: journaled before the answer leaves, stored exactly once).
:func:`load_traffic` reads a version's requests back as one DataFrame (or array) in the
signature's columns and dtypes; a logged row it cannot read is skipped and counted, never
fatal. Labels arrive later, per request row, through :func:`log_labels`.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ..errors import NotFoundError, StoreError, ValidationError, shorten
from ..store import jsoncodec
from .formats import InputSpec, dumps, jsonable
from .journal import PredictionLog, PredictionRecord, replay_journals, store_records

__all__ = ["PredictionLog", "PredictionRecord", "Traffic", "load_traffic", "log_labels",
           "parse_since", "predictions_frame", "prune_predictions", "replay_journals",
           "store_records"]

log = logging.getLogger("jupyter_mlops.serving")
REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,64}\Z")


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
    ``labels`` (None where no label arrived) are lists aligned with it. ``skipped``
    counts the logged requests that could not be read back (left out), ``skipped_labels``
    the labels.
    """

    inputs: Any
    outputs: list
    request_ids: list[str]
    rows: list[int]
    answered: list[bool]
    latency_ms: list[float] = field(default_factory=list)
    labels: list | None = None
    skipped: int = 0
    skipped_labels: int = 0

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
    A row that cannot be read back (a body that does not parse, outputs that are not JSON,
    inputs that no longer fit ``spec``) is left out and counted in ``Traffic.skipped``:
    one bad row never stops a monitor. Journals left by killed servers are stored first.
    """
    import numpy as np
    import pandas as pd

    from .formats import rows_of

    if not getattr(store, "read_only", False):
        try:
            replay_journals(store)
        except (StoreError, OSError) as exc:
            log.warning("Journals of killed servers were not replayed: %s", exc)
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
    entries: list[_Logged] = []
    skipped = 0
    for start in range(0, len(selected), 500):
        chunk = selected[start:start + 500]
        for request_id, content_type, body, outs, flag, latency, n_rows in store.query(
                "SELECT request_id, content_type, inputs, outputs, answered, latency_ms, n_rows "
                f"FROM predictions WHERE id IN ({', '.join('?' for _ in chunk)}) "
                "ORDER BY created, id", chunk):
            try:
                columns, rows = rows_of(body, content_type, spec)
                decoded = json.loads(outs)
            except Exception:  # noqa: BLE001 - whatever is wrong with it, the row is left out
                skipped += 1
                continue
            outputs = decoded if isinstance(decoded, list) else [decoded] * n_rows
            entries.append(_Logged(columns, rows, outputs, request_id, bool(flag), latency,
                                   n_rows))
    # Consecutive requests with the same columns are conformed as one frame.
    parts, kept = [], []
    group: list[_Logged] = []
    for entry in [*entries, None]:
        if entry is not None and (not group or group[-1].columns == entry.columns):
            group.append(entry)
            continue
        if group:
            conformed, fitting = _conform_group(group, spec)
            skipped += len(group) - len(fitting)
            if fitting:
                parts.append(conformed)
                kept.extend(fitting)
        group = [entry] if entry is not None else []
    if not parts:
        inputs: Any = pd.DataFrame(columns=list(spec.columns)) if spec.kind == "dataframe" \
            else np.empty((0,))
    elif isinstance(parts[0], pd.DataFrame):
        inputs = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    else:
        inputs = np.concatenate([np.asarray(p) for p in parts])
    traffic = Traffic(inputs, [o for e in kept for o in e.outputs],
                      [e.request_id for e in kept for _ in range(e.n_rows)],
                      [i for e in kept for i in range(e.n_rows)],
                      [e.answered for e in kept for _ in range(e.n_rows)],
                      [e.latency for e in kept for _ in range(e.n_rows)], skipped=skipped)
    if skipped:
        log.warning("%d logged request(s) of %s/%s could not be read and were left out.",
                    skipped, name, version)
    if with_labels and traffic.request_ids:
        traffic.labels, traffic.skipped_labels = _labels_for(store, traffic.request_ids,
                                                             traffic.rows)
    return traffic


class _Logged(NamedTuple):
    columns: list[str] | None
    rows: list
    outputs: list
    request_id: str
    answered: bool
    latency: float
    n_rows: int


def _conform_group(group: list[_Logged], spec: InputSpec) -> tuple[Any, list[_Logged]]:
    """The group's rows as one conformed frame; when that fails, each request alone, and
    the ones that do not fit are left out."""
    import numpy as np
    import pandas as pd

    def conform(entries: list[_Logged]) -> Any:
        rows = [row for e in entries for row in e.rows]
        columns = entries[0].columns
        raw = pd.DataFrame(rows, columns=columns) if columns is not None else rows
        try:
            return spec.conform(raw, extra="drop")
        except Exception:  # noqa: BLE001 - whatever does not fit is left out and counted
            return None

    whole = conform(group)
    if whole is not None:
        return whole, group
    alone = [(entry, conform([entry])) for entry in group]
    fitting = [entry for entry, part in alone if part is not None]
    parts = [part for _, part in alone if part is not None]
    if not parts:
        return None, []
    if isinstance(parts[0], pd.DataFrame):
        return pd.concat(parts, ignore_index=True), fitting
    return np.concatenate([np.asarray(p) for p in parts]), fitting


def _labels_for(store: Any, request_ids: list[str],
                positions: list[int]) -> tuple[list | None, int]:
    """The label of every row (None where none arrived), and how many could not be read."""
    wanted = sorted(set(request_ids))
    found: dict[tuple[str, int], Any] = {}
    unreadable = 0
    for start in range(0, len(wanted), 500):
        chunk = wanted[start:start + 500]
        for request_id, row, label in store.query(
                "SELECT request_id, row, label FROM prediction_labels WHERE request_id IN "
                f"({', '.join('?' for _ in chunk)})", chunk):
            try:
                found[(request_id, row)] = json.loads(label)
            except (TypeError, ValueError, RecursionError):
                unreadable += 1
    if not found:
        return None, unreadable
    return [found.get((r, p)) for r, p in zip(request_ids, positions)], unreadable


MAX_LABEL_DEPTH = 32


def _refuse_odd_labels(values: list) -> None:
    """Labels nested deeper than a label can mean, or integers beyond 64 bits (which no
    evaluation can take), are refused before anything is stored."""
    stack = [(value, 1, index) for index, value in enumerate(values)]
    while stack:
        value, depth, index = stack.pop()
        if depth > MAX_LABEL_DEPTH:
            raise ValidationError(f"Label {index} nests lists or objects more than "
                                  f"{MAX_LABEL_DEPTH} deep; send one value per row.")
        if isinstance(value, int) and not isinstance(value, bool) and \
                not -2**63 <= value < 2**64:
            text = repr(value)
            shown = text if len(text) <= 40 else f"{text[:20]}... ({len(text)} digits)"
            raise ValidationError(f"Label {index} is {shown}, beyond 64-bit integers; send "
                                  "labels an evaluation can take.")
        if isinstance(value, (list, tuple)):
            stack.extend((item, depth + 1, index) for item in value)
        elif isinstance(value, dict):
            stack.extend((item, depth + 1, index) for item in value.values())


def log_labels(request_id: str, labels: Any, *, store: Any = None) -> int:
    """Record the true values of a served request, one per row it scored.

    Examples
    --------
    >>> log_labels("7f3a…", [1, 0, 1])       # doctest: +SKIP
    3
    """
    from ..store.current import get_store

    store = store or get_store()
    if not isinstance(request_id, str) or not REQUEST_ID_RE.match(request_id):
        raise ValidationError(
            f"A request id has 1 to 64 letters, digits, '.', '_', ':' or '-'; got "
            f"{shorten(request_id)}."
        )
    values = labels if isinstance(labels, list) else jsonable(labels)
    if not isinstance(values, list):
        values = [values]
    _refuse_odd_labels(values)
    values = jsoncodec.plain(values)
    rows = store.query("SELECT max(n_rows) FROM predictions WHERE request_id = ?", (request_id,))
    n_rows = rows[0][0] if rows else None
    if n_rows is None:
        raise NotFoundError(
            f"No logged request {request_id!r}; label a request id the server returned in "
            "its X-Request-Id header (logging may lag by a fraction of a second)."
        )
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
