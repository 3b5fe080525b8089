"""Pruning a sweep's trial: its per-step metric goes to Optuna's pruner as it is made.

While a trial runs in this kernel, the sweep sets a watcher here; the loop capture (each
iteration of a loop that rebinds the metric) and ``log_metric(..., step=)`` hand it the
values they see. The watcher reports them to the Optuna trial (``trial.report``) and,
when the pruner says so (``trial.should_prune``), raises ``TrialPruned`` inside the
cell: the trial's run ends KILLED, tagged ``sweep.pruned`` with the step, and the sweep
goes on. A trial run in a worker reports through ``pruningchannel`` to the same reporter.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

PRUNERS = ("median", "none")
PRUNED_TAG = "sweep.pruned"

# (values by name, step) -> None; set only while a prunable trial runs.
watcher: Callable[[Mapping[str, Any], int | None], None] | None = None


class TrialPruned(BaseException):
    """Stops a trial the pruner judged unpromising. A BaseException, so the cell's own
    ``except Exception`` does not swallow it; the sweep catches it."""

    def __init__(self, step: int) -> None:
        super().__init__(f"pruned at step {step}")
        self.step = step


@contextlib.contextmanager
def watching(watch: Callable[[Mapping[str, Any], int | None], None] | None) -> Iterator[None]:
    """Hand the values a trial makes to ``watch`` while the block runs."""
    global watcher
    previous, watcher = watcher, watch
    try:
        yield
    finally:
        watcher = previous


def reported_value(values: Mapping[str, Any], metric: str) -> float | None:
    """``metric``'s value among those a step made, as a float; None when it is not there,
    not a number, or NaN."""
    raw = values.get(metric)
    if raw is None or isinstance(raw, (bool, str, bytes)):
        return None
    try:
        value = float(raw)  # a number, or a 0-d array of one
    except Exception:  # noqa: BLE001 - a value we cannot read is not reported
        return None
    return None if value != value else value


def reporter(trial: Any, metric: str) -> Callable[[Mapping[str, Any], int | None], None]:
    """A watcher reporting ``metric`` to the Optuna ``trial`` and pruning when told."""
    steps: dict[str, Any] = {"next": 0, "pruned": False}

    def watch(values: Mapping[str, Any], step: int | None) -> None:
        # Once pruned, silent: the run's end reads the loop's last points again.
        if steps["pruned"]:
            return
        value = reported_value(values, metric)
        if value is None:
            return
        step = steps["next"] if step is None else int(step)
        steps["next"] = step + 1
        trial.report(value, step)
        if trial.should_prune():
            steps["pruned"] = True
            raise TrialPruned(step)

    return watch


__all__ = ["PRUNED_TAG", "PRUNERS", "TrialPruned", "reported_value", "reporter", "watching"]
