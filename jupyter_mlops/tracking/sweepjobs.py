"""Worker kernels for ``%%sweep --jobs N``: trials run several at once, each in a real kernel.

A worker is an IPython kernel started through jupyter_client, never a thread or a fork. It
is given the notebook's state the way replay rebuilds it: the executions the trial cell
depends on (the backward slice of the kernel's recorded history, see
``registry.script.backward_slice``), run again in order as plain Python with their cell
ids, not a pickle of the namespace. Each trial is then a ``%%track`` cell of that kernel,
a child of the sweep's parent (``JUPYTER_MLOPS_PARENT_RUN``) in the same store, with the
sweep cell's id: its history in the worker's session is the slice and itself, so the best
trial's model replays like any tracked run's.

A worker that dies is started again (and given the state again) by its own thread; the
sweep engine decides whether its trial runs once more. When the sweep prunes, a silent
request before each trial hands its steps to the sweep's pruner (``pruningchannel``).
"""

from __future__ import annotations

import os
import queue
import shlex
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from ..errors import ValidationError, shorten
from ..store import Store
from . import storage
from .capture import flush_capture
from .cellnames import analyze
from .runs import NOTEBOOK_RUN_ENV, PARENT_RUN_ENV

_FLUSH = "__import__('jupyter_mlops.tracking.capture').tracking.capture.flush_capture(10)"
_WATCH = ("__import__('jupyter_mlops.tracking.pruningchannel').tracking.pruningchannel"
          ".watch_trial({!r}, {!r}, {})")
STOP_WAIT_S = 20.0  # an interrupted trial ends its run; longer, and its kernel is shut down
_POLL_S = 0.2


def state_cells(store: Store, session_id: str | None, code: str) -> list[tuple[str | None, str]]:
    """``(cell id, source)`` of the executions of this kernel session that ``code`` depends
    on, in the order they ran, as plain Python (magics translated or dropped)."""
    from ..entities import CellExecution
    from ..registry.script import backward_slice, replayed_source

    if session_id is None:
        return []
    flush_capture()
    history = storage.cells(store, "session_id = ?", (session_id,))
    names = analyze(code)
    trial = CellExecution(-1, session_id, None, None, code, list(names.defined),
                          list(names.used), time.time(), None, "ok", None, None)
    kept = backward_slice([*history, trial], len(history))
    return [(e.cell_id, replayed_source(e)) for e in kept[:-1]]


@dataclass(frozen=True)
class TrialSource:
    """How a pool of workers writes each trial's ``%%track`` cell: ``body_for(params)``
    gives the cell's body with the trial's values, then ``trial_cell`` wraps it."""

    body_for: Callable[[dict[str, Any]], str]
    experiment: str
    training_metrics: bool = False

    def cell(self, params: dict[str, Any], name: str, tags: dict[str, str]) -> str:
        return trial_cell(self.body_for(params), name, self.experiment, tags,
                          self.training_metrics)


def seeding(cells: list[tuple[str | None, str]]) -> list[tuple[str | None, str]]:
    """What a worker runs before its first trial: the extension, then the state cells."""
    return [(None, "%load_ext jupyter_mlops"), *cells]


def seed_failed(worker: str, source: str, what: str, instead: str) -> WorkerError:
    """The one line for a state cell that failed on a worker (``what`` it raised)."""
    first = source.strip().splitlines()[0] if source.strip() else ""
    return WorkerError(f"{worker} could not rebuild the notebook's state: {shorten(first, 60)} "
                       f"raised {shorten(what, 120)}. Fix that cell, or {instead}.")


def trial_environment(env: MutableMapping[str, str], store_path: str,
                      parent_id: str) -> MutableMapping[str, str]:
    """``env`` made a trial worker's: the sweep's store and parent run, and none of a
    notebook kernel's own names (a worker is no notebook's kernel: its runs are trials)."""
    env["JUPYTER_MLOPS_STORE"] = store_path
    env[PARENT_RUN_ENV] = parent_id
    for own in ("JPY_SESSION_NAME", NOTEBOOK_RUN_ENV):
        env.pop(own, None)
    return env


