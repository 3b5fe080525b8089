"""Sweep trials as Dask tasks: ``%%sweep --client ADDRESS``, ``sweep(..., client=)``.

The same trials the worker kernels of ``sweepjobs`` run, on a Dask cluster instead. Each
worker process hosts one IPython ``InteractiveShell`` (not a kernel), given the notebook's
state once per sweep state (the replay slice, ``state_cells``, keyed by its hash): the
extension loaded, the cells run again in order with their cell ids. A task runs one
trial's ``%%track`` cell in that shell, a child of the sweep's parent in the same store,
and returns what it raised, so the engine's bookkeeping (best trial, table, FAILED trials,
a trial whose worker died run once more, interruption) is the kernels'.

The store is a file: the workers must reach it (same machine or a shared file system),
which is checked on every worker before the first trial. A task whose worker dies is run
again by Dask; the engine ends the run the dead worker left RUNNING KILLED, so a trial
never finishes twice. Dask is imported only here, and only when a client is given.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from ..errors import ValidationError, shorten
from ..store import Store
from .sweepjobs import TrialSource, WorkerError

WORKER_MODULE = "jupyter_mlops.magics.sweepworker"
STOP_WAIT_S = 20.0  # an interrupted trial ends its run; longer, and it is left to the worker
_POLL_S = 0.2

# -- on a Dask worker ---------------------------------------------------------------------


def _store_problem(path: str) -> tuple[int, str | None]:
    """This worker's process id, and why it cannot write the store at ``path`` (or None)."""
    from ..store.sqlite import Store as _Store

    if not os.path.isdir(path):
        return os.getpid(), "no such folder here"
    if not os.access(path, os.R_OK | os.W_OK):
        return os.getpid(), "not writable here"
    try:
        store = _Store(path, read_only=True)
        try:
            store.query("SELECT 1 FROM runs LIMIT 1")
        finally:
            store.close()
    except Exception as exc:  # noqa: BLE001 - told to the client in one line
        return os.getpid(), f"{type(exc).__name__}: {exc}"
    return os.getpid(), None


def _worker(name: str, *args: Any) -> Any:
    """Call ``name`` of the worker's side (``magics.sweepworker``, where the shell lives),
    named here as the worker kernels are told ``%load_ext jupyter_mlops``: the core hands
    the cell to a shell in another process, it does not import the shell layer."""
    import importlib

    return getattr(importlib.import_module(WORKER_MODULE), name)(*args)


def run_trial(spec: dict[str, Any], task: str, code: str, number: int | None = None
              ) -> str | None:
    """The task: one trial's ``%%track`` cell in the worker's shell; what it raised."""
    return _worker("run_trial", spec, task, code, number)


# -- in the notebook ----------------------------------------------------------------------

def check_workers(client: Any, store: Store) -> int:
    """How many workers the cluster has, after checking each can write the store."""
    path = str(store.path)
    where = shorten(str(getattr(getattr(client, "scheduler", None), "address", client)), 60)
    try:
        problems = client.run(_store_problem, path)
    except Exception as exc:  # noqa: BLE001 - a cluster that cannot run code: one line
        raise ValidationError(f"The Dask cluster at {where} could not run a check "
                              f"({type(exc).__name__}: {shorten(str(exc), 100)}); check "
                              "that its workers are up.") from None
    if not problems:
        raise ValidationError(f"The Dask cluster at {where} has no workers; start some, or "
                              "sweep without --client.")
    if any(pid == os.getpid() for pid, _ in problems.values()):
        raise ValidationError(f"The Dask cluster at {where} runs its workers in this process "
                              "(processes=False); trials need workers of their own: start "
                              "it with processes=True.")
    bad = {w: p for w, (_, p) in problems.items() if p is not None}
    if bad:
        worker, problem = next(iter(bad.items()))
        raise ValidationError(
            f"{len(bad)} of {len(problems)} Dask workers cannot open the store {path} "
            f"({worker}: {shorten(problem, 80)}); run the workers on this machine or on a "
            "file system that shares that folder, or sweep without --client.")
    return len(problems)


