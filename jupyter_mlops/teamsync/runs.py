"""What one local run becomes on an MLflow tracking server: its tags (ours and the lineage),
params, metric points, artifacts and dataset inputs, and the state that says what was sent.

Reading happens here, on the thread that owns the store; sending happens in ``push``'s
workers, from the plain values built here.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from ..store import jsoncodec
from ..store.sqlite import Store
from ..tracking.storage import decode_metric
from ..validation import decode_param

# MLflow refuses keys outside this set (and params longer than this).
_KEY_BAD = re.compile(r"[^A-Za-z0-9_\-. /]")
MAX_PARAM = 6000
MAX_TAG = 8000
CELL_SOURCE = "jupyter_mlops/cell.py"

RUNS_SQL = """
SELECT r.run_id, e.name, r.name, r.status, r.start_time, r.end_time, r.heartbeat,
       r.parent_run_id, r.session_id, r.cell_id, r.execution_count, r.source,
       coalesce(r.user, s.user), s.notebook, r.error_type, r.error,
       (SELECT count(*) FROM run_datasets d WHERE d.run_id = r.run_id),
       (SELECT count(*) FROM artifacts a WHERE a.run_id = r.run_id)
FROM runs r JOIN experiments e USING (experiment_id) LEFT JOIN sessions s USING (session_id)
WHERE r.origin IS NULL {where}
ORDER BY r.start_time, r.run_id
"""


def key(name: str) -> str:
    """A key MLflow accepts: characters it refuses become ``_``."""
    return _KEY_BAD.sub("_", name)[:250] or "_"


def millis(seconds: float | None) -> int | None:
    return None if seconds is None else int(round(seconds * 1000))


def metric_value(value: float | None, is_nan: int) -> float | str:
    """A stored metric value as MLflow's JSON takes it (NaN and infinities by name)."""
    return jsoncodec.protobuf_float(decode_metric(value, is_nan))


def digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str, allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class LocalRun:
    """A run as read for a sync: the row, and a quick state that changes with any write."""

    run_id: str
    experiment: str
    name: str | None
    status: str
    start_time: float
    end_time: float | None
    parent_run_id: str | None
    session_id: str | None
    cell_id: str | None
    execution_count: int | None
    source: str | None
    user: str | None
    notebook: str | None
    error: str | None
    quick: str

    @classmethod
    def from_row(cls, row: tuple) -> LocalRun:
        error = f"{row[14]}: {row[15]}" if row[14] else row[15]
        # Every write to a run moves its heartbeat; datasets and artifacts are counted.
        quick = f"{row[6]!r}|{row[3]}|{row[5]!r}|{row[16]}|{row[17]}"
        return cls(row[0], row[1], row[2], row[3], row[4], row[5], row[7], row[8], row[9],
                   row[10], row[11], row[12], row[13], error, quick)


def local_runs(store: Store, experiments: list[str] | None) -> list[LocalRun]:
    where, params = "", ()
    if experiments:
        where = f"AND e.name IN ({','.join('?' * len(experiments))})"
        params = tuple(experiments)
    return [LocalRun.from_row(r) for r in store.query(RUNS_SQL.format(where=where), params)]


@dataclass
class Payload:
    """What to send for one run, and the state to record once the server has it."""

    run: LocalRun
    remote_id: str
    store: Store
    params: list[dict[str, str]] = field(default_factory=list)
    tags: list[dict[str, str]] = field(default_factory=list)
    metrics: list[dict[str, Any]] = field(default_factory=list)
    artifacts: list[tuple[str, str | None, bytes | None, int]] = field(default_factory=list)
    datasets: list[dict[str, Any]] = field(default_factory=list)
    update: dict[str, Any] | None = None
    state: dict[str, Any] = field(default_factory=dict)


def lineage_tags(run: LocalRun, remote_parent: str | None) -> dict[str, str]:
    tags = {"jupyter_mlops.run_id": run.run_id}
    if run.cell_id:
        tags["jupyter_mlops.cell_id"] = run.cell_id
    if run.execution_count is not None:
        tags["jupyter_mlops.execution_count"] = str(run.execution_count)
    if run.session_id:
        tags["jupyter_mlops.session_id"] = run.session_id
    if run.user:
        tags["mlflow.user"] = run.user
    if run.notebook:
        tags["mlflow.source.name"] = run.notebook
        tags["mlflow.source.type"] = "NOTEBOOK"
    if remote_parent:
        tags["mlflow.parentRunId"] = remote_parent
    if run.error:
        tags["jupyter_mlops.error"] = run.error[:MAX_TAG]
    return tags


