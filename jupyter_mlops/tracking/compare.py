"""Runs side by side: params and metrics per run, and which rows differ."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from . import storage
from ..entities import Metric, Run
from ..store import Store


@dataclass
class RunComparison:
    runs: list[Run]
    params: Any  # DataFrame: one row a param, one column a run
    metrics: Any  # DataFrame: one row a metric, one column a run
    histories: dict[str, dict[str, list[Metric]]] = field(default_factory=dict)
    omitted: int = 0  # children past MAX_CHILDREN, not compared
    # Param key -> the model it is a param of (``clf.max_depth`` -> ``clf``); the cell's own
    # params are not in it. Their rows come after the cell's own, grouped by model.
    model_params: dict[str, str] = field(default_factory=dict)
    show_all: bool = False  # the view shows rows equal in every run too

    @staticmethod
    def differs(frame) -> list[bool]:
        flags = []
        for row in frame.itertuples(index=False):
            seen = {_key(v) for v in row}
            flags.append(len(seen) > 1)
        return flags

    @property
    def figure_png(self) -> bytes | None:
        if not any(len(h) > 1 for per_run in self.histories.values() for h in per_run.values()):
            return None
        from ..dashboards.plots import plot_metric_histories
        from ..dashboards.png import figure_png

        return figure_png(plot_metric_histories(self.histories).figure, tight=True)

    def __repr__(self) -> str:
        return (f"<RunComparison of {len(self.runs)} runs: {len(self.params)} params, "
                f"{len(self.metrics)} metrics>")

    def _repr_html_(self) -> str:
        from ..dashboards.runs import comparison_html

        return comparison_html(self)


_NAN = object()  # one key for every NaN, which equals nothing, not even itself


def _key(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return _NAN
    return repr(value)


def _label(run: Run) -> str:
    return f"{run.name or 'run'} ({run.run_id[:8]})"


MAX_CHILDREN = 50


def _with_children(store: Store, runs: list[Run]) -> tuple[list[Run], int]:
    """Each run followed by its children (a search's best candidate first), at most
    MAX_CHILDREN of each; and how many were left out."""
    found, omitted = [], 0
    for run in runs:
        found.append(run)
        children = store.query(
            "SELECT r.run_id FROM runs r LEFT JOIN tags t ON t.run_id = r.run_id "
            "AND t.key = 'best' WHERE r.parent_run_id = ? "
            "ORDER BY t.value IS NULL, r.start_time, r.rowid", (run.run_id,))
        found += [storage.get_run(store, run_id) for (run_id,) in children[:MAX_CHILDREN]]
        omitted += max(0, len(children) - MAX_CHILDREN)
    return found, omitted


def compare_runs(run_refs: list[str], *, children: bool | None = None,
                 show_all: bool = False, store: Store | None = None) -> RunComparison:
    """Params and metrics of several runs side by side, with every metric's history.

    With ``children`` (the default when one run is given) each run comes with its child
    runs, such as a search's candidates: at most ``MAX_CHILDREN`` per run. The frames hold
    every row: the cell's own params first, then each model's (``model_params`` says whose).
    The view shows only the rows that differ unless ``show_all``.

    Examples
    --------
    >>> compare_runs([first_id, second_id]).params             # doctest: +SKIP
    """
    import pandas as pd

    from ..errors import ValidationError
    from ..store.current import get_store

    store = store or get_store()
    runs = [storage.get_run(store, ref) for ref in run_refs]
    omitted = 0
    if children or (children is None and len(runs) == 1):
        runs, omitted = _with_children(store, runs)
    if len(runs) < 2:
        raise ValidationError("compare takes at least two runs, such as compare RUN1 RUN2, "
                              "or one run that has child runs.")
    labels = [_label(run) for run in runs]
    owners: dict[str, str] = {}
    for run in runs:
        for key in run.params:
            if (model := run.model_of(key)) is not None:
                owners.setdefault(key, model)
    param_keys = sorted({k for run in runs for k in run.params},
                        key=lambda k: (k in owners, owners.get(k, ""), k))
    metric_keys = sorted({k for run in runs for k in run.metrics})
    params = pd.DataFrame(
        {label: [run.params.get(k) for k in param_keys] for label, run in zip(labels, runs)},
        index=pd.Index(param_keys, name="param"),
    )
    # Object columns: a metric a run never logged is None, not NaN (which may be logged).
    metrics = pd.DataFrame(
        {label: pd.Series([run.metrics.get(k) for k in metric_keys], dtype=object)
         for label, run in zip(labels, runs)},
    )
    metrics.index = pd.Index(metric_keys, name="metric")
    histories = {
        key: {label: storage.metric_history(store, run.run_id, key)
              for label, run in zip(labels, runs) if key in run.metrics}
        for key in metric_keys
    }
    return RunComparison(runs, params, metrics, histories, omitted, owners, show_all)
