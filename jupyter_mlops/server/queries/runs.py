"""Runs: a page of the list (filters, sorts, paging over indexes) and one run in full."""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Sequence
from typing import Any

from ...errors import NotFoundError, ValidationError, shorten
from ...tracking import storage
from ...tracking.search import filter_sql
from ...tracking.sweep import KEY_TAG as SWEEP_KEY_TAG
from ...store import Store
from ...entities import RUN_STATUSES, SYSTEM_METRIC_PREFIX
from ...validation import RUN_ID_RE
from .values import Relative, like_pattern, metric_value, number, plain

STATUSES = RUN_STATUSES
MAX_PAGE = 500
MAIN_METRICS = 3
MAX_METRIC_KEYS = 20
HISTORY_POINTS = 500
MAX_TEXT_CHARS = 1_000  # SQLite refuses a LIKE pattern past 50,000 bytes

# Each sort ends on rowid so paging is stable; ``start_time, rowid`` walks the runs_start
# index (rowid is its implicit last column) and needs no sort step even for 100,000 runs.
RUN_SORTS = {
    "start_time": ("r.start_time", "r.rowid"),
    "end_time": ("r.end_time IS NULL", "r.end_time", "r.rowid"),
    "name": ("r.name IS NULL", "r.name COLLATE NOCASE", "r.rowid"),
    "status": ("r.status", "r.start_time", "r.rowid"),
    "experiment": ("e.name COLLATE NOCASE", "r.start_time", "r.rowid"),
    "duration": ("r.end_time IS NULL", "r.end_time - r.start_time", "r.rowid"),
}
_NULL_FIRST_TERMS = ("IS NULL",)


def _order(sort: str, descending: bool) -> list[tuple[str, str]]:
    """ORDER BY terms with their directions for an attribute sort (metric sorts are paged
    by :func:`_metric_page`). ``x IS NULL`` terms stay ascending: missing values last."""
    direction = "DESC" if descending else "ASC"
    terms = RUN_SORTS.get(sort)
    if terms is None:
        raise ValidationError(
            f"Cannot sort runs by {shorten(sort)}; use one of {', '.join(RUN_SORTS)} "
            "or metrics.<key>."
        )
    return [(t, "ASC" if t.endswith(_NULL_FIRST_TERMS) else direction) for t in terms]


def _order_sql(terms: list[tuple[str, str]], reverse: bool = False) -> str:
    flip = {"ASC": "DESC", "DESC": "ASC"}
    return ", ".join(f"{t} {flip[d] if reverse else d}" for t, d in terms)


def _metric_key(sort: str) -> str | None:
    if not sort.startswith("metrics."):
        return None
    key = sort[len("metrics."):]
    if not key:
        raise ValidationError("Sort by metrics.<key>, such as metrics.accuracy.")
    return key


_RUN_COLUMNS = ("r.run_id, e.name, r.name, r.status, r.start_time, r.end_time, r.session_id, "
                "r.cell_id, r.execution_count, r.error_type, r.parent_run_id, r.user, r.origin")
_RUNS_FROM = "runs r JOIN experiments e ON e.experiment_id = r.experiment_id"


def _metric_page(store: Store, key: str, descending: bool, where: str, params: list[Any],
                 offset: int, limit: int) -> list[tuple]:
    """A page sorted by a metric: runs with a value first, walked in the order of the
    ``latest_metrics(key, value)`` index, then the runs without one (or with NaN), newest
    first. Two index walks instead of sorting every run."""
    direction = "DESC" if descending else "ASC"
    with_value = (f"FROM latest_metrics sm JOIN runs r ON r.run_id = sm.run_id "
                  f"JOIN experiments e ON e.experiment_id = r.experiment_id "
                  f"WHERE sm.key = ? AND sm.value IS NOT NULL AND ({where})")
    rows = store.query(
        f"SELECT {_RUN_COLUMNS} {with_value} "
        f"ORDER BY sm.value {direction}, sm.run_id {direction} LIMIT ? OFFSET ?",
        [key, *params, limit, offset],
    )
    if len(rows) == limit:
        return rows
    if where == "1":
        counted = store.query("SELECT count(*) FROM latest_metrics WHERE key = ? AND "
                              "value IS NOT NULL", (key,))[0][0]
    else:
        counted = store.query(f"SELECT count(*) {with_value}", [key, *params])[0][0]
    rest = store.query(
        f"SELECT {_RUN_COLUMNS} FROM {_RUNS_FROM} WHERE ({where}) AND NOT EXISTS ("
        "SELECT 1 FROM latest_metrics sm WHERE sm.run_id = r.run_id AND sm.key = ? "
        "AND sm.value IS NOT NULL) ORDER BY r.start_time DESC, r.rowid DESC LIMIT ? OFFSET ?",
        [*params, key, limit - len(rows), max(0, offset - counted)],
    )
    return rows + rest


