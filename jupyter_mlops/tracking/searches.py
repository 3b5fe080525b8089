"""Hyperparameter searches a tracked cell ran: the run is the parent, each candidate a child.

Recognised, when their library is already imported: scikit-learn's ``GridSearchCV``,
``RandomizedSearchCV`` and the halving searches fitted in the cell; an Optuna ``Study`` and
a hyperopt ``Trials`` with trials that started during the run; and the dict a hyperopt
``fmin`` call returned. The run gets MLflow's names where MLflow has them:

- ``best_<param>`` params from ``best_params_`` (the best trial's params for Optuna and
  hyperopt), ``best_cv_score`` (``best_value`` for Optuna, ``best_loss`` for hyperopt);
- the refitted ``best_estimator_`` saved as the model of the search's variable, with its
  params as ``<var>.<param>``: never the unfitted base estimator's defaults;
- the search's own settings as ``<var>.search.<setting>`` (``cv``, ``scoring``, the grid);
- ``cv_results.csv`` (``trials.csv``) with every candidate, as a table artifact.

With several searches in one cell the ``best_*`` keys and tables take the variable as a
prefix (``gs.best_C``). Each candidate (trial) becomes a finished child run named
``<var>[<i>]`` with its params and scores (fit and score times, mean and std test scores,
rank; a trial's value, state and duration), FAILED when its fits all failed. At most
``MAX_CHILDREN`` children per search, the best ranked; the table keeps them all.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import numbers
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import storage
from ..errors import warn as _warn
from .cellnames import CellNames
from .children import log_child_run

MAX_CHILDREN = 1_000
TABLE_MEDIA_TYPE = "text/csv"
_SIMPLE = (type(None), bool, int, float, str)


@dataclass
class SearchLog:
    """What the cell's searches give its run: params and metrics (autolog encodes them,
    explicit logs still win), models to save, and the tables and children to write."""

    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    models: list[tuple[str, Any]] = field(default_factory=list)
    tables: list[tuple[str, bytes]] = field(default_factory=list)
    children: list[dict[str, Any]] = field(default_factory=list)

    def write(self, store, run_id: str) -> int:
        """Link the tables and write the children; returns how many children."""
        for name, data in self.tables:
            digest, size = store.artifacts.put_bytes(data)
            storage.add_artifact(store, run_id, name, "table", digest, size, TABLE_MEDIA_TYPE)
        for child in self.children:
            log_child_run(run_id, store=store, **child)
        return len(self.children)


def search_kind(value: Any) -> str | None:
    """'sklearn', 'optuna' or 'hyperopt' for a search object, else None; imports nothing."""
    if isinstance(value, type):
        return None
    sklearn_search = sys.modules.get("sklearn.model_selection._search")
    if sklearn_search is not None and isinstance(value, sklearn_search.BaseSearchCV):
        return "sklearn"
    optuna_study = sys.modules.get("optuna.study")
    if optuna_study is not None and isinstance(value, optuna_study.Study):
        return "optuna"
    hyperopt_base = sys.modules.get("hyperopt.base")
    if hyperopt_base is not None and isinstance(value, hyperopt_base.Trials):
        return "hyperopt"
    return None


def _plain(value: Any, depth: int = 0) -> bool:
    """A value a param holds as it is: a scalar, or small lists and dicts of them (a grid)."""
    if isinstance(value, float) and math.isnan(value):
        return False
    if isinstance(value, _SIMPLE):
        return True
    if type(value).__module__ == "numpy" and getattr(value, "shape", None) == ():
        return not (value.dtype.kind == "f" and math.isnan(value))
    if depth < 3 and isinstance(value, (list, tuple)) and len(value) <= 64:
        return all(_plain(v, depth + 1) for v in value)
    if depth < 3 and isinstance(value, Mapping) and len(value) <= 64:
        return all(isinstance(k, str) and _plain(v, depth + 1) for k, v in value.items())
    return False


def _param_values(params: Mapping[str, Any]) -> dict[str, Any]:
    """A candidate's params as they can be stored: an estimator in a grid by its repr."""
    return {k: v if _plain(v) else repr(v)[:500] for k, v in params.items()}


