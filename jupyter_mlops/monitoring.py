"""Monitoring: is a served version still fit for its data, and if not, retrain and promote.

``monitor(uri)`` compares the version's reference sample (kept by the registry) with new
inputs, either the traffic the server logged or a batch file, with a drift report; with
labels it also evaluates the version on them. Dataset drift, or a metric worse than its
threshold, records an alert. With ``retrain=NOTEBOOK`` an alert executes the training
notebook in a fresh kernel (a new tracked run and version), and with ``promote=METRIC``
the alias moves to the new version only when it beats the old one on the labelled data.

Every check is a ``monitors`` row and every step (drift, metrics, alert, retrain,
register, promote) a ``monitor_steps`` row written as it happens, so an interrupted
retrain still leaves its trail. Nothing here renders or prints.
"""

from __future__ import annotations

import json
import math
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import NotFoundError, ValidationError, shorten
from .store import Store

DEFAULT_MAX_ROWS = 100_000
#: Environment of a retraining notebook: the store, the model and the new data.
RETRAIN_ENV = ("JUPYTER_MLOPS_STORE", "JUPYTER_MLOPS_MODEL_URI", "JUPYTER_MLOPS_MONITOR_BATCH",
               "JUPYTER_MLOPS_MONITOR_LABELS")


def _dumps(value: Any) -> str:
    from .serving.formats import _clean

    return json.dumps(_clean(value), allow_nan=False, separators=(",", ":"))


@dataclass(frozen=True)
class Alert:
    """One recorded alert: ``kind`` is ``"drift"`` or ``"metric"``."""

    alert_id: str
    created: float
    model_uri: str
    kind: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class RetrainResult:
    """What one retraining did. ``status``: FINISHED, FAILED or UNCHANGED (same bytes)."""

    retrain_id: str
    notebook: str
    status: str
    old_version: int
    new_version: int | None = None
    run_id: str | None = None
    metric: str | None = None
    old_value: float | None = None
    new_value: float | None = None
    promoted: bool = False
    message: str = ""

    def __repr__(self) -> str:
        return f"<RetrainResult {self.status}: {self.message}>"


@dataclass
class MonitorResult:
    """One check of a version. ``alert`` is True when any alert was recorded."""

    monitor_id: str
    model_uri: str
    requested: str
    source: str
    n_rows: int
    drift: Any = None
    metrics: dict[str, float] | None = None
    alerts: list[Alert] = field(default_factory=list)
    retrain: RetrainResult | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)

    @property
    def alert(self) -> bool:
        return bool(self.alerts)

    def lines(self) -> list[str]:
        out = [f"monitor {self.monitor_id[:8]} {self.model_uri} ({self.requested}) on "
               f"{self.n_rows:,} row(s) of {self.source}"]
        out.extend(f"  {s['step']:<8} {s['status']:<8} {s['message']}" for s in self.steps)
        return out

    def __repr__(self) -> str:
        return "\n".join(self.lines())


class _Trail:
    """Appends the steps of one monitor to the store as they happen."""

    def __init__(self, store: Store, monitor_id: str | None, steps: list[dict[str, Any]]):
        self.store = store
        self.monitor_id = monitor_id
        self.steps = steps

    def __call__(self, step: str, status: str, message: str,
                 details: dict[str, Any] | None = None) -> None:
        entry = {"step": step, "status": status, "message": message, "details": details or {},
                 "created": time.time()}
        self.steps.append(entry)
        if self.monitor_id is None:
            return
        with self.store.write() as conn:
            seq = conn.execute("SELECT coalesce(max(seq), 0) + 1 FROM monitor_steps WHERE "
                               "monitor_id = ?", (self.monitor_id,)).fetchone()[0]
            conn.execute(
                "INSERT INTO monitor_steps (monitor_id, seq, created, step, status, message, "
                "details) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (self.monitor_id, seq, entry["created"], step, status, message,
                 _dumps(details) if details else None))


# -- arguments ---------------------------------------------------------------------------

def _known_metric(metric: str, option: str) -> str:
    from .evaluation.directions import HIGHER_IS_BETTER

    if metric not in HIGHER_IS_BETTER:
        raise ValidationError(
            f"{option} names an unknown metric {shorten(metric)}; choose one of "
            f"{', '.join(HIGHER_IS_BETTER)}."
        )
    return metric


