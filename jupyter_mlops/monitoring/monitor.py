"""Monitoring: is a served version still fit for its data, and if not, retrain and promote.

``monitor(uri)`` compares the version's reference sample (kept by the registry) with new
inputs, either the traffic the server logged or a batch file, with a drift report; with
labels it also evaluates the version on them. Dataset drift, or a metric worse than its
threshold, records an alert. With ``retrain=NOTEBOOK`` an alert executes the training
notebook in a fresh kernel (a new tracked run and version), and with ``promote=METRIC``
the alias moves to the new version only when it beats the old one on the labelled data
(``retraining.py``).

Every check is a ``monitors`` row and every step (drift, metrics, alert, retrain,
register, promote) a ``monitor_steps`` row written as it happens, so an interrupted
retrain still leaves its trail. Nothing here renders or prints.
"""

from __future__ import annotations

import math
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import NotFoundError, ValidationError, shorten
from ..store import Store
from ..store.jsoncodec import dumps, loads
from .trail import Trail, known_metric

if TYPE_CHECKING:
    from .retrain import RetrainResult

DEFAULT_MAX_ROWS = 100_000


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
class MonitorResult:
    """One check of a version. ``alert`` is True when any alert was recorded; ``skipped``
    counts the logged requests that could not be read back and were left out."""

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
    skipped: int = 0  # logged requests that could not be read back, left out

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


# -- arguments ---------------------------------------------------------------------------

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
        known_metric(metric, "--threshold")
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
    from ..evaluation.directions import higher_is_better

    if value is None or (isinstance(value, float) and math.isnan(value)):
        return True
    return value < threshold if higher_is_better(metric) is not False else value > threshold


def read_table(path: str | os.PathLike[str]):
    """A whole CSV or Parquet file as a DataFrame (Parquet needs pyarrow)."""
    import pandas as pd

    from ..serving.batch import file_format, read_csv_chunks, require_pyarrow

    source = Path(path)
    kind = file_format(source, "batch file")
    if not source.is_file():
        raise ValidationError(f"No batch file {shorten(str(source))}.")
    if kind == "parquet":
        require_pyarrow()
        return pd.read_parquet(source)
    with open(source, "rb") as handle:
        return next(read_csv_chunks(source, handle, chunk_size=None))


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

    from ..drift import drift_report
    from ..registry.versions import (
        get_model_version,
        load_model,
        parse_model_uri,
        reference_sample,
    )
    from ..serving.formats import BadRequest, InputSpec
    from ..serving.predictions import load_traffic, parse_since
    from ..store.current import get_store

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
        known_metric(promote, "--promote")
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
    skipped = 0
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
            unread = (f" ({traffic.skipped:,} logged request(s) could not be read back)"
                      if traffic.skipped else "")
            raise NotFoundError(
                f"No predictions of {label} were logged in {window}{unread}; there is nothing "
                "to monitor. Serve it (jupyter-mlops serve) or give --batch FILE.")
        current = traffic.inputs
        skipped = traffic.skipped
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
             n_rows, dumps(limits) if limits else None))
    result = MonitorResult(monitor_id, version.uri, uri, source, n_rows, skipped=skipped)
    trail = Trail(store, monitor_id, result.steps)
    if skipped:
        trail("traffic", "skipped", f"{skipped:,} logged request(s) could not be read back "
                                    "and were left out.", {"skipped": skipped})

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
        from ..evaluation import evaluate

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
              a.kind, a.message, dumps(a.details)) for a in result.alerts])
        conn.execute(
            "UPDATE monitors SET drift_report_id = ?, dataset_drift = ?, evaluation_id = ?, "
            "metrics = ?, alert = ? WHERE monitor_id = ?",
            (report.report_id, int(report.drifted), evaluation_id,
             dumps(result.metrics) if result.metrics is not None else None,
             int(result.alert), monitor_id))
    for alert in result.alerts:
        trail("alert", "alert", alert.message, {"alert_id": alert.alert_id, "kind": alert.kind})
    if not result.alerts:
        trail("alert", "ok", "No alert.")

    if retrain is not None:
        if result.alert:
            from .retrain import retrain_model

            result.retrain = retrain_model(
                uri, retrain, promote=promote,
                X=labelled_inputs, y=y, batch_path=batch_path,
                labels=labels, timeout=retrain_timeout, store=store, _trail=trail)
        else:
            trail("retrain", "skipped", "No alert: the model was not retrained.")
    return result

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

    from ..registry.versions import get_model_version, parse_model_uri
    from ..serving.predictions import parse_since
    from ..store.current import get_store

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
    from ..dashboards.frames import TextFrame
    return TextFrame(frame)


def monitor_steps(monitor_id: str, *, store: Store | None = None):
    """The recorded steps of one monitor (a unique id prefix works), in order.

    Examples
    --------
    >>> monitor_steps(result.monitor_id)[["step", "status", "message"]]   # doctest: +SKIP
    """
    import pandas as pd

    from ..store.current import get_store

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
    frame = pd.DataFrame([(*row[:5], loads(row[5]) if row[5] else {}) for row in rows],
                         columns=["seq", "created", "step", "status", "message", "details"])
    frame["created"] = pd.to_datetime(frame["created"], unit="s", utc=True)
    return frame