class DaskPool:
    """Trials as tasks of a Dask cluster (see the module's docstring): a ``TrialPool``."""

    def __init__(self, client: Any, size: int, *, store: Store, parent_id: str,
                 cells: list[tuple[str | None, str]], source: TrialSource,
                 cell_id: str | None = None, cwd: str | None = None,
                 owned: bool = False) -> None:
        self.client = client
        self.size = size
        self.owned = owned
        self.parent_id = parent_id
        self.source = source
        key = hashlib.sha256(json.dumps([str(store.path), cells], allow_nan=False).encode())
        self.spec = {"store": str(store.path), "parent": parent_id, "cells": cells,
                     "cell_id": cell_id, "cwd": cwd or os.getcwd(),
                     "key": key.hexdigest()[:32]}
        self.futures: dict[Any, tuple[int, str]] = {}
        self.serial = 0

    def submit(self, number: int, params: dict[str, Any], name: str,
               tags: dict[str, str]) -> None:
        code = self.source.cell(params, name, tags)
        self.serial += 1
        task = f"jupyter-mlops-trial-{self.parent_id[:12]}-{number}-{self.serial}"
        future = self.client.submit(run_trial, self.spec, task, code, number, key=task,
                                    pure=False)
        self.futures[future] = (number, task)

    def wait(self, timeout: float | None = None) -> tuple[int, BaseException | None, bool] | None:
        import time

        from distributed import KilledWorker, wait

        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if not self.futures:
                raise WorkerError("No trial of the sweep is running on the Dask cluster.")
            done = [f for f in self.futures if f.done()]
            if not done:
                if deadline is not None and time.monotonic() >= deadline:
                    return None
                left = _POLL_S if deadline is None else min(_POLL_S,
                                                            deadline - time.monotonic())
                try:
                    wait(list(self.futures), timeout=max(0.001, left),
                         return_when="FIRST_COMPLETED")
                except TimeoutError:
                    pass
                continue
            future = done[0]
            number, _ = self.futures.pop(future)
            if future.status == "finished":
                error = future.result()
                return number, None if error is None else RuntimeError(error), False
            exc = future.exception()
            if isinstance(exc, KilledWorker):
                return number, None, True
            if isinstance(exc, WorkerError):
                raise exc
            raise WorkerError(f"The Dask cluster lost trial {number} ({type(exc).__name__}: "
                              f"{shorten(str(exc), 120)}); check that its scheduler and "
                              "workers are up, or sweep without --client.")

    def stop(self) -> None:
        """Interrupt the running trials (their runs end KILLED), stop those not started
        from starting, and wait, bounded."""
        from distributed import wait

        tasks = [task for _, task in self.futures.values()]
        try:
            self.client.run(_worker, "interrupt", tasks)
        except Exception:  # noqa: BLE001 - a cluster gone: nothing left running there
            pass
        try:
            wait(list(self.futures), timeout=STOP_WAIT_S)
        except Exception:  # noqa: BLE001 - bounded: the engine ends what is left KILLED
            pass

    def close(self) -> None:
        for future in self.futures:
            future.cancel()
        self.futures.clear()
        try:
            self.client.run(_worker, "release")
        except Exception:  # noqa: BLE001 - a worker gone holds no shell
            pass
        if self.owned:
            self.client.close()


def dask_pool(client: Any, jobs: int, *, store: Store, cells: list[tuple[str | None, str]],
              source: TrialSource, cell_id: str | None = None) -> Any:
    """``start(parent_id)`` giving a ``DaskPool`` on ``client`` (a Client or a scheduler
    address), after checking its workers reach the store: trials at once, one per worker
    (``jobs`` > 1 bounds them)."""
    from ..cluster import get_client

    address = client if isinstance(client, str) else None
    checked = get_client(client)
    try:
        workers = check_workers(checked, store)
    finally:
        if address is not None:
            checked.close()  # connected again when the sweep starts: nothing left open
    size = min(workers, jobs) if jobs > 1 else workers

    def start(parent_id: str) -> DaskPool:
        return DaskPool(get_client(address) if address else checked, size, store=store,
                        parent_id=parent_id, cells=cells, source=source, cell_id=cell_id,
                        owned=address is not None)

    return start


__all__ = ["DaskPool", "check_workers", "dask_pool", "run_trial"]
