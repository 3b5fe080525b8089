"""Runs, their params, metrics, tags, artifacts and data, and the record of cell executions:
the SQL of tracking, beside its domain as ``evaluation/storage.py`` is beside evaluations.
Every function takes the store first; ``Store`` itself only opens, migrates and guards the
file (DESIGN.md: the store is infrastructure).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
import weakref
from collections.abc import Iterable, Sequence
from typing import Any

from ..entities import (
    SYSTEM_METRIC_PREFIX,
    Artifact,
    CellExecution,
    DatasetInput,
    Metric,
    Run,
)
from ..errors import NotFoundError, ValidationError, shorten
from ..store import jsoncodec
from ..store.chunks import Chunks
from ..store.process import current_process
from ..store.sqlite import Store, write_signature
from ..validation import MAX_STEP, decode_param
from .user import current_user

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


def decode_metric(value: float | None, is_nan: int) -> float:
    # SQLite turns NaN into NULL, so NaN is kept as a flag beside a NULL value.
    return float("nan") if is_nan else float(value)  # type: ignore[arg-type]


_STEPS: weakref.WeakKeyDictionary[Store, tuple[int, dict[tuple[str, str], int]]] = (
    weakref.WeakKeyDictionary())


def _steps(store: Store) -> dict[tuple[str, str], int]:
    """The next step of each ``(run, key)`` this process logs to, so appending a metric does
    not ask SQLite for its last step each time. Dropped when the store opens a new connection
    (after a fork), since another process may have logged since."""
    held = _STEPS.get(store)
    if held is None or held[0] != store.generation:
        held = _STEPS[store] = (store.generation, {})
    return held[1]


class _Histories:
    """What a ``Run`` needs of the store it came from (``entities.MetricSource``)."""

    __slots__ = ("store",)

    def __init__(self, store: Store) -> None:
        self.store = store

    def metric_history(self, run_id: str, key: str) -> list[Metric]:
        return metric_history(self.store, run_id, key)


# -- runs --------------------------------------------------------------------------


def _experiment_id(conn: sqlite3.Connection, name: str) -> int:
    row = conn.execute(
        "SELECT experiment_id FROM experiments WHERE name = ?", (name,)
    ).fetchone()
    if row:
        return row[0]
    return conn.execute(
        "INSERT INTO experiments (name, created) VALUES (?, ?)", (name, time.time())
    ).lastrowid


def create_run(
    store: Store,
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
    with store.write() as conn:
        experiment_id = _experiment_id(conn, experiment)
        conn.execute(
            "INSERT INTO runs (run_id, experiment_id, name, status, start_time, heartbeat, "
            "pid, host, proc_start, session_id, cell_id, execution_count, source, "
            "parent_run_id, user) VALUES (?, ?, ?, 'RUNNING', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (run_id, experiment_id, name, started, now, pid, host, start, session_id,
             cell_id, execution_count, source, parent_run_id, current_user()),
        )
        if tags:
            conn.executemany(
                "INSERT INTO tags (run_id, key, value) VALUES (?, ?, ?)",
                [(run_id, k, v) for k, v in tags.items()],
            )
    return started


def finish_run(
    store: Store,
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
    with store.write() as conn:
        updated = conn.execute(
            "UPDATE runs SET status = ?, end_time = ?, heartbeat = ?, error_type = ?, "
            "error = ?, traceback = ?, execution_count = coalesce(?, execution_count) "
            "WHERE run_id = ? AND status = 'RUNNING'",
            (status, ended, now, error_type, error, traceback, execution_count, run_id),
        ).rowcount
        if not updated:
            row = conn.execute("SELECT status FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"No run {run_id!r} in {store.path}.")
        else:
            conn.execute("UPDATE runs SET summary = ? WHERE run_id = ?",
                         (run_summary(conn, run_id), run_id))
    _forget_steps(store, run_id)


def reopen_run(store: Store, run_id: str) -> None:
    """A KILLED or FAILED run RUNNING again in this process (a sweep resumed after its kernel
    died): its end and error are cleared, what it logged is kept."""
    pid, host, start = current_process()
    with store.write() as conn:
        updated = conn.execute(
            "UPDATE runs SET status = 'RUNNING', end_time = NULL, heartbeat = ?, pid = ?, "
            "host = ?, proc_start = ?, error_type = NULL, error = NULL, traceback = NULL, "
            "summary = NULL WHERE run_id = ? AND status IN ('KILLED', 'FAILED')",
            (time.time(), pid, host, start, run_id)).rowcount
    if not updated:
        raise ValidationError(f"Run {run_id[:8]} is not KILLED or FAILED, so it cannot be "
                              "resumed; start a new one.")


def _forget_steps(store: Store, run_id: str) -> None:
    steps = _steps(store)
    for key in [k for k in steps if k[0] == run_id]:
        del steps[key]


def log_params(store: Store, run_id: str, encoded: dict[str, str]) -> None:
    """Params are write-once: the same value again is fine, a different one is refused."""
    if not encoded:
        return
    with store.write() as conn:
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


def next_step(store: Store, conn: sqlite3.Connection, run_id: str, key: str) -> int:
    cache_key = (run_id, key)
    step = _steps(store).get(cache_key)
    if step is None:
        row = conn.execute(
            "SELECT max(step) FROM metrics WHERE run_id = ? AND key = ?", (run_id, key)
        ).fetchone()
        step = 0 if row[0] is None else row[0] + 1
    return step


def log_metrics(
    store: Store, run_id: str, values: Iterable[tuple[str, float, int | None]], timestamp: float
) -> None:
    """Append metric values; a ``None`` step means one past the key's last step."""
    with store.write() as conn:
        rows = []
        latest: dict[str, tuple] = {}
        pending: dict[str, int] = {}
        for key, value, step in values:
            if step is None:
                step = pending.get(key)
                if step is None:
                    step = next_step(store, conn, run_id, key)
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
    steps = _steps(store)
    for key, step in pending.items():
        cache_key = (run_id, key)
        steps[cache_key] = max(step, steps.get(cache_key, 0))