def _run_filter(experiments: Sequence[str], statuses: Sequence[str], text: str | None,
                filter_text: str | None, parent: str | None = None, store: Any = None
                ) -> tuple[str, list[Any], bool]:
    """WHERE clause, its params, and whether it reads the experiments table.

    Child runs are listed under their parent (``parent``), or where a text or a filter
    looks for runs; otherwise the list holds top-level runs, each with its count of
    children.
    """
    clauses: list[str] = []
    params: list[Any] = []
    uses_experiment = False
    if parent is not None:
        clauses.append("r.parent_run_id = ?")
        params.append(check_run_id(parent))
    elif not text and not (filter_text and filter_text.strip()):
        clauses.append("r.parent_run_id IS NULL")
    if experiments:
        # One JSON parameter however many names a URL lists: SQLite caps parameters.
        clauses.append("r.experiment_id IN (SELECT experiment_id FROM experiments WHERE name "
                       "IN (SELECT value FROM json_each(?)))")
        params.append(json.dumps(list(experiments), allow_nan=False))
    if statuses:
        wrong = [s for s in statuses if s not in STATUSES]
        if wrong:
            raise ValidationError(
                f"Unknown run status {shorten(wrong[0])}; use {', '.join(STATUSES)}."
            )
        chosen = sorted(set(statuses))
        clauses.append(f"r.status IN ({', '.join('?' * len(chosen))})")
        params.extend(chosen)
    if text:
        if len(text) > MAX_TEXT_CHARS:
            raise ValidationError(f"The search text q has at most {MAX_TEXT_CHARS:,} "
                                  f"characters; got {len(text):,}.")
        pattern = like_pattern(text)
        parts = ["r.name LIKE ? ESCAPE '\\'",
                 "r.experiment_id IN (SELECT experiment_id FROM experiments "
                 "WHERE name LIKE ? ESCAPE '\\')"]
        params.extend([pattern, pattern])
        lowered = text.lower()
        if re.fullmatch(r"[0-9a-f]{4,32}", lowered):
            parts.append("(r.run_id >= ? AND r.run_id < ?)")
            params.extend([lowered, lowered + "g"])
        clauses.append(f"({' OR '.join(parts)})")
    if filter_text and filter_text.strip():
        sql, filter_params = filter_sql(filter_text, store)  # bare names as %mlops runs
        clauses.append(f"({_as_membership(sql)})")
        params.extend(filter_params)
        uses_experiment = "e." in sql
    return " AND ".join(clauses) or "1", params, uses_experiment


# search_runs' filter SQL tests each run with a correlated EXISTS; as an IN over the
# subquery, SQLite evaluates it once (through the key/value index) instead of once per run,
# which is what makes counting 100,000 runs under a metric filter fast. Same rows: run_id
# is never NULL. A filter written differently is left as it is.
_CORRELATED = re.compile(
    r"(NOT )?EXISTS \(SELECT 1 FROM (latest_metrics|params|tags) x "
    r"WHERE x\.run_id = r\.run_id AND "
)


def _as_membership(sql: str) -> str:
    return _CORRELATED.sub(
        lambda m: f"r.run_id {m.group(1) or ''}IN (SELECT x.run_id FROM {m.group(2)} x WHERE ",
        sql,
    )


def _rank_metric_keys(rows: list[tuple[str, str]], first: str | None) -> list[str]:
    """Metric keys in the order rows show them: the sort key, then the keys most runs of
    the page have, the cell's own names (no dot) before an estimator's nested ones, and
    what the cells cost (system.*) last."""
    counts: dict[str, int] = {}
    for _, key in rows:
        counts[key] = counts.get(key, 0) + 1
    ranked = sorted(counts, key=lambda k: (k.startswith(SYSTEM_METRIC_PREFIX), "." in k,
                                           -counts[k], k))
    return ([first] if first else []) + [k for k in ranked if k != first]


