"""Runs side by side: params and metrics per run, and which rows differ; and, for many runs
(a sweep, a filter, a selection), one row a run with which params moved a metric.

A comparison holds two views of its runs. The detailed one (``runs``, ``params``,
``metrics``, ``histories``) is the table of a few runs, each a column. The wide one
(``rows``, read in three queries however many runs) feeds the charts of many runs:
parallel coordinates, a param against a metric with an importance ranking, overlaid
histories and the table of one row a run.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from . import storage
from ..entities import Metric, Run
from ..store import Store

SUMMARIES = ("latest", "min", "max")
MAX_CHILDREN = 50  # of each run, in the detailed view
MAX_DETAILED = 50  # runs in the detailed view of a long selection or filter
MAX_RUNS = 5000  # runs in the wide view
_REF = re.compile(r"[0-9a-fA-F]{4,32}")


@dataclass
class RunComparison:
    summaries: ClassVar[tuple[str, ...]] = SUMMARIES  # what a metric's value can be

    runs: list[Run]
    params: Any  # DataFrame: one row a param, one column a run
    metrics: Any  # DataFrame: one row a metric, one column a run
    histories: dict[str, dict[str, list[Metric]]] = field(default_factory=dict)
    omitted: int = 0  # children past MAX_CHILDREN, not in the detailed view
    # Param key -> the model it is a param of (``clf.max_depth`` -> ``clf``); the cell's own
    # params are not in it. Their rows come after the cell's own, grouped by model.
    model_params: dict[str, str] = field(default_factory=dict)
    show_all: bool = False  # the view shows rows equal in every run too
    # The wide view: every compared run (storage.run_table rows), parents included.
    rows: list[dict[str, Any]] = field(default_factory=list, repr=False)
    metric: str | None = None  # what the charts rank runs by
    direction: str = "maximize"
    more: int = 0  # runs past MAX_RUNS, not compared
    # How to find the runs again: compare_runs(**source) is the same comparison, up to date.
    source: dict[str, Any] = field(default_factory=dict, repr=False)
    live: float | None = None  # seconds a live view keeps following; None: while running
    store: Store | None = field(default=None, repr=False)

    @staticmethod
    def differs(frame) -> list[bool]:
        flags = []
        for row in frame.itertuples(index=False):
            seen = {_key(v) for v in row}
            flags.append(len(seen) > 1)
        return flags

    @property
    def running(self) -> bool:
        """Whether a compared run still runs: a live view follows it until it ends."""
        return any(row["status"] == "RUNNING" for row in self.rows)

    @property
    def trials(self) -> list[dict[str, Any]]:
        """The rows the charts show: a parent whose children are compared (a sweep, a
        search) stands for them and is left out."""
        parents = {row["parent_run_id"] for row in self.rows}
        return [row for row in self.rows if row["run_id"] not in parents]

    def metric_keys(self) -> list[str]:
        """Metrics of the charted runs: the ranking metric first, then the cell's own
        (no dot), then nested ones."""
        keys = {k for row in self.trials for k in row["metrics"]}
        return sorted(keys, key=lambda k: (k != self.metric, "." in k, k))

    def param_keys(self, metric: str | None = None, summary: str = "latest",
                   ranking: dict[str, float] | None = None) -> list[str]:
        """Params whose values differ between the charted runs, those that moved ``metric``
        most first (``ranking``: its importance, when already computed)."""
        varying = self.varying_params()
        if ranking is None:
            ranking = self.importance(metric, summary, varying)
        return sorted(varying, key=lambda k: (-ranking.get(k, -1.0), "." in k, k))

    def varying_params(self) -> list[str]:
        """Params whose values differ between the charted runs; a model's param that only
        repeats one of the cell's own (``model.svc__C`` set from ``C``) is left out."""
        trials = self.trials
        columns = {k: tuple(_key(row["params"].get(k)) for row in trials)
                   for k in sorted({k for row in trials for k in row["params"]})}
        varying = [k for k, column in columns.items() if len(set(column)) > 1]
        own = {columns[k] for k in varying if "." not in k}
        return [k for k in varying if "." not in k or columns[k] not in own]

    def value(self, row: dict[str, Any], metric: str, summary: str = "latest"
              ) -> float | None:
        """A run's metric as ``summary`` says: its latest value, or its min or max."""
        found = row["metrics"].get(metric)
        return None if found is None else found[SUMMARIES.index(check_summary(summary))]

    def importance(self, metric: str | None = None, summary: str = "latest",
                   params: Iterable[str] | None = None) -> dict[str, float]:
        """How much each param moved ``metric`` over the charted runs, in [0, 1], highest
        first: |Spearman ρ| for numbers, the correlation ratio η for choices."""
        from types import SimpleNamespace

        from .sweepimportance import param_importance

        metric = metric or self.metric
        if metric is None:
            return {}
        trials = [SimpleNamespace(params=row["params"],
                                  value=self.value(row, metric, summary))
                  for row in self.trials]
        names = params if params is not None else self.varying_params()
        return param_importance(trials, sorted(names))

    def best(self, metric: str | None = None, summary: str = "latest"
             ) -> dict[str, Any] | None:
        metric = metric or self.metric
        scored = [(self.value(row, metric, summary), row) for row in self.trials
                  if metric is not None]
        scored = [(v, row) for v, row in scored if v is not None and math.isfinite(v)]
        if not scored:
            return None
        pick = max if self.direction == "maximize" else min
        return pick(scored, key=lambda item: item[0])[1]

    def frame(self, summary: str = "latest"):
        """The charted runs as a DataFrame, one row a run: ``run_id, name, status,
        parent_run_id``, then ``params.<k>`` and ``metrics.<k>`` (latest, min or max)."""
        import pandas as pd

        trials = self.trials
        params = sorted({k for row in trials for k in row["params"]})
        data: dict[str, Any] = {c: [row[c] for row in trials]
                                for c in ("run_id", "name", "status", "parent_run_id")}
        for key in params:
            data[f"params.{key}"] = pd.Series([row["params"].get(key) for row in trials],
                                              dtype=object)
        for key in self.metric_keys():
            data[f"metrics.{key}"] = pd.Series(
                [self.value(row, key, summary) for row in trials], dtype="float64")
        return pd.DataFrame(data)

    def history_metric(self, metric: str | None = None) -> str | None:
        """``metric`` if a charted run logged it at several steps, else the first metric
        that has such a history (a sweep's ranking metric is often a single value)."""
        for key in [metric or self.metric, *self.metric_keys()]:
            if key is not None and any(row["metrics"].get(key, (0, 0, 0, 0))[3] > 1
                                       for row in self.trials):
                return key
        return None

    def history(self, metric: str | None = None, limit: int = 20
                ) -> dict[str, list[Metric]]:
        """The steps of ``metric`` of the best ``limit`` charted runs (best by the ranking
        metric), by label."""
        from ..store.current import get_store

        if metric is None:
            return {}
        sign = -1.0 if self.direction == "maximize" else 1.0
        ranking = self.metric or metric
        ranked = sorted((row for row in self.trials if metric in row["metrics"]),
                        key=lambda row: _rank(sign, self.value(row, ranking)))[:limit]
        found = storage.metric_histories(self.store or get_store(),
                                         [row["run_id"] for row in ranked], metric)
        return {_label_of(row): found.get(row["run_id"], []) for row in ranked}

    def refresh(self) -> RunComparison:
        """The same comparison read again from the store (new trials, new values)."""
        return compare_runs(**self.source)

    @property
    def figure_png(self) -> bytes | None:
        if not any(len(h) > 1 for per_run in self.histories.values() for h in per_run.values()):
            return None
        from ..dashboards.plots import plot_metric_histories
        from ..dashboards.png import figure_png

        return figure_png(plot_metric_histories(self.histories).figure, tight=True)

    def __repr__(self) -> str:
        counts = "" if self.params is None else (
            f": {len(self.params)} params, {len(self.metrics)} metrics")
        return f"<RunComparison of {len(self.rows) or len(self.runs)} runs{counts}>"

    def _repr_html_(self) -> str:
        from ..dashboards.compare import compare_html

        return compare_html(self)

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict[str, Any]:
        from ..dashboards.compare import mimebundle

        return mimebundle(self)


