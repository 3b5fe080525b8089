"""Gates a candidate version must pass before it replaces another: the CI step for models.

Both versions are evaluated on the same fingerprinted holdout; metric gates follow
MLflow's ``MetricThreshold`` (an absolute threshold, a minimum absolute change and a minimum
relative change against the baseline, each in the metric's own direction); the holdout must
fit the candidate's signature, hold labels and not drift too far from the candidate's
training sample; the run that produced the candidate must not be stale or out of order, and
its replay must verify. The check is itself a run (experiment ``checks``) holding both
evaluations, the verdict and the Markdown and JSON reports.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ..errors import ValidationError, shorten

PASS, FAIL, SKIP = "pass", "fail", "skipped"
DEFAULT_METRIC = {"classification": "f1_macro", "regression": "rmse"}


@dataclass(frozen=True)
class MetricThreshold:
    """MLflow's ``MetricThreshold``: ``threshold`` on the candidate's value; the candidate
    must beat the baseline by ``min_absolute_change`` and by ``min_relative_change`` (a
    share of the baseline's value), in the metric's direction (``greater_is_better``, by
    default the metric's known direction)."""

    threshold: float | None = None
    min_absolute_change: float | None = None
    min_relative_change: float | None = None
    greater_is_better: bool | None = None


@dataclass
class Gate:
    name: str
    verdict: str  # pass, fail or skipped
    detail: str


@dataclass
class CheckResult:
    """The outcome of :func:`check`. ``passed`` is False when any gate failed."""

    candidate: str
    against: str | None
    data: dict[str, Any]
    gates: list[Gate]
    metrics: dict[str, dict[str, float | None]]
    run_id: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(g.verdict != FAIL for g in self.gates)

    def to_dict(self) -> dict[str, Any]:
        return {"candidate": self.candidate, "against": self.against, "passed": self.passed,
                "data": self.data, "gates": [vars(g) for g in self.gates],
                "metrics": self.metrics, "notes": self.notes, "check_run_id": self.run_id}

    def to_json(self) -> str:
        import json

        def finite(value):
            return None if isinstance(value, float) and not math.isfinite(value) else value

        plain = self.to_dict()
        plain["metrics"] = {m: {k: finite(v) for k, v in row.items()}
                            for m, row in self.metrics.items()}
        return json.dumps(plain, indent=2, allow_nan=False)

    def markdown(self) -> str:
        """A report fit for a pull-request comment."""
        verdict = "PASSED" if self.passed else "FAILED"
        against = f" against `{self.against}`" if self.against else ""
        lines = [f"### Model check: `{self.candidate}`{against}: {verdict}", "",
                 f"Holdout: {_cell(self.data.get('source', 'a DataFrame'))}, "
                 f"{self.data['rows']:,} rows, sha256 `{self.data['sha256'][:12]}`, "
                 f"target `{_cell(self.data['target'])}`", "",
                 "| gate | verdict | detail |", "|---|---|---|"]
        lines += [f"| {_cell(g.name)} | {'**FAIL**' if g.verdict == FAIL else g.verdict} | "
                  f"{_cell(g.detail)} |" for g in self.gates]
        if self.metrics:
            lines += ["", "| metric | candidate | baseline | change |", "|---|---|---|---|"]
            for metric, row in self.metrics.items():
                new, old = row.get("candidate"), row.get("baseline")
                change = "" if new is None or old is None else f"{new - old:+.4g}"
                lines.append(f"| {metric} | {_number(new)} | {_number(old)} | {change} |")
        lines += [""] + [f"- {_cell(note)}" for note in self.notes]
        return "\n".join(lines).rstrip() + "\n"

    def __repr__(self) -> str:
        failed = [g.name for g in self.gates if g.verdict == FAIL]
        return (f"<CheckResult {self.candidate}: "
                + ("passed" if self.passed else f"failed {', '.join(failed)}") + ">")

    def _repr_markdown_(self) -> str:
        return self.markdown()


def _cell(text: Any) -> str:
    """Text that cannot break out of a Markdown table cell or start markup."""
    import html

    return html.escape(str(text)).replace("|", "\\|").replace("\n", " ").replace("`", "'")


def _number(value: float | None) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else f"{value:.4g}"


def metric_gate(metric: str, limit: MetricThreshold, candidate: float | None,
                baseline: float | None) -> Gate:
    """One metric against its ``MetricThreshold``, with MLflow's arithmetic (the same
    verdict as ``mlflow.validate_evaluation_results`` to the last bit): the relative change
    is measured against the baseline's magnitude, so a negative baseline (an r2 below 0)
    keeps its meaning, and a zero baseline asks for any improvement at all."""
    from ..evaluation.directions import higher_is_better

    name = f"metric {metric}"
    if candidate is None or math.isnan(candidate):
        return Gate(name, FAIL, f"{metric} was not computed for the candidate")
    higher = limit.greater_is_better
    if higher is None:
        higher = higher_is_better(metric) is not False
    better = ">=" if higher else "<="

    def reaches(value: float, bound: float) -> bool:
        return Decimal(value) >= Decimal(bound) if higher else Decimal(value) <= Decimal(bound)

    failures, passes = [], []
    if limit.threshold is not None:
        (passes if reaches(candidate, limit.threshold) else failures).append(
            f"{candidate:.4g} {better} {limit.threshold:g}")
    changes = [c for c in (limit.min_absolute_change, limit.min_relative_change) if c is not None]
    if changes and (baseline is None or math.isnan(baseline)):
        failures.append("no baseline value to compare a change with")
    elif changes:
        step = (lambda a, b: a + b) if higher else (lambda a, b: a - b)
        if limit.min_absolute_change is not None:
            bound = step(baseline, limit.min_absolute_change)
            (passes if reaches(candidate, bound) else failures).append(
                f"{candidate:.4g} {better} baseline {baseline:.4g} "
                f"{'+' if higher else '-'} {limit.min_absolute_change:g}")
        if limit.min_relative_change is not None:
            if baseline == 0:
                ok = reaches(candidate, step(baseline, 1e-10))
            else:
                gain = (candidate - baseline) if higher else (baseline - candidate)
                ok = gain / abs(baseline) >= limit.min_relative_change
            (passes if ok else failures).append(
                f"{candidate:.4g} {'improves' if ok else 'does not improve'} on baseline "
                f"{baseline:.4g} by {limit.min_relative_change:.4g} of its value")
    if failures:
        return Gate(name, FAIL, "; ".join(failures))
    return Gate(name, PASS, "; ".join(passes) or f"{candidate:.4g}")


def check(
    candidate: str,
    against: str | None = None,
    *,
    data: Any,
    target: str | None = None,
    y: Any = None,
    thresholds: dict[str, float | MetricThreshold] | list[str] | None = None,
    min_delta: dict[str, float] | list[str] | None = None,
    min_relative: dict[str, float] | list[str] | None = None,
    max_drift: float | None = None,
    verify_replay: bool = True,
    store: Any = None,
) -> CheckResult:
    """Gate ``candidate`` (a model URI) on holdout ``data``, against the version ``against``.

    ``data`` is a DataFrame, or a CSV or Parquet file, whose ``target`` column holds the
    labels (or give the labels as ``y``). ``thresholds`` (``{"accuracy": 0.9}``, or
    ``MetricThreshold`` objects), ``min_delta`` (absolute change over ``against``) and
    ``min_relative`` (relative change) are MLflow's three metric gates; with none of them
    and a baseline, the task's headline metric (f1_macro, or rmse) must not get worse.
    ``max_drift`` is the share of columns allowed to drift between the candidate's training
    sample and the holdout.

    Examples
    --------
    >>> result = check("churn/4", "churn@champion", data="holdout.parquet",
    ...                target="churned", min_delta={"f1_macro": 0.01})   # doctest: +SKIP
    >>> result.passed, print(result.markdown())                          # doctest: +SKIP
    """
    from ..evaluation import evaluate
    from ..registry.versions import get_model_version, load_model
    from ..store.current import get_store
    from ..tracking.datasets import fingerprint
    from ..tracking.runs import log_bytes, log_params, set_tags, start_run
    from .monitor import read_table

    store = store or get_store()
    limits = _limits(thresholds, min_delta, min_relative)
    if max_drift is not None and not 0 <= max_drift <= 1:
        raise ValidationError(f"--max-drift is a share of columns between 0 and 1; got "
                              f"{max_drift}.")
    version = get_model_version(candidate, store=store)
    baseline = get_model_version(against, store=store) if against else None
    frame, source = (data, "a DataFrame") if not isinstance(data, (str, os.PathLike)) else (
        read_table(data), os.path.basename(os.fspath(data)))
    X, labels = _split(frame, target, y)
    seen = fingerprint(frame) or {}
    facts = {"source": source, "rows": len(X), "sha256": seen.get("fingerprint", ""),
             "target": target or "y"}
    signature, X = _signature_gate(version, X)
    gates = [_data_gate(X, labels), signature]
    result = CheckResult(version.uri, baseline.uri if baseline else None, facts, gates, {})
    with start_run(f"check {version.name}/{version.version}", "checks",
                   {"jupyter_mlops.check": "candidate"}, nested=True, store=store) as run:
        result.run_id = run.run_id
        log_params({"candidate": version.uri, "against": result.against or "",
                    "data": source, "data.sha256": facts["sha256"]})
        scores = {}
        if signature.verdict == FAIL:
            gates.append(Gate("metrics", FAIL, "not evaluated: the holdout does not fit the "
                                               "candidate's signature"))
            set_tags({"jupyter_mlops.check.passed": "false"})
            log_bytes(result.markdown().encode(), "check.md", media_type="text/markdown")
            return result
        for role, v in (("candidate", version), ("baseline", baseline)):
            if v is None:
                continue
            evaluated = evaluate(load_model(v.uri, store=store), X, labels, name=role,
                                 model_uri=v.uri, importance=False)
            scores[role] = evaluated
        task = scores["candidate"].task
        if not limits and baseline is not None:
            headline = DEFAULT_METRIC["regression" if task == "regression" else
                                      "classification"]
            limits = {headline: MetricThreshold(min_absolute_change=0.0)}
            result.notes.append(f"No metric gate given: {headline} must not get worse.")
        elif not limits:
            result.notes.append("No metric gate given and no baseline: metrics are reported, "
                                "not gated.")
        for metric, limit in limits.items():
            values = {role: scores[role].metrics.get(metric) for role in scores}
            if metric not in scores["candidate"].metrics:
                raise ValidationError(f"{metric} is not computed for a {task} model; choose "
                                      f"one of {', '.join(scores['candidate'].metrics)}.")
            result.metrics[metric] = {"candidate": values.get("candidate"),
                                      "baseline": values.get("baseline")}
            gates.append(metric_gate(metric, limit, values.get("candidate"),
                                     values.get("baseline")))
        gates.append(_drift_gate(version, X, max_drift, store))
        gates += _lineage_gates(version, verify_replay, store, result.notes)
        set_tags({"jupyter_mlops.check.passed": str(result.passed).lower()})
        log_bytes(result.markdown().encode(), "check.md", media_type="text/markdown")
        log_bytes(result.to_json().encode(), "check.json", media_type="application/json")
    return result


def _limits(thresholds, min_delta, min_relative) -> dict[str, MetricThreshold]:
    from .monitor import parse_thresholds

    limits: dict[str, dict[str, Any]] = {}
    if isinstance(thresholds, dict):
        for metric, value in thresholds.items():
            if isinstance(value, MetricThreshold):
                parse_thresholds({metric: 0.0})  # the metric's name is checked
                limits[metric] = dict(vars(value))
    plain = {k: v for k, v in thresholds.items() if not isinstance(v, MetricThreshold)} \
        if isinstance(thresholds, dict) else thresholds
    for values, key in ((plain, "threshold"), (min_delta, "min_absolute_change"),
                        (min_relative, "min_relative_change")):
        for metric, number in parse_thresholds(values).items():
            if key != "threshold" and number < 0:
                raise ValidationError(f"A minimum change is not negative; got {metric}={number}.")
            limits.setdefault(metric, {})[key] = number
    return {metric: MetricThreshold(**spec) for metric, spec in limits.items()}


def _split(frame: Any, target: str | None, y: Any) -> tuple[Any, Any]:
    if y is not None:
        return frame, y
    if target is None:
        raise ValidationError("Name the label column of the holdout (target=, --target "
                              "COLUMN) or pass the labels as y=.")
    if target not in getattr(frame, "columns", ()):
        raise ValidationError(f"The holdout has no column {target!r}; its columns: "
                              f"{shorten([str(c) for c in frame.columns], 120)}.")
    return frame.drop(columns=[target]), frame[target]


def _data_gate(X: Any, labels: Any) -> Gate:
    import pandas as pd

    rows = len(X)
    if rows == 0:
        return Gate("holdout data", FAIL, "the holdout has no rows")
    missing = int(pd.Series(labels).isna().sum())
    if missing:
        return Gate("holdout data", FAIL, f"{missing:,} of {rows:,} labels are missing")
    empty = [str(c) for c in getattr(X, "columns", []) if X[c].isna().all()]
    if empty:
        return Gate("holdout data", FAIL, f"column(s) {shorten(empty, 80)} hold no values")
    return Gate("holdout data", PASS, f"{rows:,} labelled rows")


def _signature_gate(version, X: Any) -> tuple[Gate, Any]:
    """The gate, and the holdout as the model takes it (columns in the signature's order,
    extra ones such as ids left out) when it fits."""
    from ..serving.formats import BadRequest, InputSpec

    spec = InputSpec.from_signature(version.signature)
    if spec.kind is None:
        return Gate("signature", SKIP, "the version has no registered signature"), X
    try:
        conformed = spec.conform(X if spec.kind == "dataframe" else
                                 getattr(X, "to_numpy", lambda: X)(), extra="drop")
    except BadRequest as exc:
        return Gate("signature", FAIL, str(exc)), X
    return Gate("signature", PASS, "the holdout fits the registered signature"), conformed


def _drift_gate(version, X: Any, max_drift: float | None, store) -> Gate:
    from ..drift import drift_report
    from ..registry.versions import reference_sample

    if max_drift is None:
        return Gate("drift", SKIP, "no --max-drift given")
    reference = reference_sample(version.uri, store=store)
    if reference is None:
        return Gate("drift", FAIL, f"{version.uri} has no training sample to compare with")
    report = drift_report(reference, X, store=store)
    share = report.share_drifted
    verdict = PASS if share <= max_drift else FAIL
    return Gate("drift", verdict, f"{share:.0%} of columns drifted (at most {max_drift:.0%})")


def _lineage_gates(version, verify_replay: bool, store, notes: list[str]) -> list[Gate]:
    from ..pipelines.pipeline import TAG as PIPELINE_TAG
    from ..registry.replay import replay
    from ..tracking import storage
    from ..tracking.history import history_rows

    if version.run_id is None:
        notes.append(f"{version.uri} was registered without a producing run (from a script): "
                     "it is gated on metrics and data only.")
        return [Gate("lineage", SKIP, "no producing run")]
    run = storage.get_run(store, version.run_id)
    if run.tags.get(PIPELINE_TAG):
        notes.append(f"{version.uri} was made by pipeline {run.tags[PIPELINE_TAG]}, cut from "
                     f"{run.tags.get('jupyter_mlops.pipeline_of', 'a registered model')}: its "
                     "steps are that model's replay slice, so it has no replay of its own.")
        return [Gate("lineage", PASS if run.status == "FINISHED" else FAIL,
                     f"pipeline run {run.run_id[:8]} of {run.tags[PIPELINE_TAG]}, {run.status}"),
                Gate("replay", SKIP, "made by a pipeline run")]
    rows = [r for r in history_rows(store, run.session_id) if r["run_id"] == run.run_id] \
        if run.session_id else []
    gates = []
    if not rows:
        gates.append(Gate("lineage", SKIP, "the producing run has no captured cell"))
    else:
        row = rows[-1]
        if row["stale"]:
            gates.append(Gate("lineage", FAIL, f"run {run.run_id[:8]} is stale: "
                                               f"{row['stale']}"))
        elif row["out_of_order"]:
            gates.append(Gate("lineage", FAIL, f"run {run.run_id[:8]} ran out of order "
                                               "(a cell above it ran after it)"))
        else:
            gates.append(Gate("lineage", PASS, f"run {run.run_id[:8]}, in order, not stale"))
    if not verify_replay:
        gates.append(Gate("replay", SKIP, "not asked (verify_replay=False)"))
        return gates
    try:
        verification = replay(version.uri, verify=True, store=store).verification
    except Exception as exc:  # noqa: BLE001 - any failure to rebuild fails the gate
        return gates + [Gate("replay", FAIL, f"{type(exc).__name__}: {exc}".split("\n")[0])]
    gates.append(Gate("replay", PASS if verification.ok else FAIL, verification.message))
    return gates
