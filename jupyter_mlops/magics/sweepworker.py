"""The worker's side of sweep trials run as Dask tasks (``tracking.sweepdask``).

A Dask worker process hosts one IPython ``InteractiveShell`` (not a kernel): the
extension loaded, the store and the sweep's parent given through the environment as the
worker kernels get them, and the notebook's state (the replay slice) run once per sweep
state, keyed by its hash. Each task runs one trial's ``%%track`` cell there, one at a time
per process. When the sweep ends the shell is let go, so a shared cluster keeps no
notebook's data.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from ..tracking.sweepjobs import WorkerError, seed_failed, seeding, trial_environment

_trial_lock = threading.Lock()  # one trial at a time in a process's one shell
_running_lock = threading.Lock()
_running: dict[str, int] = {}  # trial key -> the thread running it
_stopped: set[str] = set()  # trials of an interrupted sweep: not to start
_loaded: dict[str, Any] = {}  # "shell": ours, "key": the state it holds


def _shell(spec: dict[str, Any]) -> Any:
    """This process's shell, holding the sweep's state (rebuilt when the state changed)."""
    from IPython.core.interactiveshell import InteractiveShell

    from ..store.current import set_store, store_location

    if InteractiveShell.initialized() and "shell" not in _loaded:
        raise WorkerError("This Dask worker runs inside an IPython session of its own; run "
                          "sweep trials on workers started as separate processes.")
    trial_environment(os.environ, spec["store"], spec["parent"])
    if store_location()[0] != spec["store"]:
        set_store(spec["store"])
    shell = _loaded.setdefault("shell", InteractiveShell.instance())
    if _loaded.get("key") == spec["key"]:
        return shell
    if "key" in _loaded:
        shell.reset(new_session=False)
        del _loaded["key"]
    if os.path.isdir(spec["cwd"]):
        os.chdir(spec["cwd"])
    for cell_id, source in seeding(spec["cells"]):
        result = shell.run_cell(source, store_history=True, silent=False, cell_id=cell_id)
        error = result.error_before_exec or result.error_in_exec
        if error is not None:
            raise seed_failed("A Dask worker", source, f"{type(error).__name__}: {error}",
                              "sweep without --client")
    _loaded["key"] = spec["key"]
    return shell


def run_trial(spec: dict[str, Any], task: str, code: str,
              number: int | None = None) -> str | None:
    """Run one trial's ``%%track`` cell in this worker's shell: what it raised, or None.
    When the sweep prunes, the trial's steps go to it and its verdict may stop the trial
    (``tracking.pruningchannel``)."""
    from IPython.utils.capture import capture_output

    from ..tracking.capture import flush_capture
    from ..tracking.pruningchannel import watch_trial

    try:
        with _trial_lock:
            with _running_lock:
                if task in _stopped:
                    return "KeyboardInterrupt: the sweep was interrupted"
                _running[task] = threading.get_ident()
            try:
                shell = _shell(spec)
                watch_trial(spec["store"], spec["parent"], number)
                with capture_output():  # the live view tells each trial, not the worker log
                    result = shell.run_cell(code, store_history=True, cell_id=spec["cell_id"])
            finally:
                watch_trial(None)
                with _running_lock:
                    _running.pop(task, None)
                flush_capture(10)
    except KeyboardInterrupt:
        return "KeyboardInterrupt: the sweep was interrupted"
    error = result.error_before_exec or result.error_in_exec
    return None if error is None else f"{type(error).__name__}: {error}"


def release() -> None:
    """Let the shell go when the sweep ends: a shared cluster keeps no notebook's data, and
    its workers stop without waiting on the capture's hooks."""
    from IPython.core.interactiveshell import InteractiveShell

    from ..tracking.capture import flush_capture

    with _trial_lock:
        _stopped.clear()
        shell = _loaded.pop("shell", None)
        _loaded.clear()
        if shell is None:
            return
        flush_capture(10)
        from . import unload

        unload(shell)
        shell.reset(new_session=False)
        shell.history_manager.end_session()
        InteractiveShell.clear_instance()


def interrupt(tasks: list[str]) -> int:
    """Raise KeyboardInterrupt in the threads running these trials here (their ``%%track``
    ends the run KILLED), and keep the others from starting; how many were running."""
    import ctypes

    hit = 0
    with _running_lock:
        _stopped.update(tasks)
        for task in tasks:
            ident = _running.get(task)
            if ident is not None:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident),
                                                           ctypes.py_object(KeyboardInterrupt))
                hit += 1
    return hit


__all__ = ["interrupt", "release", "run_trial"]
