"""Two evaluations side by side: each metric, the delta, and which one is better."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..errors import NotFoundError, ValidationError, shorten
from ..tracking import storage as run_storage
from .directions import higher_is_better, ordered
from .result import EvaluationResult


@dataclass
class EvaluationComparison:
    """``a`` and ``b`` and a ``table`` DataFrame indexed by metric with columns ``a``,
    ``b``, ``delta`` (b − a), ``higher_is_better`` and ``better`` ('a', 'b', 'tie' or ''
    when a value is missing or the direction unknown). ``notes`` say what makes the two
    hard to compare (other data, another task)."""

    a: EvaluationResult
    b: EvaluationResult
    table: Any
    notes: list[str] = field(default_factory=list)

    def _repr_html_(self) -> str:
        from ..dashboards.evaluation import comparison_html

        return comparison_html(self)

    def __repr__(self) -> str:
        return f"<EvaluationComparison {self.a.label!r} vs {self.b.label!r}>"


def _better(a: float, b: float, higher: bool | None) -> str:
    if higher is None or math.isnan(a) or math.isnan(b):
        return ""
    if a == b:
        return "tie"
    return "b" if (b > a) == higher else "a"


def compare_evaluations(a: Any, b: Any, *, store=None) -> EvaluationComparison:
    """Put two evaluations side by side, such as two model versions or two runs.

    ``a`` and ``b`` are each an EvaluationResult, an evaluation id (or prefix), a run id
    (or prefix: that run's latest evaluation) or a model URI (its latest evaluation).
    ``delta`` is ``b - a``; per metric, the better one is marked knowing whether higher
    or lower is better. It shows as escaped HTML in a notebook.

    Examples
    --------
    >>> old = evaluate(old_model, X_test, y_test, model_uri="models:/churn/2")  # doctest: +SKIP
    >>> new = evaluate(new_model, X_test, y_test, model_uri="models:/churn/3")  # doctest: +SKIP
    >>> compare_evaluations(old, new).table.loc["roc_auc", "better"]          # doctest: +SKIP
    'b'
    """
    import pandas as pd

    first, second = resolve(a, store), resolve(b, store)
    keys = ordered(set(first.metrics) | set(second.metrics))
    rows = []
    for key in keys:
        value_a = float(first.metrics.get(key, math.nan))
        value_b = float(second.metrics.get(key, math.nan))
        higher = higher_is_better(key)
        rows.append((key, value_a, value_b, value_b - value_a, higher,
                     _better(value_a, value_b, higher)))
    table = pd.DataFrame(rows, columns=["metric", "a", "b", "delta", "higher_is_better",
                                        "better"]).set_index("metric")
    notes = []
    if first.task != second.task:
        notes.append(f"The tasks differ ({first.task} and {second.task}); only the metrics "
                     "they share are comparable.")
    if first.dataset_fingerprint != second.dataset_fingerprint or (
            first.target_fingerprint != second.target_fingerprint):
        notes.append("The two were evaluated on different data (their fingerprints differ): "
                     "a delta may come from the data rather than from the model.")
    for key in keys:
        for side, result in (("a", first), ("b", second)):
            if key in result.skipped:
                notes.append(f"{key} is missing from {side}: {result.skipped[key]}")
    return EvaluationComparison(first, second, table, notes)


def resolve(ref: Any, store=None) -> EvaluationResult:
    """An EvaluationResult from a result, an evaluation id, a run id or a model URI."""
    if isinstance(ref, EvaluationResult):
        return ref
    if not isinstance(ref, str) or not ref.strip():
        raise ValidationError(
            "compare_evaluations takes EvaluationResults, evaluation ids, run ids or model "
            f"URIs; got {type(ref).__name__} {shorten(ref)}."
        )
    from ..store.current import get_store
    from . import storage
    from .api import get_evaluation

    store = store or get_store()
    try:
        return get_evaluation(ref, store=store)
    except (NotFoundError, ValidationError):
        pass
    try:
        run_id = run_storage.resolve_run_id(store, ref)
    except (NotFoundError, ValidationError):
        run_id = None
    found = run_id and storage.latest_for(store, "run_id", run_id)
    found = found or storage.latest_for(store, "model_uri", ref)
    if not found:
        raise NotFoundError(
            f"No evaluation, run with an evaluation, or model URI with an evaluation matches "
            f"{shorten(ref)} in {store.path}."
        )
    return get_evaluation(found, store=store)
