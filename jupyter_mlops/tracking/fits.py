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
"""

from __future__ import annotations

import ast
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

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
    _started: float = 0.0

    def __post_init__(self) -> None:
        # The objects the rewritten cell calls; the same ones are taken out after the cell.
        self.bindings = {self.HOOK: self.fitted, self.BEGIN: self.begin}

    # -- while the cell runs -----------------------------------------------------------

    def read(self, tree: ast.Module) -> None:
        """Which names the cell's statements outside loops compute from which: a metric
        computed from a model belongs to that model's child."""
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
        from .autolog import fitted_estimator  # the models autolog recognises

        try:
            ended = time.time()
            step = self.loops.loops[loop].step if loop is not None else None
            seen: set[int] = set()
            for name in names:
                model = self.namespace.get(name)
                if model is None or id(model) in seen or not fitted_estimator(model):
                    continue
                seen.add(id(model))
                for earlier in self.fits:  # fitted again: the earlier state is gone
                    if earlier.model is model:
                        earlier.model = None
                        earlier.problem = "fitted again later in the cell"
                fit = Fit(name, None, type(model).__name__, _params(model),
                          self._started or ended, ended, loop, step)
                self.fits.append(fit)
                if loop is not None:
                    self._pickle(fit, model)
                else:
                    fit.model = model
        except Exception as exc:  # noqa: BLE001 - a fit we cannot note never breaks the cell
            self.problems.append(f"{type(exc).__name__}: {exc}".split("\n", 1)[0])

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
                self._pickle(fit, fit.model)
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
            ids.append(log_child_run(
                parent_run_id, name=f"{fit.name}: {fit.kind}", params=fit.params,
                metrics=metrics, artifacts=artifacts, start_time=fit.started,
                end_time=fit.ended, store=self.store))
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


def _params(model: Any) -> dict[str, Any]:
    """The model's own params with plain values (as autolog logs them)."""
    from .autolog import _is_simple

    try:
        items = model.get_params(deep=True).items()
    except Exception:  # noqa: BLE001 - a model whose params cannot be read has none here
        return {}
    return {key: value for key, value in sorted(items)
            if _is_simple(value) and not (isinstance(value, float) and math.isnan(value))}


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