def parse_thresholds(values: list[str] | dict[str, float] | None) -> dict[str, float]:
    """``["accuracy=0.9", "rmse=3"]`` (or a dict) → ``{"accuracy": 0.9, "rmse": 3.0}``."""
    if not values:
        return {}
    pairs = values.items() if isinstance(values, dict) else []
    if not isinstance(values, dict):
        parsed = []
        for text in values:
            metric, sep, number = str(text).partition("=")
            if not sep:
                raise ValidationError(f"A threshold is METRIC=VALUE, such as accuracy=0.9; got "
                                      f"{shorten(text)}.")
            parsed.append((metric.strip(), number.strip()))
        pairs = parsed
    out = {}
    for metric, number in pairs:
        _known_metric(metric, "--threshold")
        try:
            value = float(number)
        except (TypeError, ValueError):
            raise ValidationError(f"The threshold of {metric!r} must be a number; got "
                                  f"{shorten(number)}.") from None
        if not math.isfinite(value):
            raise ValidationError(f"The threshold of {metric!r} must be finite; got {value}.")
        out[metric] = value
    return out


def _worse(metric: str, value: float, threshold: float) -> bool:
    from .evaluation.directions import higher_is_better

    if value is None or (isinstance(value, float) and math.isnan(value)):
        return True
    return value < threshold if higher_is_better(metric) is not False else value > threshold


def read_table(path: str | os.PathLike[str]):
    """A whole CSV or Parquet file as a DataFrame (Parquet needs pyarrow)."""
    import pandas as pd

    from .serving.batch import file_format, require_pyarrow

    source = Path(path)
    kind = file_format(source, "batch file")
    if not source.is_file():
        raise ValidationError(f"No batch file {shorten(str(source))}.")
    if kind == "parquet":
        require_pyarrow()
        return pd.read_parquet(source)
    try:
        return pd.read_csv(source, sep="\t" if source.suffix.lower() == ".tsv" else ",")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise ValidationError(f"Malformed CSV in {source.name}: {first}.") from None


# -- monitor -----------------------------------------------------------------------------

