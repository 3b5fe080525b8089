"""The record of every cell execution: which code ran, in which order, and what it touched.

``CellCapture`` is driven by the kernel's pre/post run-cell events (see
``jupyter_mlops.magics.hooks``) but knows nothing of IPython: it takes the raw cell, its
transformed code and the outcome, and writes one ``cells`` row per execution.

The rows are written by a thread of their own, on a connection of their own, in the order
the events happened, normally within a millisecond of the cell. A store locked by another
process never holds a cell up: the rows wait in memory (up to 10,000 events) and are
written, in order, once the lock is released. Readers in the kernel (history, registry)
wait for what is queued first.
"""

from __future__ import annotations

import atexit
import os
import platform
import queue
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import storage
from .cellnames import CellNames, analyze
from .environment import capture_environment, git_state, project_folder, write_environment
from .resources import ResourceSampler
from .effects import changes, failed_names, snapshot, statements_run
from .notebook import SavedNotebook
from .writes import recorder
from ..store import Store

NOTEBOOK_ENV_VARS = ("JPY_SESSION_NAME", "JUPYTER_MLOPS_NOTEBOOK")


@dataclass
class CellRecord:
    store: Store
    row_id: int | None
    names: CellNames
    started: float
    clock: float
    run_id: str | None = None
    queued: bool = False  # its start row is on its way: its end must follow
    resources: ResourceSampler | None = None  # sampling while the cell runs
    before: dict[str, Any] = field(default_factory=dict)  # see effects.snapshot
    code: str = ""  # as IPython runs it, to tell how far a failed execution got


def start_sampling() -> ResourceSampler | None:
    """A sampler running from now on; None when it cannot start (the cell runs anyway)."""
    try:
        return ResourceSampler().start()
    except Exception:  # noqa: BLE001 - no thread to spare: the cell runs unmeasured
        return None


_STOP = object()  # queued by ``CaptureWriter.close``: the thread's last item


class CaptureWriter:
    """Applies queued writes in order on a daemon thread with its own store connections."""

    MAX_PENDING = 10_000

    def __init__(self) -> None:
        self._queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._stores: dict[str, Store] = {}
        self.dropped = 0
        self.failures: list[str] = []

    def submit(self, write: Callable[[Callable[[Store], Store]], None], *,
               past_cap: bool = False) -> bool:
        """Queue ``write(own_store)``; False (and counted) when the queue is full, unless
        ``past_cap``: a session row, or the end of a cell whose start is queued, which the
        rows already queued need (a few over the cap at most)."""
        if not past_cap and self._queue.qsize() >= self.MAX_PENDING:
            self.dropped += 1
            return False
        if self._thread is None or not self._thread.is_alive():
            if self._thread is None:
                # A kernel shut down (or restarted) right after a cell still writes its row.
                atexit.register(self.flush, 5.0)
            self._thread = threading.Thread(target=self._loop, name="jupyter_mlops-capture",
                                            daemon=True)
            self._thread.start()
        self._queue.put(write)
        return True

    def own(self, store: Store) -> Store:
        """This thread's connection to ``store`` (opened once per store file)."""
        key = str(store.path)
        mine = self._stores.get(key)
        if mine is None or mine.file_identity != store.file_identity:
            mine = self._stores[key] = Store(store.path, read_only=store.read_only,
                                             busy_timeout_s=store.busy_timeout_s)
        return mine

    def _loop(self) -> None:
        while True:
            write = self._queue.get()
            try:
                if write is _STOP:
                    for store in self._stores.values():
                        store.close()
                    self._stores.clear()
                    return
                if isinstance(write, threading.Event):
                    write.set()
                else:
                    write(self.own)
            except Exception as exc:  # noqa: BLE001 - reported by the hooks, once
                self.failures.append(f"{type(exc).__name__}: {exc}".split("\n", 1)[0])
            finally:
                self._queue.task_done()

    def flush(self, timeout: float | None = 5.0) -> bool:
        """Wait until everything queued so far is written; False on timeout."""
        if self._thread is None or not self._thread.is_alive():
            return self._queue.qsize() == 0
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout)

    def close(self, timeout: float | None = 5.0) -> bool:
        """Write what is queued, then end the thread and close its connections, so that a
        kernel loading and unloading the extension does not keep a thread and open files for
        each time. False (and the thread left to finish on its own) on timeout."""
        if not self.flush(timeout):
            return False
        thread, self._thread = self._thread, None
        if thread is not None:
            atexit.unregister(self.flush)
            self._queue.put(_STOP)
            thread.join(timeout)
        return True


