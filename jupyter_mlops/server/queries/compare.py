"""Compare: many runs at once for the sidebar's Compare tab (a selection, a sweep's
trials, a filter), with which params moved the ranking metric."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...errors import ValidationError, shorten
from ...store import Store
from ...tracking.compare import MAX_RUNS, SUMMARIES, resolve_runs, wide_comparison
from .runs import check_run_id
from .values import number, plain

MAX_SELECTED = 1_000  # run ids in one request (a URL holds them)


def compare(store: Store | None, run_ids: Sequence[str] = (), *, parent: str | None = None,
            filter_text: str | None = None, experiment: str | None = None,
            metric: str | None = None,
            summary: str = "latest") -> dict[str, Any]:
    """The runs (or ``parent``'s children, or the runs a filter finds, in ``experiment``
    when given) with their params and
    each metric's latest, min and max; the params that vary, the ones that moved ``metric``
    most first, and their importance."""
    if summary not in SUMMARIES:
        raise ValidationError(f"summary is one of {', '.join(SUMMARIES)}; got "
                              f"{shorten(summary)}.")
    if len(run_ids) > MAX_SELECTED:
        raise ValidationError(f"Compare at most {MAX_SELECTED:,} runs by id; got "
                              f"{len(run_ids):,}. Compare a sweep or a filter instead.")
    answer: dict[str, Any] = {"runs": [], "params": [], "metrics": [], "importance": {},
                              "metric": None, "direction": "maximize", "summary": summary,
                              "more": 0, "limit": MAX_RUNS, "running": False}
    if store is None:
        return answer
    ids = [check_run_id(r) for r in run_ids]
    if parent is not None:
        ids = [check_run_id(parent)]
    if not ids and not (filter_text and filter_text.strip()):
        return answer
    chosen, children = resolve_runs(ids or None, filter=filter_text if not ids else None,
                                    experiment=experiment if not ids else None,
                                    children=parent is not None, store=store)
    comparison = wide_comparison(chosen, children=children, metric=metric, store=store)
    metric = comparison.metric
    importance = comparison.importance(metric, summary)
    answer.update({
        "metric": metric, "direction": comparison.direction, "more": comparison.more,
        "params": comparison.param_keys(metric, summary, importance),
        "metrics": comparison.metric_keys(),
        "importance": importance, "running": comparison.running,
    })
    for row in comparison.trials:
        metrics = {}
        for key, values in row["metrics"].items():
            metrics[key] = [number(v)[0] for v in values[:3]]
        answer["runs"].append({
            "run_id": row["run_id"], "name": row["name"], "status": row["status"],
            "experiment": row["experiment"], "parent_run_id": row["parent_run_id"],
            "params": plain(row["params"]), "metrics": metrics,
        })
    return answer


__all__ = ["MAX_SELECTED", "compare"]