def monitor(
    uri: str,
    *,
    since: str | float | None = None,
    batch: Any = None,
    labels: str | None = None,
    thresholds: list[str] | dict[str, float] | None = None,
    drift_share: float = 0.5,
    stattest: str | dict[str, str] | None = None,
    retrain: str | os.PathLike[str] | None = None,
    promote: str | None = None,
    retrain_timeout: float = 600,
    max_rows: int = DEFAULT_MAX_ROWS,
    store: Store | None = None,
) -> MonitorResult:
    """Check ``uri`` against new data; record the report, the alerts and what was done.

    The new data is the logged traffic of the version (the last ``since``, e.g. ``"1h"``;
    by default its newest ``max_rows`` rows) or ``batch``: a CSV/Parquet path or a
    DataFrame whose ``labels`` column holds the true values. Served traffic takes its
    labels from :func:`~jupyter_mlops.serving.log_labels`. ``thresholds`` such as
    ``{"accuracy": 0.9}`` alert when a metric is worse. On an alert, ``retrain`` executes
    that notebook (environment: ``JUPYTER_MLOPS_STORE``, ``JUPYTER_MLOPS_MODEL_URI``,
    ``JUPYTER_MLOPS_MONITOR_BATCH``, ``JUPYTER_MLOPS_MONITOR_LABELS``) and ``promote``
    moves the URI's alias to the new version when it is better on that metric.

    Examples
    --------
    >>> result = monitor("churn@champion", since="1h")                       # doctest: +SKIP
    >>> result.alert, result.drift.share_drifted                             # doctest: +SKIP
    (True, 0.75)
    >>> monitor("churn@champion", batch="week.csv", labels="churned",
    ...         retrain="train.ipynb", promote="roc_auc")                     # doctest: +SKIP
    """
    import pandas as pd

    from .drift import drift_report
    from .registry import get_model_version, load_model, parse_model_uri, reference_sample
    from .serving.formats import BadRequest, InputSpec
    from .serving.predictions import load_traffic, parse_since
    from .tracking import get_store

    store = store or get_store()
    limits = parse_thresholds(thresholds)
    seconds = parse_since(since)
    if batch is not None and since is not None:
        raise ValidationError("Monitor either logged traffic (--since) or a batch (--batch), "
                              "not both.")
    if labels is not None and batch is None:
        raise ValidationError(
            "--labels names the label column of --batch FILE; served traffic takes its labels "
            "from POST /labels or log_labels().")
    if promote is not None:
        _known_metric(promote, "--promote")
        if retrain is None:
            raise ValidationError("--promote compares a retrained version; give --retrain "
                                  "NOTEBOOK too.")
        if parse_model_uri(uri)[2] is None:
            raise ValidationError(f"--promote moves an alias; monitor the model by its alias "
                                  f"(name@champion), not {shorten(uri)}.")
    if retrain is not None:
        notebook = Path(retrain)
        if notebook.suffix != ".ipynb" or not notebook.is_file():
            raise ValidationError(f"--retrain takes a notebook file (.ipynb); "
                                  f"{shorten(str(retrain))} is not one.")

    version = get_model_version(uri, store=store)
    label = f"{version.name}/{version.version}"
    spec = InputSpec.from_signature(version.signature)
    reference = reference_sample(version.uri, store=store)
    if reference is None:
        raise ValidationError(
            f"{label} has no reference sample to compare with; register it with "
            "reference=its training inputs (register_model(model, name, reference=X_train)).")

    y = None
    labelled_inputs = None
    batch_path = None
    if batch is not None:
        if isinstance(batch, pd.DataFrame):
            frame, source = batch, "a DataFrame"
        else:
            batch_path = str(Path(batch).resolve())
            frame, source = read_table(batch), f"batch {Path(batch).name}"
        if labels is not None:
            if labels not in frame.columns:
                raise ValidationError(f"The batch has no label column {labels!r}; its columns: "
                                      f"{shorten([str(c) for c in frame.columns], 120)}.")
            y = frame[labels].reset_index(drop=True)
            frame = frame.drop(columns=[labels])
        try:
            current = spec.conform(frame.reset_index(drop=True), extra="drop") \
                if spec.kind == "dataframe" else spec.conform(frame.to_numpy())
        except BadRequest as exc:
            raise ValidationError(f"The batch does not fit {label}: {exc}") from None
    else:
        traffic = load_traffic(version.name, version.version, since=seconds, store=store,
                               spec=spec, max_rows=max_rows)
        window = f"the last {since}" if since is not None else "all time"
        source = f"traffic ({window})"
        if not len(traffic):
            raise NotFoundError(
                f"No predictions of {label} were logged in {window}; there is nothing to "
                "monitor. Serve it (jupyter-mlops serve) or give --batch FILE.")
        current = traffic.inputs
        picks = traffic.labelled()
        if picks:
            y = pd.Series([traffic.labels[i] for i in picks])
            labelled_inputs = (current.iloc[picks].reset_index(drop=True)
                               if isinstance(current, pd.DataFrame) else current[picks])
    n_rows = len(current)
    if n_rows == 0:
        raise ValidationError(f"The {source} has no rows; there is nothing to monitor.")
    if y is not None and batch is not None:
        labelled_inputs = current

    monitor_id = uuid.uuid4().hex
    with store.write() as conn:
        conn.execute(
            "INSERT INTO monitors (monitor_id, created, name, version, model_uri, source, "
            "n_rows, thresholds) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (monitor_id, time.time(), version.name, version.version, version.uri, source,
             n_rows, _dumps(limits) if limits else None))
    result = MonitorResult(monitor_id, version.uri, uri, source, n_rows)
    trail = _Trail(store, monitor_id, result.steps)

    report = drift_report(reference, current, stattest=stattest, drift_share=drift_share,
                          model=version.uri, store=store)
    result.drift = report
    trail("drift", "drift" if report.drifted else "ok", report.summary,
          {"report_id": report.report_id, "drifted_columns": report.drifted_columns,
           "share_drifted": report.share_drifted})
    alerts: list[tuple[str, str, dict[str, Any]]] = []
    if report.drifted:
        columns = ", ".join(report.drifted_columns)
        columns = columns if len(columns) <= 200 else columns[:197] + "..."
        alerts.append(("drift", f"Dataset drift on {label}: {report.n_drifted} of "
                                f"{report.n_columns} columns drifted ({columns}).",
                       {"report_id": report.report_id, "share_drifted": report.share_drifted}))

    evaluation_id = None
    if y is not None and len(y):
        from .evaluation import evaluate

        model = load_model(version.uri, store=store)
        evaluation = evaluate(model, labelled_inputs, y, name="monitor", model_uri=version.uri,
                              importance=False)
        evaluation_id = evaluation.evaluation_id
        result.metrics = dict(evaluation.metrics)
        shown = ", ".join(f"{k}={v:.4g}" for k, v in list(result.metrics.items())[:4])
        trail("metrics", "ok", f"{len(y):,} labelled row(s): {shown}",
              {"evaluation_id": evaluation_id})
        for metric, threshold in limits.items():
            value = result.metrics.get(metric)
            if value is None:
                trail("metrics", "skipped", f"{metric} was not computed for this model "
                                            f"({evaluation.task}); its threshold is not checked.")
            elif _worse(metric, value, threshold):
                alerts.append(("metric", f"{metric} of {label} is {value:.4g}, worse than the "
                                         f"threshold {threshold:g}.",
                               {"metric": metric, "value": value, "threshold": threshold}))
    elif limits:
        trail("metrics", "skipped", "No labels: the metric thresholds were not checked.")

    now = time.time()
    for kind, message, details in alerts:
        alert = Alert(uuid.uuid4().hex, now, version.uri, kind, message, details)
        result.alerts.append(alert)
    with store.write() as conn:
        conn.executemany(
            "INSERT INTO alerts (alert_id, created, monitor_id, name, version, model_uri, kind, "
            "message, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(a.alert_id, a.created, monitor_id, version.name, version.version, a.model_uri,
              a.kind, a.message, _dumps(a.details)) for a in result.alerts])
        conn.execute(
            "UPDATE monitors SET drift_report_id = ?, dataset_drift = ?, evaluation_id = ?, "
            "metrics = ?, alert = ? WHERE monitor_id = ?",
            (report.report_id, int(report.drifted), evaluation_id,
             _dumps(result.metrics) if result.metrics is not None else None,
             int(result.alert), monitor_id))
    for alert in result.alerts:
        trail("alert", "alert", alert.message, {"alert_id": alert.alert_id, "kind": alert.kind})
    if not result.alerts:
        trail("alert", "ok", "No alert.")

    if retrain is not None:
        if result.alert:
            result.retrain = retrain_model(
                uri, retrain, promote=promote,
                X=labelled_inputs, y=y, batch_path=batch_path,
                labels=labels, timeout=retrain_timeout, store=store, _trail=trail)
        else:
            trail("retrain", "skipped", "No alert: the model was not retrained.")
    return result


