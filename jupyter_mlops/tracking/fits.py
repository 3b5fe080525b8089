"""Each fit of a tracked cell, kept: several fits become child runs of the cell's run.

A loop that fits four regressors leaves one ``model`` in the namespace; a cell that fails
after three fits leaves its run without any. So each statement that fits (``model.fit``,
``xgb.train``, ``m = Pipeline(...).fit(...)``, see ``rewrite``) reports the models it
fitted as it ends: their params, their class and their time, and for a fit inside a loop
the model itself, pickled at once, because the next iteration may fit the same object
again (a fit outside loops is pickled when the run ends, or when the same object is
fitted again). When the run ends, a cell with two fits or more, or a failed cell with any,
gets one finished child run per fit (``log_child_run``): its params under their own names,
its metrics (the numbers the loop bound in that iteration, or for a fit outside loops the
numbers the cell computed from that model), and its model as ``model/<name>.pkl``.

A fit is any model a framework family recognises (``frameworks``): an XGBoost or LightGBM
Booster from ``train``, a CatBoost or Keras model from ``fit``, as well as scikit-learn's.
Each child also gets what its fit alone tells: the model's own histories and numbers
(``evals_result``, Keras' ``History``, ``best_iteration``), the data it was fitted on
(``fit(X, y)``: ``X`` as ``train``, ``y`` as ``target``; ``train(params, dtrain)``), and for
a scikit-learn model MLflow's ``training_*`` metrics on that data (up to
``training_metrics.MAX_ROWS`` rows). What a fit in a loop tells is read as it ends, since the
next iteration may change the model or rebind its data.
"""

from __future__ import annotations

import ast
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .autolog import MODEL_MEDIA_TYPE
from ..errors import ModelSerializationError
from ..store.serialize import dump
from ..validation import MAX_NAME_LENGTH


@dataclass
class Fit:
    name: str
    model: Any  # until it is pickled (None after)
    kind: str
    params: dict[str, Any]
    started: float
    ended: float
    loop: int | None
    step: int | None
    model_file: tuple[str, int] | None = None  # (sha256, size) once pickled
    problem: str | None = None  # why its model was not kept
    family: Any = None
    history: list[tuple[str, float, int]] = field(default_factory=list)
    datasets: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    data: tuple[Any, Any, Any] | None = None  # X, y, sample_weight, until training metrics
    trained: dict[str, float] = field(default_factory=dict)  # MLflow's training_* metrics


class FitData(NamedTuple):
    """The names a fit statement trains on, and the names it reads (an ``evals_result``
    dict, a ``record_evaluation`` callback's)."""

    x: str | None
    y: str | None
    sample_weight: str | None
    read: tuple[str, ...]