def list_runs(
    store: Store | None,
    *,
    experiments: Sequence[str] = (),
    statuses: Sequence[str] = (),
    text: str | None = None,
    filter_text: str | None = None,
    sort: str = "start_time",
    descending: bool = True,
    offset: int = 0,
    limit: int = 100,
    parent: str | None = None,
) -> dict[str, Any]:
    """One page of runs, newest first unless sorted otherwise, with the total count.

    Top-level runs carry ``children``, their number of child runs; ``parent=RUN`` lists
    those children. A text or a filter searches every run, children too.

    Examples
    --------
    >>> list_runs(store, statuses=["FAILED"], limit=10)["total"]   # doctest: +SKIP
    1
    """
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ValidationError(f"offset must be a whole number ≥ 0; got {shorten(offset)}.")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise ValidationError(f"limit must be a whole number from 1 to {MAX_PAGE}; "
                              f"got {shorten(limit)}.")
    where, where_params, uses_experiment = _run_filter(experiments, statuses, text,
                                                       filter_text, parent, store)
    sort_key = _metric_key(sort)
    order = None if sort_key else _order(sort, descending)
    page: dict[str, Any] = {"runs": [], "total": 0, "offset": offset, "limit": limit,
                            "metric_keys": [], "experiments": [], "now": time.time()}
    if store is None:
        return page

    count_from = f"{_RUNS_FROM}" if uses_experiment else "runs r"
    page["total"] = store.query(f"SELECT count(*) FROM {count_from} WHERE {where}",
                                where_params)[0][0]
    if sort_key:
        rows = _metric_page(store, sort_key, descending, where, where_params, offset, limit)
    elif offset > page["total"] // 2:
        # Deep pages are read from the other end: OFFSET costs one index step per row.
        size = max(0, min(limit, page["total"] - offset))
        rows = store.query(
            f"SELECT {_RUN_COLUMNS} FROM {_RUNS_FROM} WHERE {where} "
            f"ORDER BY {_order_sql(order, reverse=True)} LIMIT ? OFFSET ?",
            [*where_params, size, max(0, page["total"] - offset - size)],
        )[::-1] if size else []
    else:
        rows = store.query(
            f"SELECT {_RUN_COLUMNS} FROM {_RUNS_FROM} WHERE {where} "
            f"ORDER BY {_order_sql(order)} LIMIT ? OFFSET ?",
            [*where_params, limit, offset],
        )
    page["experiments"] = [name for (name,) in store.query(
        "SELECT name FROM experiments ORDER BY name COLLATE NOCASE")]
    if not rows:
        return page
    ids = json.dumps([row[0] for row in rows], allow_nan=False)
    metric_rows = store.query(
        "SELECT m.run_id, m.key, m.value, m.is_nan FROM latest_metrics m "
        "WHERE m.run_id IN (SELECT value FROM json_each(?))", (ids,))
    # Each row shows its own main metrics (three at most), in the page's order of keys,
    # so rows of one experiment line up and a run with other metrics still shows its own.
    ranked = _rank_metric_keys([(r[0], r[1]) for r in metric_rows], sort_key)
    rank = {key: i for i, key in enumerate(ranked)}
    by_run: dict[str, dict[str, tuple[float | None, str | None]]] = {}
    for run_id, key, value, is_nan in metric_rows:
        by_run.setdefault(run_id, {})[key] = metric_value(value, is_nan)
    shown = {run_id: dict(sorted(values.items(), key=lambda kv: rank[kv[0]])[:MAIN_METRICS])
             for run_id, values in by_run.items()}
    page["metric_keys"] = ranked[:MAX_METRIC_KEYS]
    children = dict(store.query(
        "SELECT parent_run_id, count(*) FROM runs WHERE parent_run_id IN "
        "(SELECT value FROM json_each(?)) GROUP BY parent_run_id", (ids,)))
    # A sweep's parent is shown as one, its trials folded under it.
    sweeps = {run_id for (run_id,) in store.query(
        "SELECT run_id FROM tags WHERE key = ? AND run_id IN (SELECT value FROM json_each(?))",
        (SWEEP_KEY_TAG, ids))}
    # Which notebook and kernel each run came from, so the list tells them apart.
    session_ids = json.dumps(sorted({row[6] for row in rows if row[6]}), allow_nan=False)
    sessions = {sid: (notebook, started) for sid, notebook, started in store.query(
        "SELECT session_id, notebook, started FROM sessions WHERE session_id IN "
        "(SELECT value FROM json_each(?))", (session_ids,))}
    for (run_id, experiment, name, status, start, end, session_id, cell_id, count,
         error_type, parent_run_id, user, origin) in rows:
        values = shown.get(run_id, {})
        notebook, session_started = sessions.get(session_id, (None, None))
        run = {
            "run_id": run_id, "name": name, "experiment": experiment, "status": status,
            "start_time": start, "end_time": end,
            "duration_s": None if end is None else end - start,
            "session_id": session_id, "cell_id": cell_id, "execution_count": count,
            "error_type": error_type, "parent_run_id": parent_run_id,
            "children": children.get(run_id, 0), "sweep": run_id in sweeps,
            # Who made the run, and the tracking server it was pulled from (None: here).
            "user": user, "origin": origin,
            "notebook_name": _file_name(notebook), "session_started": session_started,
            "metrics": {k: v for k, (v, _) in values.items()},
        }
        nonfinite = {k: mark for k, (_, mark) in values.items() if mark}
        if nonfinite:
            run["nonfinite"] = nonfinite
        page["runs"].append(run)
    return page