# -- retrain and promote -----------------------------------------------------------------

def _new_version(store: Store, name: str, before: int, started: float) -> tuple[int | None, str]:
    """The version the notebook registered, else one registered from its tracked run."""
    from .registry import register_model

    latest = store.query("SELECT max(version) FROM model_versions WHERE name = ?", (name,))[0][0]
    if latest is not None and latest > before:
        return latest, f"the notebook registered {name}/{latest}"
    runs = store.query(
        "SELECT r.run_id FROM runs r WHERE r.status = 'FINISHED' AND r.start_time >= ? AND "
        "EXISTS (SELECT 1 FROM artifacts a WHERE a.run_id = r.run_id AND a.kind = 'model') "
        "ORDER BY r.start_time DESC LIMIT 1", (started,))
    if not runs:
        return None, ("the notebook registered no new version of "
                      f"{name!r} and no tracked run of it saved a model")
    version = register_model(None, name, run_id=runs[0][0], store=store)
    if version.version <= before:
        return version.version, (f"the retrained model has the same bytes as {name}/"
                                 f"{version.version}")
    return version.version, f"registered {name}/{version.version} from run {runs[0][0][:8]}"


def retrain_model(
    uri: str,
    notebook: str | os.PathLike[str],
    *,
    promote: str | None = None,
    X: Any = None,
    y: Any = None,
    batch_path: str | None = None,
    labels: str | None = None,
    timeout: float = 600,
    store: Store | None = None,
    _trail: _Trail | None = None,
) -> RetrainResult:
    """Execute the training ``notebook`` in a fresh kernel; with ``promote`` and labelled
    data (``X``, ``y``), move the URI's alias to the new version only if it is better.

    The notebook finds the store, the model and the new data in its environment (see
    :data:`RETRAIN_ENV`) and registers a new version of the model (or fits it in a
    ``%%track`` cell, which is then registered from that run). Both versions are compared on
    ``X``, ``y``: a notebook that trains on that same batch should hold part of it out.

    Examples
    --------
    >>> retrain_model("churn@champion", "train.ipynb", promote="roc_auc",
    ...               X=X_new, y=y_new)                                     # doctest: +SKIP
    <RetrainResult FINISHED: moved @champion from 3 to 4 (roc_auc 0.91 > 0.87)>
    """
    from .registry import get_model_version, load_model, parse_model_uri, set_alias
    from .runner import run_notebook
    from .tracking import get_store

    store = store or get_store()
    name, _number, alias = parse_model_uri(uri)
    if promote is not None:
        _known_metric(promote, "--promote")
        if alias is None:
            raise ValidationError(f"--promote moves an alias; name the model by its alias "
                                  f"(name@champion), not {shorten(uri)}.")
    old = get_model_version(uri, store=store)
    trail = _trail or _Trail(store, None, [])
    path = Path(notebook).resolve()
    result = RetrainResult(uuid.uuid4().hex, path.name, "RUNNING", old.version, metric=promote)
    before = store.query("SELECT max(version) FROM model_versions WHERE name = ?", (name,))[0][0]
    started = time.time()
    with store.write() as conn:
        conn.execute(
            "INSERT INTO retrains (retrain_id, monitor_id, started, name, notebook, status, "
            "old_version, metric) VALUES (?, ?, ?, ?, ?, 'RUNNING', ?, ?)",
            (result.retrain_id, trail.monitor_id, started, name, path.name, old.version,
             promote))
    try:
        env = {"JUPYTER_MLOPS_STORE": str(store.path), "JUPYTER_MLOPS_MODEL_URI": uri,
               "JUPYTER_MLOPS_MONITOR_BATCH": batch_path or "",
               "JUPYTER_MLOPS_MONITOR_LABELS": labels or ""}
        outcomes = run_notebook(path, env=env, timeout=timeout)
        failed = [o for o in outcomes if o.status != "ok" and not o.expected_error]
        if failed:
            result.status = "FAILED"
            result.message = f"cell {failed[0].index} of {path.name} failed: {failed[0].error}"
            trail("retrain", "failed", f"Retraining failed: {result.message}")
            return result
        trail("retrain", "ok", f"Executed {path.name} ({len(outcomes)} code cell(s)).")
        new_version, how = _new_version(store, name, before, started)
        if new_version is None or new_version <= before:
            result.status = "UNCHANGED" if new_version is not None else "FAILED"
            result.new_version = new_version
            result.message = how
            trail("register", "failed" if new_version is None else "skipped", f"{how}; nothing "
                  "to promote.")
            return result
        new = get_model_version(f"{name}/{new_version}", store=store)
        result.new_version, result.run_id = new.version, new.run_id
        trail("register", "ok", f"Retraining produced {name}/{new.version}: {how}.",
              {"version": new.version, "run_id": new.run_id})
        result.status = "FINISHED"
        result.message = f"retrained as {name}/{new.version}"
        if promote is None:
            return result
        if X is None or y is None or not len(y):
            trail("promote", "skipped", "No labelled data to compare the versions on; the "
                                        "alias did not move.")
            result.message += "; not promoted (no labelled data)"
            return result
        from .evaluation import evaluate
        from .evaluation.directions import higher_is_better

        scores = []
        for version in (old, new):
            evaluation = evaluate(load_model(version.uri, store=store), X, y, name="promote",
                                  model_uri=version.uri, importance=False)
            value = evaluation.metrics.get(promote)
            if value is None:
                raise ValidationError(f"{promote} was not computed for {version.uri} "
                                      f"({evaluation.task}); choose another --promote metric.")
            scores.append(value)
        result.old_value, result.new_value = scores
        higher = higher_is_better(promote) is not False
        better = (scores[1] > scores[0]) if higher else (scores[1] < scores[0])
        comparison = f"{promote} {scores[1]:.4g} vs {scores[0]:.4g} on {len(y):,} labelled rows"
        if better:
            set_alias(name, new.version, alias, store=store)
            result.promoted = True
            result.message = f"moved @{alias} from {old.version} to {new.version} ({comparison})"
            trail("promote", "ok", f"Moved {name}@{alias} from {old.version} to "
                                   f"{new.version}: {comparison}.",
                  {"metric": promote, "old": scores[0], "new": scores[1]})
        else:
            result.message = (f"kept @{alias} on {old.version}: {name}/{new.version} is not "
                              f"better ({comparison})")
            trail("promote", "kept", f"Kept {name}@{alias} on {old.version}: {name}/"
                                     f"{new.version} is not better ({comparison}).",
                  {"metric": promote, "old": scores[0], "new": scores[1]})
        return result
    except BaseException as exc:
        if result.status == "RUNNING":
            result.status = "FAILED"
            result.message = f"{type(exc).__name__}: {exc}"
            trail("retrain", "failed", f"Retraining stopped: {result.message}"[:500])
        raise
    finally:
        with store.write() as conn:
            conn.execute(
                "UPDATE retrains SET finished = ?, status = ?, new_version = ?, run_id = ?, "
                "old_value = ?, new_value = ?, promoted = ?, message = ? WHERE retrain_id = ?",
                (time.time(), result.status, result.new_version, result.run_id,
                 result.old_value, result.new_value, int(result.promoted), result.message,
                 result.retrain_id))