def notebook_path() -> str | None:
    """The notebook this kernel runs, when the server (or our runner) says so."""
    for var in NOTEBOOK_ENV_VARS:
        if os.environ.get(var):
            return os.environ[var]
    return None


class CellCapture:
    """One per kernel: a session id and the store rows of its executions."""

    def __init__(self) -> None:
        self.session_id = uuid.uuid4().hex
        self.writer = CaptureWriter()
        self._sessions_in: set[str] = set()
        self._sessions_now: set[str] = set()
        self._environment: tuple[dict | None, dict | None] | None = None
        self._sampling: ResourceSampler | None = None  # the latest cell's
        # name -> (id of the object it holds, the execution that last bound or changed it)
        self._bindings: dict[str, tuple[int, CellRecord]] = {}
        self._notebook = SavedNotebook(notebook_path(), search=True)
        self._notebook_found: str | None = None  # found by searching, not yet in the store

    def cell_id_for(self, raw_cell: str) -> str | None:
        """The id of the saved notebook's cell with this source, for a client that sent
        none (papermill, nbconvert, nbclient)."""
        searching = self._notebook.path is None
        cell_id = self._notebook.cell_id_for(raw_cell)
        if searching and self._notebook.path is not None:
            self._notebook_found = str(self._notebook.path)
        return cell_id

    def notebook(self) -> str | None:
        """The notebook this kernel runs: named by the server or runner, else found."""
        found = self._notebook.path
        return notebook_path() or (str(found) if found is not None else None)

    def ensure_session(self, store: Store, *, now: bool = False) -> None:
        """The session's row in ``store``; ``now`` writes it at once (a run refers to it)."""
        key = f"{store.path}@{store.file_identity}"  # a store made again needs its row again
        args = (self.session_id, self.notebook(), platform.python_version())
        if now and key not in self._sessions_now:
            storage.start_session(store, *args)
            self._sessions_now.add(key)
            if key not in self._sessions_in:
                self._sessions_in.add(key)
                self._record_environment(store)
        elif key not in self._sessions_in:
            # Never dropped: every later cell row of this store refers to it.
            self.writer.submit(lambda own: storage.start_session(own(store), *args), past_cap=True)
            self._sessions_in.add(key)
            self._record_environment(store)

    def _record_environment(self, store: Store) -> None:
        """The session's environment and git state, found and written on the capture
        thread: listing distributions and asking git take tens of milliseconds."""

        def write(own) -> None:
            if self._environment is None:
                try:
                    environment = capture_environment()
                except Exception:  # noqa: BLE001 - unreadable metadata: no record
                    environment = None
                self._environment = (environment, git_state(project_folder(self.notebook())))
            with own(store).write() as conn:
                write_environment(conn, self.session_id, *self._environment)

        self.writer.submit(write, past_cap=True)

    def begin(
        self,
        store: Store,
        raw_cell: str,
        code: str,
        execution_count: int | None,
        cell_id: str | None,
        run_id: str | None = None,
        names: CellNames | None = None,
        namespace: Mapping[str, Any] | None = None,
    ) -> CellRecord:
        """The start of an execution; ``namespace`` (the user's, before the cell runs) lets
        its end tell a rebinding to the same value from a redefinition."""
        names = names if names is not None else analyze(code)
        started = time.time()
        self.ensure_session(store)
        if self._notebook_found is not None:
            found, session, self._notebook_found = self._notebook_found, self.session_id, None
            self.writer.submit(lambda own: storage.set_session_notebook(own(store), session,
                                                                        found), past_cap=True)
        record = CellRecord(store, None, names, started, time.perf_counter(), run_id,
                            before=snapshot(names, namespace) if namespace is not None else {},
                            code=code)
        recorder().start(exclude=str(store.path))

        def write(own) -> None:
            record.row_id = storage.start_cell(
                own(store), self.session_id, execution_count, cell_id, raw_cell, names.defined,
                names.used, started, run_id,
            )

        # Before the row is queued: work done once the capture thread is woken makes the
        # cell wait for the interpreter lock it then asks for.
        if self._sampling is not None:
            self._sampling.stop()  # a cell whose end never came (IPython skipped its hook)
        record.resources = self._sampling = start_sampling()
        record.queued = self.writer.submit(write)
        return record

    def end(
        self,
        record: CellRecord,
        execution_count: int | None,
        error: BaseException | None,
        namespace: Mapping[str, Any] | None = None,
    ) -> None:
        """The end of an execution; with the user's ``namespace`` (after the cell) it also
        records which names it really redefined and which objects it may have modified,
        and for a failed one, how many statements finished and what those did."""
        if error is None:
            status, message = "ok", None
        else:
            status = "interrupted" if isinstance(error, KeyboardInterrupt) else "error"
            message = f"{type(error).__name__}: {error}"[:2000]
        duration = time.perf_counter() - record.clock
        usage = record.resources.stop().as_row() if record.resources is not None else None
        files = recorder().stop()
        defined = used = unchanged = modified = ran = None
        if namespace is not None:
            names = record.names
            if error is not None:
                ran = statements_run(record.code, error, namespace)
                names = failed_names(record.code, ran)
                used = names.used
            defined, unchanged, modified = changes(names, record.before, namespace)
            self._note_bindings(record, defined, modified, namespace)
        record.before, record.code = {}, ""  # nothing of the cell is kept alive past it

        def write(own) -> None:
            if record.row_id is None:
                return  # its start was dropped or failed; nothing to finish
            storage.finish_cell(
                own(record.store), record.row_id, execution_count=execution_count,
                duration_s=duration, status=status, error=message, run_id=record.run_id,
                defined=defined, used=used, unchanged=unchanged, modified=modified,
                statements_run=ran,
                files=files, usage=usage or (None, None, None),
            )

        # Dropping the end of a queued start would leave a finished cell 'running'.
        self.writer.submit(write, past_cap=record.queued)

    def add_inner(self, store: Store, source: str, execution_count: int | None,
                  cell_id: str | None, run_id: str, names: CellNames, started: float,
                  error: BaseException | None) -> None:
        """An execution inside the running cell (a sweep's trial), written now: a row of
        its own with the cell's id and count and the source it really ran, so its run has
        a history to replay. Written in the caller's transaction, not by the capture
        thread, whose wake-ups would cost each trial more than the write."""
        status = "ok" if error is None else (
            "interrupted" if isinstance(error, KeyboardInterrupt) else "error")
        message = None if error is None else f"{type(error).__name__}: {error}"[:2000]
        row = storage.start_cell(store, self.session_id, execution_count, cell_id, source,
                                 names.defined, names.used, started, run_id)
        storage.finish_cell(store, row, execution_count=None,
                            duration_s=time.time() - started, status=status, error=message,
                            run_id=run_id)

    def _note_bindings(self, record: CellRecord, defined: list[str], modified: list[str],
                       namespace: Mapping[str, Any]) -> None:
        for name in defined:
            if name in namespace:
                self._bindings[name] = (id(namespace[name]), record)
            else:
                self._bindings.pop(name, None)
        for name in modified:
            known = self._bindings.get(name)
            if known is not None and name in namespace and id(namespace[name]) == known[0]:
                self._bindings[name] = (known[0], record)

    def execution_of(self, name: str, value: Any, store: Store) -> CellRecord | None:
        """The execution that last bound ``value`` to ``name`` or changed it there, when
        the object ``name`` held at that execution's end is ``value`` itself."""
        known = self._bindings.get(name)
        if known is None or known[0] != id(value) or known[1].row_id is None:
            return None
        return known[1] if str(known[1].store.path) == str(store.path) else None