def _number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _csv(frame) -> bytes:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return buffer.getvalue().encode("utf-8")


def _bounded(name: str, children: list[dict[str, Any]], ranks: list[float]) -> list[dict]:
    if len(children) <= MAX_CHILDREN:
        return children
    order = sorted(range(len(children)), key=lambda i: (ranks[i], i))[:MAX_CHILDREN]
    _warn(f"Search {name!r} tried {len(children):,} candidates: the {MAX_CHILDREN:,} best "
          "ranked are child runs, and all of them are in its table.")
    return [children[i] for i in sorted(order)]


# -- scikit-learn ------------------------------------------------------------------------

def _sklearn(name: str, search: Any, prefix: str, started: float, log: SearchLog) -> None:
    import pandas as pd

    results = search.cv_results_
    for key, value in getattr(search, "best_params_", {}).items():
        log.params[f"{prefix}best_{key}"] = value
    for key, value in search.get_params(deep=False).items():
        if key != "estimator" and _plain(value):
            log.params[f"{name}.search.{key}"] = value
    best = getattr(search, "best_estimator_", None)
    if best is not None:
        log.models.append((name, best))
        for key, value in sorted(best.get_params(deep=True).items()):
            if _plain(value) and not isinstance(value, (list, tuple, Mapping)):
                log.params[f"{name}.{key}"] = value
    score = getattr(search, "best_score_", None)
    if _number(score):
        log.metrics[f"{prefix}best_cv_score"] = float(score)
    log.tables.append((f"{prefix}cv_results.csv", _csv(pd.DataFrame(results))))

    base = {k: v for k, v in search.estimator.get_params(deep=True).items()
            if _plain(v) and not isinstance(v, (list, tuple, Mapping))}
    rank_key = next((k for k in results if k.startswith("rank_test_")), None)
    split_keys = [k for k in results if k.startswith("split") and "_test_" in k]
    folds = getattr(search, "n_splits_", None) or 1
    best_index = getattr(search, "best_index_", None)
    children, ranks = [], []
    for i, candidate in enumerate(results["params"]):
        metrics = {key: column[i] for key, column in results.items()
                   if not key.startswith(("param", "split")) and _number(column[i])}
        failed = bool(split_keys) and all(_nan(results[k][i]) for k in split_keys)
        spent = (metrics.get("mean_fit_time", 0.0) + metrics.get("mean_score_time", 0.0)) * folds
        children.append({
            "name": f"{name}[{i}]", "params": {**base, **_param_values(candidate)},
            "metrics": metrics,
            "tags": {"best": "true"} if i == best_index else {},
            "status": "FAILED" if failed else "FINISHED",
            "start_time": started, "end_time": started + (spent if math.isfinite(spent) else 0),
        })
        rank = results[rank_key][i] if rank_key else i
        ranks.append(float(rank) if _number(rank) and not _nan(rank) else math.inf)
    log.children.extend(_bounded(name, children, ranks))


def _nan(value: Any) -> bool:
    return _number(value) and math.isnan(value)


# -- Optuna --------------------------------------------------------------------------------

_OPTUNA_STATUS = {"COMPLETE": "FINISHED", "PRUNED": "FINISHED", "FAIL": "FAILED"}


def _optuna_trials(study: Any, started: float) -> list[Any]:
    """The trials that started during the run (Optuna keeps naive local times)."""
    return [t for t in study.get_trials(deepcopy=False)
            if t.datetime_start is not None and t.datetime_start.timestamp() >= started]