# -- listings ----------------------------------------------------------------------------

def list_alerts(uri: str | None = None, *, since: str | float | None = None,
                store: Store | None = None):
    """Recorded alerts, newest first, as a DataFrame (one model, or every model).

    A bare model name lists all its versions' alerts; ``name@alias`` or ``name/3`` one
    version's.

    Examples
    --------
    >>> list_alerts("churn", since="7d")[["version", "kind", "message"]]  # doctest: +SKIP
    """
    import pandas as pd

    from .registry import get_model_version, parse_model_uri
    from .serving.predictions import parse_since
    from .tracking import get_store

    store = store or get_store()
    where, params = ["1"], []
    if uri is not None:
        name, number, alias = parse_model_uri(uri)
        where.append("name = ?")
        params.append(name)
        if number is not None or alias is not None:
            where.append("version = ?")
            params.append(get_model_version(uri, store=store).version)
    seconds = parse_since(since)
    if seconds is not None:
        where.append("created >= ?")
        params.append(time.time() - seconds)
    rows = store.query(
        "SELECT created, name, version, kind, message, alert_id, monitor_id FROM alerts "
        f"WHERE {' AND '.join(where)} ORDER BY created DESC", params)
    frame = pd.DataFrame(rows, columns=["created", "name", "version", "kind", "message",
                                        "alert_id", "monitor_id"])
    frame["created"] = pd.to_datetime(frame["created"], unit="s", utc=True)
    return frame