def log_metric_points(store: Store, run_id: str, points: Iterable[tuple[str, float, int, float]]
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
    with store.write() as conn:
        conn.executemany(_INSERT_METRIC, rows)
        conn.executemany(_UPSERT_LATEST, list(latest.values()))
        conn.execute(_HEARTBEAT, (time.time(), run_id))
    steps = _steps(store)
    for key, row in latest.items():
        cache_key = (run_id, key)
        steps[cache_key] = max(row[2] + 1, steps.get(cache_key, 0))


def set_tags(store: Store, run_id: str, tags: dict[str, str]) -> None:
    with store.write() as conn:
        conn.executemany(
            "INSERT INTO tags (run_id, key, value) VALUES (?, ?, ?) "
            "ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value",
            [(run_id, k, v) for k, v in tags.items()],
        )
        conn.execute(_HEARTBEAT, (time.time(), run_id))


def add_artifact(
    store: Store, run_id: str, name: str, kind: str, sha256: str, size: int, media_type: str | None,
    *, pickled: bool = False, chunks: Chunks | None = None,
) -> None:
    """Record an artifact of a run; ``pickled`` ones are signed (see ``Store.signature``),
    with the digests of their chunks when given (see ``store.chunks``)."""
    with store.write() as conn:
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


def add_datasets(store: Store, run_id: str,
                 inputs: Iterable[tuple[str, str, dict[str, Any]]]) -> None:
    """Link fingerprinted data to a run: ``(name, role, fingerprint record)`` triples."""
    with store.write() as conn:
        write_datasets(conn, inputs, run_id)


# -- sessions and cells ----------------------------------------------------------


def start_session(store: Store, session_id: str, notebook: str | None, python: str) -> None:
    pid, host, start = current_process()
    with store.write() as conn:
        conn.execute(
            "INSERT OR IGNORE INTO sessions (session_id, pid, host, proc_start, started, "
            "notebook, python, cwd, user) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (session_id, pid, host, start, time.time(), notebook, python, os.getcwd(),
             current_user()),
        )


def set_session_notebook(store: Store, session_id: str, notebook: str) -> None:
    """The notebook a session turned out to run (found by its cells' sources), when none
    was named at its start."""
    with store.write() as conn:
        conn.execute("UPDATE sessions SET notebook = ? WHERE session_id = ? AND notebook IS NULL",
                     (notebook, session_id))


def start_cell(
    store: Store,
    session_id: str,
    execution_count: int | None,
    cell_id: str | None,
    source: str,
    defined: list[str],
    used: list[str],
    started: float,
    run_id: str | None = None,
) -> int:
    with store.write() as conn:
        return conn.execute(
            "INSERT INTO cells (session_id, execution_count, cell_id, source, defined, used, "
            "started, status, run_id) VALUES (?, ?, ?, ?, ?, ?, ?, 'running', ?)",
            (session_id, execution_count, cell_id, source, _strict_json(defined),
             _strict_json(used), started, run_id),
        ).lastrowid


