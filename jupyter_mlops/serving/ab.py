"""A/B comparison of two versions from their served traffic.

Every logged request either version scored is taken once. Where the log holds both
versions' outputs for a request (shadow mode) they are compared as logged; where only one
version saw it (a traffic split), the other version scores the same inputs now, so the
agreement is always measured on identical rows. When labels have arrived
(:func:`~jupyter_mlops.serving.log_labels`), both versions are evaluated on the labelled rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..errors import NotFoundError, ValidationError


@dataclass
class ABComparison:
    """The outcome of :func:`compare_versions`.

    ``agreement`` is the share of rows on which both versions predict the same value
    (floats within a relative 1e-6); ``served`` gives each version's logged requests,
    rows, answered rows and median latency; ``metrics`` maps each version to its
    evaluation on the labelled rows (empty when no labels arrived).
    """

    a: str
    b: str
    n_requests: int
    n_rows: int
    n_scored_by_both: int
    agreement: float
    mean_abs_difference: float | None
    served: dict[str, dict[str, Any]]
    labelled_rows: int = 0
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def better(self, metric: str) -> str | None:
        """The version with the better ``metric`` on the labelled rows (None on a tie)."""
        from ..evaluation.directions import higher_is_better

        values = [self.metrics.get(v, {}).get(metric) for v in (self.a, self.b)]
        if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in values) or \
                values[0] == values[1]:
            return None
        higher = higher_is_better(metric)
        if higher is None:
            return None
        return self.b if (values[1] > values[0]) == higher else self.a

    def lines(self) -> list[str]:
        out = [f"A/B {self.a} vs {self.b}: {self.n_requests:,} requests, {self.n_rows:,} rows "
               f"({self.n_scored_by_both:,} scored by both in the log)",
               f"  agreement {self.agreement:.4f}"
               + (f", mean |a - b| {self.mean_abs_difference:.6g}"
                  if self.mean_abs_difference is not None else "")]
        for label, info in self.served.items():
            latency = info["p50_latency_ms"]
            out.append(f"  {label}: answered {info['answered_requests']:,} request(s), scored "
                       f"{info['rows']:,} row(s)"
                       + (f", p50 latency {latency:.2f} ms" if latency is not None else ""))
        if self.metrics:
            out.append(f"  on {self.labelled_rows:,} labelled row(s):")
            names = [m for m in self.metrics.get(self.a, {}) if m in self.metrics.get(self.b, {})]
            for name in names:
                winner = self.better(name)
                out.append(f"    {name:<20} {self.metrics[self.a][name]:.4f}  "
                           f"{self.metrics[self.b][name]:.4f}"
                           + (f"  better: {winner}" if winner else ""))
        else:
            out.append("  no labels yet: metrics appear once labels arrive (log_labels or "
                       "POST /labels)")
        out.extend(f"  note: {note}" for note in self.notes)
        return out

    def __repr__(self) -> str:
        return "\n".join(self.lines())


def _same(a: Any, b: Any) -> tuple[bool, float | None]:
    if isinstance(a, bool) or isinstance(b, bool) or not isinstance(a, (int, float)) or \
            not isinstance(b, (int, float)):
        return a == b, None
    if isinstance(a, int) and isinstance(b, int):
        return a == b, float(abs(a - b))
    difference = abs(float(a) - float(b))
    return difference <= 1e-6 * max(abs(a), abs(b), 1e-12), difference


def compare_versions(uri_a: str, uri_b: str, *, since: str | float | None = None,
                     store: Any = None, max_rows: int = 200_000) -> ABComparison:
    """Compare two versions on the traffic they served (the last ``since``, e.g. ``"24h"``).

    Examples
    --------
    >>> ab = compare_versions("churn@champion", "churn@challenger", since="24h")  # doctest: +SKIP
    >>> ab.agreement, ab.better("accuracy")                                       # doctest: +SKIP
    (0.97, 'churn/4')
    """
    import numpy as np
    import pandas as pd

    from ..registry.versions import get_model_version, load_model
    from ..tracking.frameworks import predictor
    from ..store.current import get_store
    from .formats import InputSpec, jsonable
    from .predictions import load_traffic, parse_since

    store = store or get_store()
    seconds = parse_since(since)
    versions = [get_model_version(uri_a, store=store), get_model_version(uri_b, store=store)]
    if (versions[0].name, versions[0].version) == (versions[1].name, versions[1].version):
        raise ValidationError(f"Both URIs name {versions[0].name}/{versions[0].version}; "
                              "compare two different versions.")
    labels = [f"{v.name}/{v.version}" for v in versions]
    specs = [InputSpec.from_signature(v.signature) for v in versions]
    traffic = [load_traffic(v.name, v.version, since=seconds, store=store, spec=s,
                            max_rows=max_rows) for v, s in zip(versions, specs)]
    if not len(traffic[0]) and not len(traffic[1]):
        window = f" in the last {since}" if since else ""
        raise NotFoundError(f"Neither {labels[0]} nor {labels[1]} has logged predictions"
                            f"{window}; serve them (serve --challenger) first.")

    # Every (request, row) once: A's rows, then the rows only B saw.
    keys = [list(zip(t.request_ids, t.rows)) for t in traffic]
    position = [dict(zip(k, range(len(k)))) for k in keys]
    only_b = [i for i, key in enumerate(keys[1]) if key not in position[0]]
    rows = keys[0] + [keys[1][i] for i in only_b]

    def take(data: Any, picks: list[int]) -> Any:
        return data.iloc[picks].reset_index(drop=True) if isinstance(data, pd.DataFrame) \
            else np.asarray(data)[picks]

    parts = [p for p in (traffic[0].inputs if len(traffic[0]) else None,
                         take(traffic[1].inputs, only_b) if only_b else None) if p is not None]
    if isinstance(parts[0], pd.DataFrame):
        inputs = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    else:
        inputs = np.concatenate(parts) if len(parts) > 1 else parts[0]

    predictions: list[list] = []
    models = [None, None]
    scored_now = 0
    for side in (0, 1):
        logged = position[side]
        values: list = [None] * len(rows)
        missing = []
        for index, key in enumerate(rows):
            at = logged.get(key)
            if at is None:
                missing.append(index)
            else:
                values[index] = traffic[side].outputs[at]
        if missing:
            models[side] = predictor(load_model(versions[side].uri, store=store))
            subset = specs[side].conform(take(inputs, missing), extra="drop")
            fresh = jsonable(models[side].predict(subset))
            for index, value in zip(missing, fresh):
                values[index] = value
            scored_now += len(missing)
        predictions.append(values)

    same, differences = [], []
    for a, b in zip(*predictions):
        equal, difference = _same(a, b)
        same.append(equal)
        if difference is not None:
            differences.append(difference)
    both = sum(1 for key in keys[1] if key in position[0])
    served = {}
    for label, t in zip(labels, traffic):
        answered = {r for r, flag in zip(t.request_ids, t.answered) if flag}
        latencies = {}
        for request_id, latency in zip(t.request_ids, t.latency_ms):
            latencies.setdefault(request_id, latency)
        values = [v for v in latencies.values() if v is not None]
        served[label] = {"requests": t.n_requests, "answered_requests": len(answered),
                         "rows": len(t), "p50_latency_ms": float(np.median(values))
                         if values else None}
    comparison = ABComparison(
        labels[0], labels[1], n_requests=len({r for r, _ in rows}), n_rows=len(rows),
        n_scored_by_both=both, agreement=float(np.mean(same)) if same else math.nan,
        mean_abs_difference=(float(np.mean(differences))
                             if differences and len(differences) == len(same) else None),
        served=served)
    for label, t in zip(labels, traffic):
        if t.skipped:
            comparison.notes.append(f"{t.skipped:,} logged request(s) of {label} could not be "
                                    "read back and were left out.")
    if scored_now:
        comparison.notes.append(f"{scored_now:,} prediction(s) were computed now for rows the "
                                "other version answered (traffic split).")

    label_of: dict[tuple[str, int], Any] = {}
    for t in traffic:
        for key, label in zip(zip(t.request_ids, t.rows), t.labels or []):
            if label is not None:
                label_of[key] = label
    labelled = [i for i, key in enumerate(rows) if key in label_of]
    if labelled:
        from ..evaluation import evaluate

        y = pd.Series([label_of[rows[i]] for i in labelled])
        comparison.labelled_rows = len(labelled)
        for side in (0, 1):
            model = models[side] or load_model(versions[side].uri, store=store)
            X = specs[side].conform(take(inputs, labelled), extra="drop")
            try:
                result = evaluate(model, X, y, name="ab", model_uri=versions[side].uri,
                                  importance=False)
            except ValidationError as exc:
                comparison.notes.append(f"{labels[side]} could not be evaluated: {exc}")
                continue
            comparison.metrics[labels[side]] = dict(result.metrics)
    return comparison