@dataclass
class FitRecorder:
    """The fits of one tracked cell, as they end."""

    HOOK = "<jupyter_mlops fit>"
    BEGIN = "<jupyter_mlops fit begin>"

    store: Any
    loops: Any  # the cell's LoopRecorder: the iteration a fit happened in
    namespace: Mapping[str, Any]
    fits: list[Fit] = field(default_factory=list)
    depends: dict[str, set[str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # told once, when the run ends
    data: dict[int, FitData] = field(default_factory=dict)  # by the fit statement's line
    _started: float = 0.0
    _fingerprints: dict[int, tuple[Any, dict[str, Any] | None]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # The objects the rewritten cell calls; the same ones are taken out after the cell.
        self.bindings = {self.HOOK: self.fitted, self.BEGIN: self.begin}

    # -- while the cell runs -----------------------------------------------------------

    def read(self, tree: ast.Module) -> None:
        """Which names the cell's statements outside loops compute from which: a metric
        computed from a model belongs to that model's child; and what each fit statement
        trains on."""
        self.data.update(_fit_data(tree))
        for statement in _outside_loops(tree.body):
            targets: list[str] = []
            if isinstance(statement, ast.Assign):
                targets = [n.id for t in statement.targets for n in ast.walk(t)
                           if isinstance(n, ast.Name)]
            elif isinstance(statement, (ast.AugAssign, ast.AnnAssign)) and isinstance(
                    statement.target, ast.Name) and statement.value is not None:
                targets = [statement.target.id]
            if not targets:
                continue
            value = statement.value
            sources = {n.id for n in ast.walk(value) if isinstance(n, ast.Name)}
            for name in list(sources):
                sources |= self.depends.get(name, set())
            for target in targets:
                self.depends[target] = set(sources)

    def begin(self) -> None:
        self._started = time.time()

    def fitted(self, names: tuple[str, ...], line: int, loop: int | None) -> None:
        """A statement that fits has ended: note each model among ``names``."""
        from .frameworks import family_of  # the models autolog recognises

        try:
            ended = time.time()
            step = self.loops.loops[loop].step if loop is not None else None
            seen: set[int] = set()
            for name in names:
                model = self.namespace.get(name)
                family = family_of(model) if model is not None else None
                if family is None or id(model) in seen:
                    continue
                seen.add(id(model))
                for earlier in self.fits:  # fitted again: the earlier state is gone
                    if earlier.model is model:
                        earlier.model = None
                        earlier.data = None
                        earlier.problem = "fitted again later in the cell"
                fit = Fit(name, None, type(model).__name__, _params(model, family),
                          self._started or ended, ended, loop, step, family=family)
                self.fits.append(fit)
                try:
                    self._read_fit(fit, model, self.data.get(line))
                except Exception as exc:  # noqa: BLE001 - the fit is kept without them
                    self.problems.append(f"{type(exc).__name__}: {exc}".split("\n", 1)[0])
                if loop is not None:
                    self._train_metrics(fit, model)
                    self._pickle(fit, family.saved(model))
                else:
                    fit.model = model
        except Exception as exc:  # noqa: BLE001 - a fit we cannot note never breaks the cell
            self.problems.append(f"{type(exc).__name__}: {exc}".split("\n", 1)[0])

    def _read_fit(self, fit: Fit, model: Any, data: FitData | None) -> None:
        """The model's own histories and the data it was fitted on, as the fit ends."""
        from .frameworks.record import evaluation_histories, training_history

        evals = None
        if data is not None and fit.family.history_in_caller(model):
            evals = evaluation_histories(list(data.read), dict(self.namespace))
        fit.history = training_history(fit.name, model, fit.family, evals)
        if data is None:
            return
        values = [self.namespace.get(n) if n else None
                  for n in (data.x, data.y, data.sample_weight)]
        for name, value, role in ((data.x, values[0], "train"), (data.y, values[1], "target")):
            info = self._fingerprint(value) if name else None
            if info is not None:
                fit.datasets.append((name, role, info))
        if values[0] is not None and values[1] is not None:
            fit.data = (values[0], values[1], values[2])

    def _fingerprint(self, value: Any) -> dict[str, Any] | None:
        """Once per object the cell fits on (the cache holds the object, so ids stay its)."""
        from .datasets import data_kind, fingerprint

        if value is None or data_kind(value) is None:
            return None
        cached = self._fingerprints.get(id(value))
        if cached is None or cached[0] is not value:
            cached = self._fingerprints[id(value)] = (value, fingerprint(value))
        return cached[1]

    def _train_metrics(self, fit: Fit, model: Any) -> None:
        """MLflow's ``training_*`` metrics of a scikit-learn model on its fit data."""
        from .training_metrics import MAX_ROWS, _rows, training_metrics

        data, fit.data = fit.data, None
        if data is None or not type(model).__module__.startswith("sklearn."):
            return
        rows = _rows(data[0])
        if rows is not None and rows > MAX_ROWS:
            return
        fit.trained = training_metrics(model, *data)

    def _pickle(self, fit: Fit, model: Any) -> None:
        try:
            fit.model_file = self.store.artifacts.put_bytes(dump(model))
        except ModelSerializationError as exc:
            fit.problem = str(exc)
        fit.model = None

    # -- the run's end -----------------------------------------------------------------

    def loop_only(self) -> set[str]:
        """Names the cell fitted only inside loops: throw-aways, not the run's model."""
        inside = {fit.name for fit in self.fits if fit.loop is not None}
        return inside - {fit.name for fit in self.fits if fit.loop is None}

    def log_children(self, parent_run_id: str, *, failed: bool,
                     skip: set[str] | frozenset[str] = frozenset()) -> list[str]:
        """A finished child run per fit, when there are two or more (any, for a failed
        cell); returns their ids. ``skip`` are names that are no metrics (params)."""
        from .children import ChildArtifact, log_child_run

        if len(self.fits) < (1 if failed else 2):
            return []
        last_fit = {fit.name: fit for fit in self.fits if fit.loop is None}
        ids = []
        for fit in self.fits:
            if fit.model is not None:
                self._train_metrics(fit, fit.model)
                self._pickle(fit, fit.family.saved(fit.model))
            artifacts = []
            if fit.model_file is not None:
                digest, size = fit.model_file
                artifacts.append(ChildArtifact(f"model/{fit.name}.pkl", "model", digest, size,
                                               MODEL_MEDIA_TYPE, pickled=True))
            if fit.loop is not None:
                metrics = self.loops.loops[fit.loop].values_at(fit.step)
            elif last_fit.get(fit.name) is fit:
                metrics = self._computed_from(fit.name)
            else:
                metrics = {}
            metrics = {k: v for k, v in metrics.items() if k not in skip and k != fit.name
                       and len(k) <= MAX_NAME_LENGTH}
            own: dict[str, Any] = {}
            for key, value, step in fit.history:
                own.setdefault(key, {})[step] = value
            for key, value in fit.trained.items():
                own.setdefault(key, value)
            metrics = {**own, **metrics}  # the cell's own numbers win
            ids.append(log_child_run(
                parent_run_id, name=f"{fit.name}: {fit.kind}", params=fit.params,
                metrics=metrics, artifacts=artifacts, datasets=fit.datasets,
                start_time=fit.started, end_time=fit.ended, store=self.store))
        return ids

    def _computed_from(self, model_name: str) -> dict[str, float]:
        from .loops import as_number

        found = {}
        for name, sources in self.depends.items():
            if model_name not in sources or name.startswith("_"):
                continue
            number = as_number(self.namespace.get(name))
            if isinstance(number, float):
                found[name] = number
        return found


def _params(model: Any, family: Any) -> dict[str, Any]:
    """The model's own params with plain values (as autolog logs them): ``get_params``
    when it has it, else its family's (a Booster's training config, Keras' optimizer)."""
    from .autolog import _is_simple
    from .frameworks.sklearn import estimator_params

    try:
        items = (estimator_params(model) if hasattr(model, "get_params")
                 else family.params(model)).items()
    except Exception:  # noqa: BLE001 - a model whose params cannot be read has none here
        return {}
    return {key: value for key, value in sorted(items)
            if _is_simple(value) and not (isinstance(value, float) and math.isnan(value))}


def _fit_data(tree: ast.Module) -> dict[int, FitData]:
    """For each simple statement that fits, by its line: ``fit(X, y, sample_weight)``'s
    names, or ``train(params, dtrain)``'s data (``dtrain=``, ``train_set=``)."""
    from .cellnames import _argument
    from .rewrite import FIT_CALLS

    found: dict[int, FitData] = {}
    for statement in ast.walk(tree):
        if not isinstance(statement, ast.stmt) or hasattr(statement, "body") \
                or statement.lineno in found:
            continue
        for node in ast.walk(statement):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in FIT_CALLS):
                continue
            read = tuple(dict.fromkeys(n.id for n in ast.walk(statement)
                                       if isinstance(n, ast.Name)))
            if node.func.attr == "train":
                x = _argument(node, 1, "dtrain") or _argument(node, 1, "train_set")
                found[statement.lineno] = FitData(x, None, None, read)
            else:
                found[statement.lineno] = FitData(_argument(node, 0, "X"),
                                                  _argument(node, 1, "y"),
                                                  _argument(node, 2, "sample_weight"), read)
            break
    return found


def _outside_loops(body: list[ast.stmt]):
    """Statements run once by the module: not in loops, functions or classes."""
    from .rewrite import LOOPS, SCOPES

    for statement in body:
        if isinstance(statement, LOOPS + SCOPES):
            continue
        yield statement
        for attr in ("body", "orelse", "finalbody"):
            yield from _outside_loops(getattr(statement, attr, None) or [])
        for part in [*(getattr(statement, "handlers", None) or []),
                     *(getattr(statement, "cases", None) or [])]:
            yield from _outside_loops(part.body)