def _file_name(path: str | None) -> str | None:
    """The last part of a notebook's path: the list never shows this machine's folders."""
    return path.replace("\\", "/").rsplit("/", 1)[-1] if path else None


def _history(store: Store, run_id: str, key: str, count: int) -> list[dict[str, Any]]:
    """The metric's steps, thinned evenly to at most HISTORY_POINTS (last step kept)."""
    every = 1 if count <= HISTORY_POINTS else math.ceil(count / (HISTORY_POINTS - 1))
    rows = store.query(
        "SELECT step, value, is_nan, timestamp FROM ("
        "  SELECT step, value, is_nan, timestamp, "
        "         row_number() OVER (ORDER BY step, timestamp, rowid) AS n "
        "  FROM metrics WHERE run_id = ? AND key = ?"
        ") WHERE (n - 1) % ? = 0 OR n = ? ORDER BY n",
        (run_id, key, every, count),
    )
    points = []
    for step, value, is_nan, timestamp in rows:
        shown, mark = metric_value(value, is_nan)
        point: dict[str, Any] = {"step": step, "value": shown, "timestamp": timestamp}
        if mark:
            point["nonfinite"] = mark
        points.append(point)
    return points


def check_run_id(run_id: str) -> str:
    if not RUN_ID_RE.match(run_id or ""):
        raise ValidationError(
            f"A run id is 32 lowercase hex characters; got {shorten(run_id)}."
        )
    return run_id


def run_detail(store: Store | None, run_id: str, relative: Relative) -> dict[str, Any]:
    """Everything about one run: params, metrics with their history, tags, artifacts,
    inputs, the cell that made it (id, source, notebook) and its error."""
    check_run_id(run_id)
    if store is None or not store.query("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)):
        raise NotFoundError(f"No run {run_id!r} in the store.")
    run = storage.get_run(store, run_id)
    counts = dict(store.query(
        "SELECT key, count(*) FROM metrics WHERE run_id = ? GROUP BY key", (run_id,)))
    metrics = []
    for key, value in run.metrics.items():
        shown, mark = number(value)
        metric: dict[str, Any] = {"key": key, "value": shown,
                                  "steps": counts.get(key, 0),
                                  "history": _history(store, run_id, key, counts.get(key, 0))}
        if mark:
            metric["nonfinite"] = mark
        metrics.append(metric)
    notebook = None
    if run.session_id:
        found = store.query("SELECT notebook FROM sessions WHERE session_id = ?",
                            (run.session_id,))
        notebook = found[0][0] if found else None
    cell = run.cells[0] if run.cells else None
    user, origin = (store.query("SELECT user, origin FROM runs WHERE run_id = ?",
                                (run.run_id,)) or [(None, None)])[0]
    return {
        "run_id": run.run_id, "name": run.name, "experiment": run.experiment,
        "status": run.status, "start_time": run.start_time, "end_time": run.end_time,
        "duration_s": run.duration_s, "session_id": run.session_id,
        "cell_id": run.cell_id, "execution_count": run.execution_count,
        "parent_run_id": run.parent_run_id, "user": user, "origin": origin,
        "notebook_path": relative(notebook),
        "notebook_name": _file_name(notebook),
        "source": cell.source if cell else run.source,
        "params": plain(run.params), "metrics": metrics, "tags": run.tags,
        "artifacts": [
            {"name": a.name, "kind": a.kind, "sha256": a.sha256, "size": a.size,
             "media_type": a.media_type}
            for a in run.artifacts
        ],
        "inputs": [
            {"name": d.name, "role": d.role, "fingerprint": d.fingerprint, "kind": d.kind,
             "shape": list(d.shape), "columns": d.columns}
            for d in run.inputs
        ],
        "error_type": run.error_type, "error": run.error, "traceback": run.traceback,
        "now": time.time(),
    }