# -- the kernel's capture: filled by %load_ext, cleared by %unload_ext -------------------
# The core reads the live kernel's session and namespace through this slot, so it never
# imports the notebook layer or asks IPython for its shell.

_installed: CellCapture | None = None
_namespace: dict[str, Any] | None = None


def install(capture: CellCapture, namespace: dict[str, Any]) -> None:
    """Make ``capture`` this process's kernel capture, with the user's ``namespace``."""
    global _installed, _namespace
    _installed, _namespace = capture, namespace


def uninstall(capture: CellCapture) -> None:
    """Forget ``capture`` if it is the installed one."""
    global _installed, _namespace
    if _installed is capture:
        _installed, _namespace = None, None


def current_session_id() -> str | None:
    """This kernel's session id once the extension is loaded, else None."""
    return _installed.session_id if _installed is not None else None


def flush_capture(timeout: float = 5.0) -> None:
    """Wait until this kernel's captured executions are in the store (no-op when not loaded)."""
    if _installed is not None:
        _installed.writer.flush(timeout)


def execution_of(name: str, value: Any, store: Store) -> tuple[int, str | None] | None:
    """``(execution id, run id)`` of the execution of this kernel that last bound the object
    ``value`` to ``name`` (or changed it in place there), None when unknown.

    By the object's identity at each execution's end, failed executions included: a cell
    that fits a model and fails later in its body made that model.
    """
    if _installed is None:
        return None
    flush_capture()
    record = _installed.execution_of(name, value, store)
    return None if record is None else (record.row_id, record.run_id)


def user_namespace() -> dict[str, Any]:
    """The notebook's namespace while the extension is loaded, else an empty dict."""
    return _namespace if _namespace is not None else {}