_NAN = object()  # one key for every NaN, which equals nothing, not even itself


def _key(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return _NAN
    return repr(value)


def _rank(sign: float, value: float | None) -> tuple[int, float]:
    return (1, 0.0) if value is None or not math.isfinite(value) else (0, sign * value)


def _label(run: Run) -> str:
    return f"{run.name or 'run'} ({run.run_id[:8]})"


def _label_of(row: dict[str, Any]) -> str:
    return f"{row['name'] or 'run'} ({row['run_id'][:8]})"


def check_summary(summary: str) -> str:
    if summary not in SUMMARIES:
        from ..errors import ValidationError, shorten

        raise ValidationError(f"A metric is summarised by one of {', '.join(SUMMARIES)}; "
                              f"got {shorten(summary)}.")
    return summary


def _children(store: Store, run_id: str) -> list[str]:
    """A run's children, a search's best candidate first, then in the order they ran."""
    return [r for (r,) in store.query(
        "SELECT r.run_id FROM runs r LEFT JOIN tags t ON t.run_id = r.run_id "
        "AND t.key = 'best' WHERE r.parent_run_id = ? "
        "ORDER BY t.value IS NULL, r.start_time, r.rowid", (run_id,))]


def _with_children(store: Store, runs: list[Run]) -> tuple[list[Run], int]:
    """Each run followed by its children (a search's best candidate first), at most
    MAX_CHILDREN of each; and how many were left out."""
    found, omitted = [], 0
    for run in runs:
        found.append(run)
        children = _children(store, run.run_id)
        found += [storage.get_run(store, run_id) for run_id in children[:MAX_CHILDREN]]
        omitted += max(0, len(children) - MAX_CHILDREN)
    return found, omitted


def _filtered(store: Store, text: str | None, experiment: str | None) -> list[str]:
    from .search import filter_sql

    where, params = filter_sql(text, store)
    if experiment is not None:
        where, params = f"({where}) AND e.name = ?", [*params, experiment]
    return [r for (r,) in store.query(
        "SELECT r.run_id FROM runs r JOIN experiments e USING (experiment_id) "
        f"WHERE {where} ORDER BY r.start_time, r.rowid LIMIT ?", [*params, MAX_RUNS + 1])]


def _refs(target: Any) -> list[str]:
    """Run ids or prefixes from what names runs: ids, Runs, a sweep's result (anything with
    a ``run_id``), a DataFrame with a ``run_id`` column, or a list of them."""
    from ..errors import ValidationError

    if isinstance(target, str):
        return [target]
    if hasattr(target, "run_id") and isinstance(target.run_id, str):
        return [target.run_id]
    columns = getattr(target, "columns", None)
    if columns is not None:
        if "run_id" not in columns:
            raise ValidationError("compare_runs takes a DataFrame of search_runs (with a "
                                  "run_id column); this one has none.")
        return [str(r) for r in target["run_id"]]
    if isinstance(target, Iterable):
        refs = []
        for item in target:
            refs += _refs(item) if not isinstance(item, str) else [item]
        return refs
    raise ValidationError(f"compare_runs takes run ids, runs, a sweep, a DataFrame of runs "
                          f"or a filter; got {type(target).__name__}.")


def compare_runs(runs: Any = None, *, filter: str | None = None,  # noqa: A002 - MLflow's name
                 experiment: str | None = None, children: bool | None = None,
                 show_all: bool = False, metric: str | None = None,
                 live: float | None = None, store: Store | None = None) -> RunComparison:
    """Params and metrics of several runs side by side, with every metric's history; for
    many runs, charts of them all.

    ``runs`` is a list of run ids (or prefixes, or Runs), one run, a sweep's result, a
    DataFrame of ``search_runs``, or a filter string (``"metrics.acc > 0.9"``, as
    ``filter=``). With ``children`` (the default when one run is given: a sweep, a search)
    each run comes with its child runs. The detailed table holds at most ``MAX_CHILDREN``
    children per run; the charts hold every run, up to ``MAX_RUNS``. ``metric`` ranks the
    runs (a sweep's own metric by default). Shown in a notebook, the view follows running
    runs until they end, or for ``live`` seconds (new runs of a filter appear).

    Examples
    --------
    >>> compare_runs([first_id, second_id]).params             # doctest: +SKIP
    >>> compare_runs(sweep_result).importance()                # doctest: +SKIP
    >>> compare_runs(filter="params.C > 0.1", experiment="iris")  # doctest: +SKIP
    """
    import pandas as pd

    from ..errors import ValidationError
    from ..store.current import get_store

    store = store or get_store()
    source = {"runs": runs, "filter": filter, "experiment": experiment, "children": children,
              "show_all": show_all, "metric": metric, "live": live, "store": store}
    ids, with_children = resolve_runs(runs, filter=filter, experiment=experiment,
                                      children=children, store=store)
    wide = wide_comparison(ids, children=with_children, metric=metric, store=store)
    detailed = [storage.get_run(store, ref) for ref in ids[:MAX_DETAILED]]
    omitted = max(0, len(ids) - MAX_DETAILED)
    if with_children:
        detailed, dropped = _with_children(store, detailed)
        omitted += dropped
    if len(detailed) < 2:
        raise ValidationError("compare takes at least two runs, such as compare RUN1 RUN2, "
                              "or one run that has child runs.")
    labels = [_label(run) for run in detailed]
    owners: dict[str, str] = {}
    for run in detailed:
        for key in run.params:
            if (model := run.model_of(key)) is not None:
                owners.setdefault(key, model)
    param_keys = sorted({k for run in detailed for k in run.params},
                        key=lambda k: (k in owners, owners.get(k, ""), k))
    metric_keys = sorted({k for run in detailed for k in run.metrics})
    params = pd.DataFrame(
        {label: [run.params.get(k) for k in param_keys] for label, run in zip(labels, detailed)},
        index=pd.Index(param_keys, name="param"),
    )
    # Object columns: a metric a run never logged is None, not NaN (which may be logged).
    metrics = pd.DataFrame(
        {label: pd.Series([run.metrics.get(k) for k in metric_keys], dtype=object)
         for label, run in zip(labels, detailed)},
    )
    metrics.index = pd.Index(metric_keys, name="metric")
    histories = {
        key: {label: storage.metric_history(store, run.run_id, key)
              for label, run in zip(labels, detailed) if key in run.metrics}
        for key in metric_keys
    }
    wide.runs, wide.params, wide.metrics, wide.histories = detailed, params, metrics, histories
    wide.omitted, wide.model_params, wide.show_all = omitted, owners, show_all
    wide.source, wide.live = source, live
    return wide


def resolve_runs(runs: Any = None, *, filter: str | None = None,  # noqa: A002
                 experiment: str | None = None, children: bool | None = None,
                 store: Store) -> tuple[list[str], bool]:
    """The run ids ``runs`` (or the filter) names, and whether their children come too."""
    from ..errors import ValidationError

    if isinstance(runs, str) and not _REF.fullmatch(runs.strip()):
        runs, filter = None, runs  # a filter, not a run
    if runs is None:
        if filter is None and experiment is None:
            raise ValidationError("compare_runs needs runs: ids, a sweep, a DataFrame of "
                                  "runs, or filter= / experiment=.")
        return _filtered(store, filter, experiment), bool(children)
    ids = list(dict.fromkeys(storage.resolve_run_id(store, ref) for ref in _refs(runs)))
    if children is None:  # one run, or sweeps' results: with their trials
        items = runs if isinstance(runs, (list, tuple)) else [runs]
        children = len(ids) == 1 or all(hasattr(item, "trials") for item in items)
    return ids, bool(children)


def wide_comparison(run_ids: list[str], *, children: bool = False,
                    metric: str | None = None, store: Store) -> RunComparison:
    """The many-run part of a comparison alone (no detailed table): the runs, with their
    children when asked, read in a few queries; what the sidebar's Compare view charts."""
    wide = list(run_ids)
    if children:
        for run_id in run_ids:
            wide += _children(store, run_id)
        wide = list(dict.fromkeys(wide))
    comparison = RunComparison([], None, None, rows=storage.run_table(store, wide[:MAX_RUNS]),
                               more=max(0, len(wide) - MAX_RUNS), store=store)
    comparison.metric, comparison.direction = _ranking(comparison, metric)
    return comparison


def _ranking(comparison: RunComparison, metric: str | None) -> tuple[str | None, str]:
    """The metric the charts rank by, and its direction: a sweep's own, else the one asked
    for, else the cell's own metric most charted runs have."""
    for row in comparison.rows:
        swept = row["params"].get("sweep.metric")
        if isinstance(swept, str) and (metric is None or metric == swept):
            return swept, str(row["params"].get("sweep.direction", "maximize"))
    if metric is not None:
        return metric, "minimize" if _lower_is_better(metric) else "maximize"
    counts: dict[str, int] = {}
    for row in comparison.trials:
        for key in row["metrics"]:
            counts[key] = counts.get(key, 0) + 1
    if not counts:
        return None, "maximize"
    chosen = min(counts, key=lambda k: ("." in k, -counts[k], k))
    return chosen, "minimize" if _lower_is_better(chosen) else "maximize"


def _lower_is_better(metric: str) -> bool:
    name = metric.lower()
    return any(word in name for word in ("loss", "error", "mse", "mae", "rmse", "time"))


__all__ = ["MAX_RUNS", "SUMMARIES", "RunComparison", "compare_runs", "resolve_runs",
           "wide_comparison"]