def _optuna(name: str, study: Any, prefix: str, started: float, log: SearchLog) -> None:
    trials = _optuna_trials(study, started)
    log.params[f"{name}.search.study_name"] = study.study_name
    directions = [d.name.lower() for d in study.directions]
    log.params[f"{name}.search.direction"] = directions[0] if len(directions) == 1 else directions
    log.params[f"{name}.search.sampler"] = type(study.sampler).__name__
    best = None
    if len(directions) == 1:
        try:
            best = study.best_trial
        except ValueError:  # no completed trial
            states = sorted({t.state.name for t in trials})
            _warn(f"Optuna study {name!r} has no completed trial ({len(trials)} run: "
                  f"{', '.join(states)}), so no best params were logged; its trials are "
                  "child runs.")
    if best is not None:
        for key, value in best.params.items():
            log.params[f"{prefix}best_{key}"] = value
        log.metrics[f"{prefix}best_value"] = float(best.value)
    try:
        log.tables.append((f"{prefix}trials.csv", _csv(study.trials_dataframe())))
    except Exception as exc:  # noqa: BLE001 - an old Optuna without it: the children remain
        _warn(f"Optuna study {name!r}: its trials table was not saved ({exc}).")
    children, ranks = [], []
    for trial in trials:
        metrics: dict[str, Any] = {}
        values = trial.values or []
        if len(values) == 1:
            metrics["value"] = values[0]
        else:
            metrics.update({f"values_{i}": v for i, v in enumerate(values)})
        if trial.intermediate_values:
            metrics["intermediate_value"] = dict(trial.intermediate_values)
        tags: dict[str, Any] = {"state": trial.state.name, "trial_number": trial.number}
        if best is not None and trial.number == best.number:
            tags["best"] = "true"
        complete = trial.datetime_complete
        children.append({
            "name": f"{name}[{trial.number}]",
            "params": _param_values(trial.params),
            "metrics": metrics, "tags": tags,
            "status": _OPTUNA_STATUS.get(trial.state.name, "KILLED"),
            "start_time": trial.datetime_start.timestamp(),
            "end_time": None if complete is None else complete.timestamp(),
        })
        ranks.append(_optuna_rank(trial, study, len(directions)))
    log.children.extend(_bounded(name, children, ranks))


def _optuna_rank(trial: Any, study: Any, objectives: int) -> float:
    if objectives != 1 or trial.value is None or trial.state.name != "COMPLETE":
        return math.inf
    return trial.value if study.direction.name == "MINIMIZE" else -trial.value


# -- hyperopt ------------------------------------------------------------------------------

# hyperopt keeps times in naive UTC, rounded down to the millisecond.
_HYPEROPT_SLACK_S = 0.002
_HYPEROPT_STATES = {0: "NEW", 1: "RUNNING", 2: "DONE", 3: "ERROR", 4: "CANCEL"}


def _utc(moment: Any) -> float | None:
    if not isinstance(moment, dt.datetime):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.timestamp()


def _vals(trial: Mapping[str, Any]) -> dict[str, Any]:
    vals = (trial.get("misc") or {}).get("vals") or {}
    return {k: v[0] for k, v in vals.items() if len(v) == 1 and _plain(v[0])}


def _hyperopt_trials(trials: Any, started: float) -> list[dict[str, Any]]:
    """The trials booked during the run."""
    return [t for t in trials.trials
            if (_utc(t.get("book_time")) or -math.inf) >= started - _HYPEROPT_SLACK_S]


def _hyperopt(name: str, trials: Any, prefix: str, started: float, log: SearchLog) -> None:
    import pandas as pd

    ran = _hyperopt_trials(trials, started)
    best = None
    try:
        best = trials.best_trial
    except Exception:  # noqa: BLE001 - AllTrialsFailed, or no loss at all
        _warn(f"hyperopt trials {name!r} have no successful trial ({len(ran)} run), so no "
              "best params were logged; its trials are child runs.")
    if best is not None:
        for key, value in _vals(best).items():
            log.params[f"{prefix}best_{key}"] = value
        loss = (best.get("result") or {}).get("loss")
        if _number(loss):
            log.metrics[f"{prefix}best_loss"] = float(loss)
    rows, children, ranks = [], [], []
    for trial in ran:
        result = trial.get("result") or {}
        state = _HYPEROPT_STATES.get(trial.get("state"), str(trial.get("state")))
        metrics = {k: v for k, v in result.items() if _number(v)}
        ok = state == "DONE" and result.get("status") == "ok"
        tags = {"state": state, "status": str(result.get("status")), "tid": trial.get("tid")}
        if best is not None and trial.get("tid") == best.get("tid"):
            tags["best"] = "true"
        params = _vals(trial)
        children.append({
            "name": f"{name}[{trial.get('tid')}]", "params": params, "metrics": metrics,
            "tags": tags,
            "status": "FINISHED" if ok else ("FAILED" if state in ("ERROR", "DONE") else
                                             "KILLED"),
            "start_time": _utc(trial.get("book_time")),
            "end_time": _utc(trial.get("refresh_time")),
        })
        loss = metrics.get("loss")
        ranks.append(loss if ok and loss is not None and not _nan(loss) else math.inf)
        rows.append({"tid": trial.get("tid"), "state": state, "status": result.get("status"),
                     "loss": result.get("loss"), "book_time": trial.get("book_time"),
                     "refresh_time": trial.get("refresh_time"), **params})
    log.tables.append((f"{prefix}trials.csv", _csv(pd.DataFrame(rows))))
    log.children.extend(_bounded(name, children, ranks))


