"""The record of every cell execution: which code ran, in which order, and what it touched.

``CellCapture`` is driven by the kernel's pre/post run-cell events (see
``jupyter_mlops.magics.hooks``) but knows nothing of IPython: it takes the raw cell, its
transformed code and the outcome, and writes one ``cells`` row per execution.
"""

from __future__ import annotations

import os
import platform
import time
import uuid
from dataclasses import dataclass

from .cellnames import CellNames, analyze
from .store import Store

NOTEBOOK_ENV_VARS = ("JPY_SESSION_NAME", "JUPYTER_MLOPS_NOTEBOOK")


@dataclass
class CellRecord:
    store: Store
    row_id: int
    names: CellNames
    started: float
    clock: float
    run_id: str | None = None


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
        self._sessions_in: set[str] = set()

    def ensure_session(self, store: Store) -> None:
        key = str(store.path)
        if key not in self._sessions_in:
            store.start_session(self.session_id, notebook_path(), platform.python_version())
            self._sessions_in.add(key)

    def begin(
        self,
        store: Store,
        raw_cell: str,
        code: str,
        execution_count: int | None,
        cell_id: str | None,
        run_id: str | None = None,
    ) -> CellRecord:
        names = analyze(code)
        started = time.time()
        self.ensure_session(store)
        row_id = store.start_cell(
            self.session_id, execution_count, cell_id, raw_cell, names.defined, names.used,
            started, run_id,
        )
        return CellRecord(store, row_id, names, started, time.perf_counter(), run_id)

    def end(
        self,
        record: CellRecord,
        execution_count: int | None,
        error: BaseException | None,
    ) -> None:
        if error is None:
            status, message = "ok", None
        else:
            status = "interrupted" if isinstance(error, KeyboardInterrupt) else "error"
            message = f"{type(error).__name__}: {error}"[:2000]
        record.store.finish_cell(
            record.row_id,
            execution_count=execution_count,
            duration_s=time.perf_counter() - record.clock,
            status=status,
            error=message,
            run_id=record.run_id,
        )