def trial_cell(body: str, name: str, experiment: str, tags: dict[str, str],
               training_metrics: bool) -> str:
    """The ``%%track`` cell a worker runs for one trial."""
    words = ["%%track", "-q", "-n", shlex.quote(name), "-e", shlex.quote(experiment)]
    if not training_metrics:
        words.append("--no-training-metrics")
    for key, value in tags.items():
        words += ["--tag", shlex.quote(f"{key}={value}")]
    return " ".join(words) + "\n" + body


class WorkerError(ValidationError):
    """A worker kernel could not be started or given the notebook's state."""


class _Worker:
    """One kernel and the thread that feeds it trials from the pool's queue."""

    def __init__(self, pool: WorkerPool, index: int) -> None:
        self.pool = pool
        self.index = index
        self.manager: Any = None
        self.client: Any = None
        self.sockets: str | None = None
        self.busy = False
        self.thread = threading.Thread(target=self._loop, daemon=True,
                                       name=f"jupyter_mlops-sweep-worker-{index}")

    # -- the kernel ----------------------------------------------------------------------

    def start(self) -> None:
        from jupyter_client import KernelManager

        self.sockets = tempfile.mkdtemp(prefix="jupyter-mlops-worker-")  # 0700
        self.manager = KernelManager(kernel_name="python3", transport="ipc",
                                     ip=os.path.join(self.sockets, "kernel"),
                                     connection_file=os.path.join(self.sockets, "kernel.json"))
        self.manager.start_kernel(env=self.pool.env, cwd=self.pool.cwd)
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=120)
        for cell_id, source in seeding(self.pool.cells):
            status, reply = self.execute(source, cell_id)
            if status != "ok":
                what = ("the kernel died" if reply is None else
                        f"{reply.get('ename')}: {reply.get('evalue')}")
                raise seed_failed("A worker kernel", source, what, "sweep with --jobs 1")

    def alive(self) -> bool:
        process = getattr(getattr(self.manager, "provisioner", None), "process", None)
        if process is not None:
            return process.poll() is None
        return bool(self.manager is not None and self.manager.is_alive())

    def execute(self, code: str, cell_id: str | None) -> tuple[str, dict | None]:
        """Run one cell: ``(status, reply)``, status ``died`` (reply None) when the kernel
        died meanwhile."""
        from .runner import execute_request

        msg_id = execute_request(self.client, code, cell_id)
        while True:
            try:
                reply = self.client.get_shell_msg(timeout=_POLL_S)
            except queue.Empty:
                self._drain()
                if not self.alive():
                    return "died", None
                continue
            if reply["parent_header"].get("msg_id") == msg_id:
                self._drain()
                return reply["content"]["status"], reply["content"]

    def _drain(self) -> None:
        """The worker's outputs are not shown: the live view tells each trial."""
        while True:
            try:
                self.client.get_iopub_msg(timeout=0)
            except queue.Empty:
                return

    def interrupt(self) -> None:
        if self.busy and self.manager is not None and self.alive():
            try:
                self.manager.interrupt_kernel()
            except Exception:  # noqa: BLE001 - it is shut down right after anyway
                pass

    def close(self, graceful: bool) -> None:
        """Shut the kernel down; gracefully, its capture writes its last rows first (a
        silent request, which IPython records as no execution), then it is stopped at
        once rather than waited for."""
        manager, self.manager = self.manager, None
        if manager is None:
            return
        try:
            if graceful and self.alive_manager(manager):
                msg_id = self.client.execute(_FLUSH, silent=True, store_history=False)
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline and self.alive_manager(manager):
                    try:
                        reply = self.client.get_shell_msg(timeout=_POLL_S)
                    except queue.Empty:
                        continue
                    if reply["parent_header"].get("msg_id") == msg_id:
                        break
            self.client.stop_channels()
            manager.shutdown_kernel(now=True)
        except Exception:  # noqa: BLE001 - a kernel already gone
            pass
        finally:
            if self.sockets:
                shutil.rmtree(self.sockets, ignore_errors=True)

    @staticmethod
    def alive_manager(manager: Any) -> bool:
        process = getattr(getattr(manager, "provisioner", None), "process", None)
        return process.poll() is None if process is not None else manager.is_alive()

    # -- the thread ----------------------------------------------------------------------

    def _loop(self) -> None:
        try:
            self.start()
        except BaseException as exc:  # noqa: BLE001 - told to the sweep, which fails
            self.pool.results.put(("setup", self.index, exc))
            return
        while not self.pool.stopping:
            try:
                task = self.pool.tasks.get(timeout=_POLL_S)
            except queue.Empty:
                continue
            if task is None:
                return
            number, code = task
            self.busy = True
            try:
                if self.pool.prunes():  # the trial's steps go to the sweep's pruner
                    self.client.execute(_WATCH.format(self.pool.store_path,
                                                      self.pool.parent_id, number),
                                        silent=True, store_history=False,
                                        stop_on_error=False)  # never aborts the trial
                status, reply = self.execute(code, self.pool.cell_id)
            except BaseException as exc:  # noqa: BLE001 - the channel broke: a dead worker
                status, reply = "died", {"evalue": str(exc)}
            self.busy = False
            if status == "died":
                self.pool.results.put(("died", number, None))
                self.close(graceful=False)
                if self.pool.stopping:
                    return
                try:
                    self.start()  # a new kernel, given the state again
                except BaseException as exc:  # noqa: BLE001
                    self.pool.results.put(("setup", self.index, exc))
                    return
                continue
            error = None if status == "ok" else RuntimeError(
                f"{(reply or {}).get('ename')}: {(reply or {}).get('evalue')}")
            self.pool.results.put(("done", number, error))