def finish_cell(
    store: Store,
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
    as_json = [_strict_json(names) for names in (defined, used, unchanged, modified)]
    with store.write() as conn:
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


def metric_history(store: Store, run_id: str, key: str) -> list[Metric]:
    rows = store.query(
        "SELECT step, value, is_nan, timestamp FROM metrics WHERE run_id = ? AND key = ? "
        "ORDER BY step, timestamp, rowid",
        (run_id, key),
    )
    return [Metric(key, decode_metric(v, n), step, ts) for step, v, n, ts in rows]


def metric_histories(store: Store, run_ids: Sequence[str], key: str
                     ) -> dict[str, list[Metric]]:
    """The steps of one metric of many runs, in one query: ``run_id -> [Metric]``."""
    found: dict[str, list[Metric]] = {}
    for run_id, step, v, n, ts in store.query(
            "SELECT run_id, step, value, is_nan, timestamp FROM metrics WHERE key = ? AND "
            "run_id IN (SELECT value FROM json_each(?)) ORDER BY run_id, step, timestamp, "
            "rowid", (key, json.dumps(list(run_ids), allow_nan=False))):
        found.setdefault(run_id, []).append(Metric(key, decode_metric(v, n), step, ts))
    return found


def resolve_run_id(store: Store, ref: str) -> str:
    """A full run id from a full id or a unique prefix of at least 4 hex characters."""
    ref = (ref or "").strip().lower()
    if len(ref) == 32 and all(c in "0123456789abcdef" for c in ref):
        if store.query("SELECT 1 FROM runs WHERE run_id = ?", (ref,)):
            return ref
    elif len(ref) >= 4 and all(c in "0123456789abcdef" for c in ref):
        rows = store.query(
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
    raise NotFoundError(f"No run {ref!r} in {store.path}. List runs with %mlops runs.")


def cells(store: Store, where: str = "1", params: Sequence[Any] = ()) -> list[CellExecution]:
    rows = store.query(
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


def run_outcome(store: Store, run_id: str) -> tuple[str, float | None, str | None,
                                                    dict[str, float]]:
    """A run's status, duration, error and latest metrics (system ones too): what a
    sweep reads back after each trial, in two queries rather than ``get_run``'s seven."""
    ((status, start, end, error),) = store.query(
        "SELECT status, start_time, end_time, error FROM runs WHERE run_id = ?", (run_id,))
    metrics = {k: decode_metric(v, n) for k, v, n in store.query(
        "SELECT key, value, is_nan FROM latest_metrics WHERE run_id = ?", (run_id,))}
    return status, None if end is None else end - start, error, metrics


def get_run(store: Store, run_ref: str) -> Run:
    run_id = resolve_run_id(store, run_ref)
    (row,) = store.query(
        "SELECT r.run_id, e.name, r.name, r.status, r.start_time, r.end_time, r.session_id, "
        "r.cell_id, r.execution_count, r.source, r.error_type, r.error, r.traceback, "
        "r.parent_run_id FROM runs r JOIN experiments e USING (experiment_id) "
        "WHERE r.run_id = ?",
        (run_id,),
    )
    params = {k: decode_param(v) for k, v in store.query(
        "SELECT key, value FROM params WHERE run_id = ? ORDER BY key", (run_id,))}
    metrics = {k: decode_metric(v, n) for k, v, n in store.query(
        "SELECT key, value, is_nan FROM latest_metrics WHERE run_id = ? ORDER BY key",
        (run_id,))}
    system = {k: metrics.pop(k) for k in list(metrics) if k.startswith(SYSTEM_METRIC_PREFIX)}
    tags = dict(store.query("SELECT key, value FROM tags WHERE run_id = ? ORDER BY key",
                           (run_id,)))
    artifacts = [Artifact(*r) for r in store.query(
        "SELECT name, kind, sha256, size, media_type FROM artifacts WHERE run_id = ? "
        "ORDER BY id", (run_id,))]
    inputs = [
        DatasetInput(name, role, fp, kind, tuple(json.loads(shape)),
                     None if cols is None else json.loads(cols),
                     None if dtypes is None else json.loads(dtypes))
        for name, role, fp, kind, shape, cols, dtypes in store.query(
            "SELECT rd.name, rd.role, d.fingerprint, d.kind, d.shape, d.columns, d.dtypes "
            "FROM run_datasets rd JOIN datasets d USING (fingerprint) WHERE rd.run_id = ? "
            "ORDER BY rd.role, rd.name", (run_id,))
    ]
    return Run(
        run_id=row[0], experiment=row[1], name=row[2], status=row[3], start_time=row[4],
        end_time=row[5], session_id=row[6], cell_id=row[7], execution_count=row[8],
        source=row[9], params=params, metrics=metrics, tags=tags, artifacts=artifacts,
        inputs=inputs, cells=cells(store, "run_id = ?", (run_id,)), error_type=row[10],
        error=row[11], traceback=row[12], parent_run_id=row[13], system_metrics=system,
        _store=_Histories(store),
    )


def param_value(value: Any, json_type: str) -> Any:
    """A param read as ``json_extract(value, '$'), json_type(value)``: SQLite decoded the
    scalars already, so only arrays and objects need ``json.loads``."""
    if json_type in ("integer", "real", "text", "null"):
        return value
    if json_type == "true":
        return True
    if json_type == "false":
        return False
    return json.loads(value)  # arrays and objects come back as JSON text


def run_table(store: Store, run_ids: Sequence[str]) -> list[dict[str, Any]]:
    """Many runs at once, for comparing them: each run's attributes, params and, per metric
    (``system.*`` left out), its latest value, minimum, maximum and number of steps, in the
    order of ``run_ids``. Three queries however many runs; NaN steps count in neither the
    minimum nor the maximum."""
    ids = json.dumps(list(run_ids), allow_nan=False)
    chosen = "IN (SELECT value FROM json_each(?))"
    found: dict[str, dict[str, Any]] = {}
    for run_id, experiment, name, status, start, end, parent in store.query(
            "SELECT r.run_id, e.name, r.name, r.status, r.start_time, r.end_time, "
            f"r.parent_run_id FROM runs r JOIN experiments e USING (experiment_id) "
            f"WHERE r.run_id {chosen}", (ids,)):
        found[run_id] = {"run_id": run_id, "experiment": experiment, "name": name,
                         "status": status, "start_time": start, "end_time": end,
                         "parent_run_id": parent, "params": {}, "metrics": {}}
    for run_id, key, value, kind in store.query(
            "SELECT run_id, key, json_extract(value, '$'), json_type(value) FROM params "
            f"WHERE run_id {chosen} ORDER BY key", (ids,)):
        found[run_id]["params"][key] = param_value(value, kind)
    for run_id, key, value, is_nan, low, high, steps in store.query(
            "SELECT l.run_id, l.key, l.value, l.is_nan, min(m.value), max(m.value), count(*) "
            "FROM latest_metrics l JOIN metrics m ON m.run_id = l.run_id AND m.key = l.key "
            f"WHERE l.run_id {chosen} AND l.key NOT LIKE ? "
            "GROUP BY l.run_id, l.key ORDER BY l.key", (ids, f"{SYSTEM_METRIC_PREFIX}%")):
        latest = decode_metric(value, is_nan)
        found[run_id]["metrics"][key] = (
            latest, latest if low is None else float(low), latest if high is None
            else float(high), steps)
    return [found[run_id] for run_id in dict.fromkeys(run_ids) if run_id in found]


# -- runs made elsewhere -----------------------------------------------------------


def replace_pulled_run(store: Store, run: dict[str, Any], params: dict[str, str],
                       tags: dict[str, str], metrics: Iterable[tuple[str, float, int, float]]
                       ) -> bool:
    """Store (or refresh) a copy of a run pulled from a tracking server, in one transaction.

    ``run`` holds run_id, experiment, name, status, start_time, end_time, user, origin,
    cell_id, execution_count; params are text as the server holds them. A copy is replaced
    whole by a newer one; a run made here with the same id is never touched (False).
    """
    with store.write() as conn:
        found = conn.execute("SELECT origin FROM runs WHERE run_id = ?",
                             (run["run_id"],)).fetchone()
        if found is not None and found[0] is None:
            return False
        run_id = run["run_id"]
        if found is not None:
            for table in ("metrics", "latest_metrics", "params", "tags"):
                conn.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))
            conn.execute("DELETE FROM runs WHERE run_id = ?", (run_id,))
        conn.execute(
            "INSERT INTO runs (run_id, experiment_id, name, status, start_time, end_time, "
            "heartbeat, cell_id, execution_count, user, origin) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (run_id, _experiment_id(conn, run["experiment"]), run["name"], run["status"],
             run["start_time"], run["end_time"], time.time(), run["cell_id"],
             run["execution_count"], run["user"], run["origin"]))
        conn.executemany("INSERT INTO params (run_id, key, value) VALUES (?, ?, ?)",
                         [(run_id, k, _strict_json(v)) for k, v in params.items()])
        conn.executemany("INSERT INTO tags (run_id, key, value) VALUES (?, ?, ?)",
                         [(run_id, k, v) for k, v in tags.items()])
        rows = [(run_id, key, step, None if value != value else value, int(value != value),
                 when) for key, value, step, when in metrics]
        latest: dict[str, tuple] = {}
        for row in rows:
            if row[1] not in latest or row[2] >= latest[row[1]][2]:
                latest[row[1]] = row
        conn.executemany(_INSERT_METRIC, rows)
        conn.executemany(_UPSERT_LATEST, list(latest.values()))
        if run["status"] != "RUNNING":
            conn.execute("UPDATE runs SET summary = ? WHERE run_id = ?",
                         (run_summary(conn, run_id), run_id))
    _forget_steps(store, run_id)
    return True