def _fmin_results(names: CellNames, namespace: Mapping[str, Any]) -> list[tuple[str, dict]]:
    """``best = fmin(...)`` without a Trials object: the dict of best values it returned."""
    if "hyperopt" not in sys.modules:
        return []
    found = []
    for name, callee in names.calls.items():
        value = namespace.get(name)
        if callee.rsplit(".", 1)[-1] == "fmin" and isinstance(value, dict):
            found.append((name, value))
    return found


_READERS = {"sklearn": _sklearn, "optuna": _optuna, "hyperopt": _hyperopt}


def _ran_here(kind: str, value: Any, fitted: set[str], name: str, started: float) -> bool:
    """Whether the cell ran this search: fitted it, or started some of its trials."""
    if kind == "sklearn":
        return name in fitted and hasattr(value, "cv_results_")
    if kind == "optuna":
        return bool(_optuna_trials(value, started))
    return bool(_hyperopt_trials(value, started))


def _fit_datasets(name: str, names: CellNames, namespace: Mapping[str, Any]) -> list:
    """``(name, role, fingerprint)`` of the data the cell fitted search ``name`` on
    (``gs.fit(X, y)``): every candidate was fitted on it."""
    from .datasets import fingerprint

    for call in names.fit_calls:
        if call.model != name:
            continue
        found = []
        for data_name, role in ((call.x, "train"), (call.y, "target")):
            value = namespace.get(data_name) if data_name else None
            info = fingerprint(value) if value is not None else None
            if info is not None:
                found.append((data_name, role, info))
        return found
    return []


def read_searches(found: list[tuple[str, Any]], names: CellNames,
                  namespace: Mapping[str, Any], started: float) -> SearchLog:
    """What the searches bound in a cell give its run, which started at ``started``.

    ``found`` holds ``(variable, search)`` pairs that ``search_kind`` recognised. A
    scikit-learn search counts when the cell fitted it; Optuna and hyperopt when some of
    their trials started during the run. A search that cannot be read costs one warning
    and nothing of the others.
    """
    log = SearchLog()
    fitted = set(names.fitted) | {call.model for call in names.fit_calls}
    searches = [(name, value, kind) for name, value in found
                if (kind := search_kind(value)) is not None
                and _ran_here(kind, value, fitted, name, started)]
    # fmin's dict is the best trial's values, already logged when its Trials was bound.
    fmins = [] if any(kind == "hyperopt" for *_, kind in searches) else _fmin_results(
        names, namespace)
    several = len(searches) + len(fmins) > 1
    for name, value, kind in searches:
        one = SearchLog()
        try:
            _READERS[kind](name, value, f"{name}." if several else "", started, one)
        except Exception as exc:  # noqa: BLE001 - one search's oddity never costs the run
            _warn(f"Search {name!r} was not logged as a search: {type(exc).__name__}: {exc}")
            continue
        for key, item in one.params.items():
            log.params.setdefault(key, item)
        for key, number in one.metrics.items():
            log.metrics.setdefault(key, number)
        log.models += one.models
        log.tables += one.tables
        data = _fit_datasets(name, names, namespace)
        log.children += [{**child, "datasets": data} for child in one.children]
    for name, best in fmins:
        prefix = f"{name}." if several else ""
        for key, value in best.items():
            if isinstance(key, str) and _plain(value):
                log.params.setdefault(f"{prefix}best_{key}", value)
    return log


__all__ = ["MAX_CHILDREN", "SearchLog", "read_searches", "search_kind"]