def payload(store: Store, run: LocalRun, remote_id: str, sent: dict[str, Any],
            remote_parent: str | None) -> Payload:
    """Everything of ``run`` the server has not had, judged by ``sent`` (the last state)."""
    out = Payload(run, remote_id, store, state=dict(sent))
    out.state["q"] = run.quick
    params = {}
    for name, stored in store.query("SELECT key, value FROM params WHERE run_id = ?",
                                    (run.run_id,)):
        value = decode_param(stored)
        # A text param is sent as the text; any other as its stored (strict) JSON.
        params[key(name)] = (value if isinstance(value, str) else stored)[:MAX_PARAM]
    if digest(params) != sent.get("p"):
        out.params = [{"key": k, "value": v} for k, v in params.items()]
        out.state["p"] = digest(params)
    tags = {key(k): v[:MAX_TAG] for k, v in store.query(
        "SELECT key, value FROM tags WHERE run_id = ?", (run.run_id,))}
    tags.update(lineage_tags(run, remote_parent))
    if digest(tags) != sent.get("t"):
        out.tags = [{"key": k, "value": v} for k, v in tags.items()]
        out.state["t"] = digest(tags)
    last = sent.get("m", 0)
    rows = store.query(
        "SELECT rowid, key, value, is_nan, step, timestamp FROM metrics "
        "WHERE run_id = ? AND rowid > ? ORDER BY rowid", (run.run_id, last))
    out.metrics = [{"key": key(k), "value": metric_value(v, n), "timestamp": millis(ts),
                    "step": step} for _, k, v, n, step, ts in rows]
    if rows:
        out.state["m"] = rows[-1][0]
    uploaded = dict(sent.get("a", {}))
    for name, sha256, size in store.query(
            "SELECT name, sha256, size FROM artifacts WHERE run_id = ? ORDER BY id",
            (run.run_id,)):
        if uploaded.get(name) != sha256:
            out.artifacts.append((name, sha256, None, size))
            uploaded[name] = sha256
    if run.source:
        data = run.source.encode()
        sha256 = hashlib.sha256(data).hexdigest()
        if uploaded.get(CELL_SOURCE) != sha256:
            out.artifacts.append((CELL_SOURCE, None, data, len(data)))
            uploaded[CELL_SOURCE] = sha256
    out.state["a"] = uploaded
    inputs = dataset_inputs(store, run.run_id)
    if inputs and digest(inputs) != sent.get("d"):
        out.datasets = inputs
        out.state["d"] = digest(inputs)
    end = [run.status, millis(run.end_time), run.name]
    if end != sent.get("s"):
        update: dict[str, Any] = {"run_id": remote_id, "status": run.status}
        if run.end_time is not None:
            update["end_time"] = millis(run.end_time)
        if run.name:
            update["run_name"] = run.name
        out.update = update
        out.state["s"] = end
    return out


def dataset_inputs(store: Store, run_id: str) -> list[dict[str, Any]]:
    """The run's data as MLflow dataset inputs; the digest is our full-content fingerprint."""
    inputs = []
    for name, role, fingerprint, kind, shape, columns, dtypes in store.query(
            "SELECT rd.name, rd.role, d.fingerprint, d.kind, d.shape, d.columns, d.dtypes "
            "FROM run_datasets rd JOIN datasets d USING (fingerprint) WHERE rd.run_id = ? "
            "ORDER BY rd.role, rd.name", (run_id,)):
        shape = json.loads(shape)
        columns = json.loads(columns) if columns else None
        dtypes = json.loads(dtypes) if dtypes else None
        schema: dict[str, Any] = {}
        if columns:
            schema = {"mlflow_colspec": [
                {"name": str(c), "type": _column_type(t)}
                for c, t in zip(columns, dtypes or [None] * len(columns))]}
        inputs.append({
            "tags": [{"key": "mlflow.data.context", "value": role}],
            "dataset": {
                "name": key(name), "digest": fingerprint, "source_type": "jupyter_mlops",
                "source": json.dumps({"fingerprint": fingerprint, "kind": kind}, allow_nan=False),
                "schema": json.dumps(schema, allow_nan=False),
                "profile": json.dumps({"num_rows": shape[0] if shape else None,
                                       "shape": shape}, allow_nan=False),
            },
        })
    return inputs


_TYPES = {"float64": "double", "float32": "float", "int64": "long", "int32": "integer",
          "bool": "boolean", "object": "string", "string": "string",
          "datetime64[ns]": "datetime"}


def _column_type(dtype: str | None) -> str:
    return _TYPES.get(dtype or "", "string")