def monitor_steps(monitor_id: str, *, store: Store | None = None):
    """The recorded steps of one monitor (a unique id prefix works), in order.

    Examples
    --------
    >>> monitor_steps(result.monitor_id)[["step", "status", "message"]]   # doctest: +SKIP
    """
    import pandas as pd

    from .tracking import get_store

    store = store or get_store()
    if not isinstance(monitor_id, str) or not monitor_id or \
            any(c not in "0123456789abcdef" for c in monitor_id):
        raise ValidationError(f"A monitor id is lowercase hex; got {shorten(monitor_id)}.")
    ids = store.query("SELECT monitor_id FROM monitors WHERE monitor_id LIKE ? LIMIT 2",
                      (monitor_id + "%",))
    if len(ids) != 1:
        raise (NotFoundError(f"No monitor {monitor_id!r}.") if not ids else
               ValidationError(f"Monitor prefix {monitor_id!r} matches several; give more."))
    rows = store.query("SELECT seq, created, step, status, message, details FROM monitor_steps "
                       "WHERE monitor_id = ? ORDER BY seq", (ids[0][0],))
    frame = pd.DataFrame([(*row[:5], json.loads(row[5]) if row[5] else {}) for row in rows],
                         columns=["seq", "created", "step", "status", "message", "details"])
    frame["created"] = pd.to_datetime(frame["created"], unit="s", utc=True)
    return frame