class WorkerPool:
    """N worker kernels taking trials from one queue (see the module's docstring).

    ``source`` writes each trial's cell; ``cells`` are the state to rebuild. ``ahead``
    trials wait in its queue beyond one per worker: a worker never waits for the sweep.
    """

    ahead = 1

    def __init__(self, size: int, *, store: Store, parent_id: str,
                 cells: list[tuple[str | None, str]], source: TrialSource,
                 cell_id: str | None = None, cwd: str | None = None) -> None:
        self.size = size
        self.cells = cells
        self.cell_id = cell_id
        self.store_path, self.parent_id = str(store.path), parent_id
        self.source = source
        self.cwd = cwd or os.getcwd()
        self.env = trial_environment(dict(os.environ, PYTHONUNBUFFERED="1"), str(store.path),
                                     parent_id)
        self.tasks: queue.Queue = queue.Queue()
        self.results: queue.Queue = queue.Queue()
        self.stopping = False
        self.workers = [_Worker(self, i) for i in range(size)]
        for worker in self.workers:
            worker.thread.start()

    def submit(self, number: int, params: dict[str, Any], name: str,
               tags: dict[str, str]) -> None:
        self.tasks.put((number, self.source.cell(params, name, tags)))

    def prunes(self) -> bool:
        """Whether the sweep prunes: it opened its pruning folder (``pruningchannel``)."""
        from .pruningchannel import METRIC_FILE, channel_folder

        return (channel_folder(self.store_path, self.parent_id) / METRIC_FILE).exists()

    def wait(self, timeout: float | None = None) -> tuple[int, BaseException | None, bool] | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = _POLL_S if deadline is None else min(_POLL_S, deadline - time.monotonic())
            try:
                kind, number, error = self.results.get(timeout=max(0.0, left))
            except queue.Empty:
                if not any(w.thread.is_alive() for w in self.workers):
                    raise WorkerError("Every worker kernel of the sweep stopped; run it "
                                      "again, or with --jobs 1.") from None
                if deadline is not None and time.monotonic() >= deadline:
                    return None
                continue
            if kind == "setup":
                raise error if isinstance(error, WorkerError) else WorkerError(
                    f"A worker kernel could not start: {type(error).__name__}: "
                    f"{shorten(str(error), 160)}. Run the sweep with --jobs 1.")
            return number, error, kind == "died"

    def stop(self) -> None:
        """Interrupt the running trials (their runs end KILLED) and wait, bounded."""
        self.stopping = True
        for worker in self.workers:
            worker.interrupt()
        deadline = time.monotonic() + STOP_WAIT_S
        for worker in self.workers:
            worker.thread.join(max(0.0, deadline - time.monotonic()))

    def close(self) -> None:
        self.stopping = True
        for _ in self.workers:
            self.tasks.put(None)
        for worker in self.workers:
            worker.thread.join(STOP_WAIT_S if not worker.busy else 0.1)
        threads = [threading.Thread(target=w.close, args=(not w.busy,)) for w in self.workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(15)


__all__ = ["TrialSource", "WorkerError", "WorkerPool", "seed_failed", "seeding", "state_cells",
           "trial_cell", "trial_environment"]
