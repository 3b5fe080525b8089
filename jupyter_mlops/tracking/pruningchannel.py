"""Pruning a trial that runs elsewhere (a worker kernel, a Dask worker).

The sweep owns the Optuna study, so the pruner's verdict is taken where the sweep runs;
the trial's per-step metric has to come to it, and the verdict has to go back. Both go
through files in a folder of the store, which every worker reaches (it writes its runs
there): the worker appends each step's value of the swept metric to ``<trial>.steps`` as
the loop capture or ``log_metric(step=)`` hands it over (the in-kernel watcher's hook,
``pruning.watcher``); the sweep reads the new lines while it waits for trials, reports
them to the Optuna trial through the same reporter as in the kernel, and when the pruner
says so writes ``<trial>.prune``. The worker's next step finds that file and raises the
same ``TrialPruned`` as in the kernel, so the trial's run ends KILLED by ``%%track`` and
the sweep tags it ``sweep.pruned`` like any pruned trial.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from . import pruning

FOLDER = "sweeps"  # in the store's folder: <store>/sweeps/<parent run id>/
METRIC_FILE = "metric"

Watch = Callable[[Mapping[str, Any], "int | None"], None]


def channel_folder(store_path: str | os.PathLike[str], parent_id: str) -> Path:
    return Path(store_path) / FOLDER / parent_id


# -- in the worker ---------------------------------------------------------------------------

def watch_trial(store_path: str | os.PathLike[str] | None, parent_id: str | None = None,
                number: int | None = None) -> None:
    """Before a trial runs in this process: hand its steps to the sweep when the sweep
    prunes (its folder names the metric), else watch nothing. ``None`` clears."""
    pruning.watcher = None
    if store_path is None or parent_id is None or number is None:
        return
    folder = channel_folder(store_path, parent_id)
    try:
        metric = (folder / METRIC_FILE).read_text(encoding="utf-8")
    except OSError:
        return  # this sweep does not prune
    pruning.watcher = _file_watcher(folder, int(number), metric)


def _file_watcher(folder: Path, number: int, metric: str) -> Watch:
    steps_path, verdict = folder / f"{number}.steps", folder / f"{number}.prune"
    state: dict[str, Any] = {"next": 0, "pruned": False}
    try:
        steps_path.write_text("", encoding="utf-8")  # a trial run again starts afresh
    except OSError:
        state["pruned"] = True  # the folder is gone: the sweep ended, nothing to tell

    def watch(values: Mapping[str, Any], step: int | None) -> None:
        if state["pruned"]:
            return  # once pruned, silent: the run's end reads the loop's last points again
        if verdict.exists():
            state["pruned"] = True
            try:
                decided = int(verdict.read_text(encoding="utf-8") or state["next"])
            except (OSError, ValueError):
                decided = state["next"]
            raise pruning.TrialPruned(decided)
        value = pruning.reported_value(values, metric)
        if value is None:
            return
        step = state["next"] if step is None else int(step)
        state["next"] = step + 1
        try:
            with open(steps_path, "a", encoding="utf-8") as out:
                out.write(f"{step} {value!r}\n")
        except OSError:
            state["pruned"] = True

    return watch


# -- in the sweep ----------------------------------------------------------------------------

class StepChannel:
    """The sweep's end: reads the running trials' steps, tells the pruner, writes verdicts."""

    def __init__(self, store_path: str | os.PathLike[str], parent_id: str, metric: str) -> None:
        self.folder = channel_folder(store_path, parent_id)
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / METRIC_FILE).write_text(metric, encoding="utf-8")
        self.metric = metric
        # trial -> [watcher, bytes read, step pruned at]
        self.trials: dict[int, list[Any]] = {}
        self.reported: dict[int, int] = {}  # trial -> its last step told (a rerun goes on)

    def watch(self, number: int, watch: Watch | None) -> None:
        """Trial ``number`` is submitted (again): read its steps from the start."""
        for name in (f"{number}.steps", f"{number}.prune"):
            (self.folder / name).unlink(missing_ok=True)
        if watch is not None:
            self.trials[number] = [watch, 0, None]

    def poll(self) -> None:
        for number in list(self.trials):
            self._read(number)

    def done(self, number: int) -> pruning.TrialPruned | None:
        """The trial ended: its last steps told; the prune that stopped it, if one did."""
        if number not in self.trials:
            return None
        self._read(number)
        pruned = self.trials.pop(number)[2]
        return None if pruned is None else pruning.TrialPruned(pruned)

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
        try:
            self.folder.parent.rmdir()  # the last sweep's: no empty folder left in the store
        except OSError:
            pass

    def _read(self, number: int) -> None:
        entry = self.trials[number]
        watch, offset, pruned = entry
        last = self.reported.get(number, -1)
        try:
            with open(self.folder / f"{number}.steps", "rb") as steps:
                steps.seek(offset)
                data = steps.read()
        except OSError:
            return  # not started yet
        end = data.rfind(b"\n") + 1  # a line being written is read next time
        entry[1] = offset + end
        for line in data[:end].decode("utf-8", "replace").splitlines():
            try:
                text_step, text_value = line.split(" ", 1)
                step, value = int(text_step), float(text_value)
            except ValueError:
                continue
            if step <= last or pruned is not None:
                continue
            last = self.reported[number] = step
            try:
                watch({self.metric: value}, step)
            except pruning.TrialPruned as exc:
                pruned = entry[2] = exc.step
                (self.folder / f"{number}.prune").write_text(str(exc.step), encoding="utf-8")


__all__ = ["StepChannel", "channel_folder", "watch_trial"]
