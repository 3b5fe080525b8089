"""How a sweep chooses the next params: its grid in order, or Optuna's samplers.

Optuna is driven by ask and tell, so a trial runs wherever the sweep runs it (a cell in the
kernel, a worker kernel) and only its value comes back. A stopped sweep's finished trials
are told to a new study first (``create_trial``), so TPE learns from them and a grid skips
them.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from typing import Any

from ..errors import ValidationError
from .sweepspace import Space, grid_points


class _GridAsker:
    """The grid's points in order, skipping those a stopped sweep already tried."""

    def __init__(self, space: Space, prior: list) -> None:
        done = {_point_key(t.params) for t in prior}
        self._points = (p for p in grid_points(space) if _point_key(p) not in done)

    def __call__(self, number: int | None = None) -> dict[str, Any] | None:
        return next(self._points, None)

    def watcher(self, number: int, metric: str):
        return None  # a grid runs every point: nothing to prune

    def tell(self, trial) -> None:
        pass


class _OptunaAsker:
    """Optuna's ask-and-tell: its sampler picks, the trial's value is told back."""

    def __init__(self, space: Space, method: str, direction: str, seed: int | None,
                 prior: list, pruner: str = "none") -> None:
        import optuna

        self._optuna = optuna
        self._distributions = {n: d.distribution() for n, d in space.items()}
        shifted = None if seed is None else seed + len(prior)  # not the same points again
        sampler = (optuna.samplers.RandomSampler(seed=shifted) if method == "random"
                   else optuna.samplers.TPESampler(seed=shifted))
        self.prunes = pruner == "median"
        self.study = optuna.create_study(
            direction=direction, sampler=sampler,
            pruner=optuna.pruners.MedianPruner() if self.prunes else optuna.pruners.NopPruner())
        self._pending: dict[int | None, Any] = {}  # several at once with worker kernels
        for trial in prior:
            self._add(trial)

    def _add(self, trial) -> None:
        state = self._optuna.trial.TrialState
        params = trial.params
        if set(params) != set(self._distributions) or not all(
                self._distributions[n]._contains(self._distributions[n].to_internal_repr(v))
                for n, v in params.items()):
            return  # a trial of an earlier space: counted, not learnt from
        finished = trial.status == "FINISHED" and trial.value is not None
        self.study.add_trial(self._optuna.trial.create_trial(
            params=params, distributions=self._distributions,
            value=trial.value if finished else None,
            state=state.COMPLETE if finished else
            state.PRUNED if trial.status == "PRUNED" else state.FAIL))

    def __call__(self, number: int | None = None) -> dict[str, Any]:
        pending = self._pending[number] = self.study.ask(self._distributions)
        return {n: _plain(v) for n, v in pending.params.items()}

    def watcher(self, number: int, metric: str):
        """What reports the running trial's steps to the pruner (None: nothing prunes)."""
        pending = self._pending.get(number)
        if not self.prunes or pending is None:
            return None
        from .pruning import reporter

        return reporter(pending, metric)

    def tell(self, trial) -> None:
        pending = self._pending.pop(trial.number, None)
        if pending is None:
            pending = self._pending.pop(None, None)
        if pending is None:
            return
        state = self._optuna.trial.TrialState
        with _quiet(self._optuna):
            if trial.status == "FINISHED" and trial.value is not None:
                self.study.tell(pending, trial.value)
            elif trial.status == "PRUNED":
                self.study.tell(pending, state=state.PRUNED)
            else:
                self.study.tell(pending, state=state.FAIL)


def asker(space: Space, method: str, direction: str, seed: int | None, prior: list,
          pruner: str = "none"):
    if method == "grid":
        return _GridAsker(space, prior)
    try:
        import optuna
    except ImportError:
        raise ValidationError(f"--method {method} chooses params with Optuna: pip install "
                              "optuna, or use --method grid.") from None
    with _quiet(optuna):
        return _OptunaAsker(space, method, direction, seed, prior, pruner)


@contextlib.contextmanager
def _quiet(optuna):
    """Optuna logs each trial at INFO; the live view says it already."""
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(level)


def _plain(value: Any) -> Any:
    """numpy scalars as Python ones, so the cell's literal reads as the user would write it."""
    item = getattr(value, "item", None)
    return item() if callable(item) and type(value).__module__ == "numpy" else value


def _point_key(params: Mapping[str, Any]) -> str:
    return json.dumps({k: repr(v) for k, v in params.items()}, sort_keys=True, allow_nan=False)


__all__ = ["asker"]
