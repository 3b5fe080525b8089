"""The kernel hooks: capture every cell, and turn ``%%track`` cells into runs.

Nothing here may break or change the user's cell. Every failure of ours becomes one line
on stderr (``jupyter_mlops: ...``), never a traceback, and never IPython's "Error in
callback".
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass, field
from typing import Any

import IPython

from ..tracking.autolog import (
    add_figures,
    autolog,
    early_params,
    figure_numbers,
    input_datasets,
    new_figures,
    save_figures,
)
from ..tracking.capture import CellCapture, CellRecord, install, uninstall
from ..tracking.cellnames import CellNames, analyze
from ..tracking.runs import ActiveRun, _end, _forget, start_run
from ..store.current import get_store
from .track import TrackOptions, TrackTransformer, track_header

# IPython 9 counts the cell before firing pre_run_cell; IPython 8 after it ran.
_COUNTED_BEFORE_PRE = IPython.version_info[0] >= 9


@dataclass
class TrackedCell:
    run: ActiveRun
    options: TrackOptions
    names: CellNames
    figures_before: set[int] = field(default_factory=set)
    figures: list[tuple[str, str, int]] = field(default_factory=list)  # saved, not yet linked


class KernelHooks:
    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.capture = CellCapture()
        self.transformer = TrackTransformer()
        self._stack: list[Any] = []
        self._record: CellRecord | None = None
        self._tracked: TrackedCell | None = None
        self._warned: set[str] = set()

    # -- registration ----------------------------------------------------------------

    def register(self) -> None:
        events = self.shell.events
        events.register("pre_run_cell", self.pre_run_cell)
        events.register("post_run_cell", self.post_run_cell)
        # First in line, so figures are saved before the inline backend closes them.
        events.callbacks["post_execute"].insert(0, self.post_execute)
        self.shell.input_transformers_cleanup.append(self.transformer)
        install(self.capture, self.shell.user_ns)
        # %load_ext runs inside a cell whose pre_run_cell has already fired: record that
        # cell too, so the execution log holds every cell the kernel ran from it on.
        running = getattr(getattr(self.shell, "displayhook", None), "exec_result", None)
        if getattr(running, "info", None) is not None:
            self.pre_run_cell(running.info)

    def unregister(self) -> None:
        # Unloading happens inside a cell (%unload_ext) whose post_run_cell we will not see.
        record, self._record = self._record, None
        if record is not None:
            try:
                self.capture.end(record, None, None)
            except Exception as exc:  # noqa: BLE001
                self._warn("could not record this cell", exc, once=True)
        self.capture.writer.flush(timeout=5.0)
        uninstall(self.capture)
        events = self.shell.events
        for name, callback in (("pre_run_cell", self.pre_run_cell),
                               ("post_run_cell", self.post_run_cell),
                               ("post_execute", self.post_execute)):
            if callback in events.callbacks[name]:
                events.unregister(name, callback)
        if self.transformer in self.shell.input_transformers_cleanup:
            self.shell.input_transformers_cleanup.remove(self.transformer)

    # -- reporting -------------------------------------------------------------------

    def _warn(self, what: str, exc: BaseException, *, once: bool = False) -> None:
        message = f"{type(exc).__name__}: {exc}".split("\n", 1)[0]
        if once:
            if message in self._warned:
                return
            self._warned.add(message)
        print(f"jupyter_mlops: {what} ({message}). The cell itself ran normally.",
              file=sys.stderr)

    # -- events ----------------------------------------------------------------------

    def pre_run_cell(self, info: Any) -> None:
        self._stack.append(info)
        if len(self._stack) > 1:
            return  # a cell run from inside another cell belongs to its parent
        self._record = None
        self._tracked = None
        raw = info.raw_cell or ""
        count = self.shell.execution_count
        if _COUNTED_BEFORE_PRE and info.store_history:
            count -= 1
        cell_id = getattr(info, "cell_id", None)
        if not cell_id:
            try:
                cell_id = self.capture.cell_id_for(raw)
            except Exception as exc:  # noqa: BLE001
                self._warn("could not place this cell in its notebook", exc, once=True)
        header = track_header(raw)
        run_id = None
        try:
            self._report_capture_problems()
            store = get_store()
            code = getattr(info, "transformed_cell", None)
            if code is None:
                code = self.shell.transform_cell(raw)
            names = analyze(code)
            if header is not None:
                run_id = self._begin_run(store, raw, header, count, cell_id, names)
            # Queued for the capture thread, unless the run just wrote it: a locked store
            # costs the run, never the cell's place in the execution log.
            self.capture.ensure_session(store)
            self._record = self.capture.begin(store, raw, code, count, cell_id, run_id, names,
                                              self.shell.user_ns)
        except Exception as exc:  # noqa: BLE001
            self._warn("could not record this cell", exc, once=run_id is None)
        if self._tracked is not None:
            self.transformer.tracking = True

    def _begin_run(self, store, raw: str, header: str, count: int, cell_id: str | None,
                   names: CellNames):
        """The session row, the run and its input data: one write transaction."""
        try:
            options = self.transformer.options_for(header)
        except Exception:  # noqa: BLE001 - the transformer shows the usage error itself
            return None
        try:
            with store.batch():
                self.capture.ensure_session(store, now=True)  # the run refers to it
                run = start_run(
                    options.name, options.experiment, options.tags, nested=True,
                    session_id=self.capture.session_id, cell_id=cell_id,
                    execution_count=count, source=raw,
                )
                self._tracked = TrackedCell(run, options, names, figure_numbers())
                if options.autolog:
                    store.log_params(run.run_id, early_params(names))
                try:
                    inputs = input_datasets(names, self.shell.user_ns)
                    if inputs:
                        store.add_datasets(run.run_id, inputs)
                except Exception as exc:  # noqa: BLE001
                    self._warn("could not fingerprint the cell's input data", exc)
        except Exception as exc:  # noqa: BLE001
            if self._tracked is not None:  # its row went with the rolled-back transaction
                _forget(self._tracked.run)
            self._tracked = None
            self._warn("could not start a run for this cell", exc)
            return None
        return run.run_id

    def post_execute(self) -> None:
        tracked = self._tracked
        if tracked is None or len(self._stack) != 1 or not tracked.options.autolog:
            return
        try:
            # Drawn now, before the inline backend closes them; linked when the run ends.
            tracked.figures = save_figures(tracked.run.store,
                                           new_figures(tracked.figures_before))
        except Exception as exc:  # noqa: BLE001
            self._warn("could not save the cell's figures", exc)

    def post_run_cell(self, result: Any) -> None:
        info = getattr(result, "info", None)
        if not self._stack or (info is not None and self._stack[-1] is not info):
            return  # an empty cell, for which IPython fires no pre_run_cell
        self._stack.pop()
        if self._stack:
            return
        error = result.error_before_exec or result.error_in_exec
        count = result.execution_count
        tracked, self._tracked = self._tracked, None
        self.transformer.tracking = False
        if tracked is not None:
            self._end_run(tracked, error, count)
        record, self._record = self._record, None
        if record is not None:
            try:
                self.capture.end(record, count, error, self.shell.user_ns)
            except Exception as exc:  # noqa: BLE001
                self._warn("could not record this cell", exc, once=True)

    def _report_capture_problems(self) -> None:
        writer = self.capture.writer
        while writer.failures:
            self._warn("could not record a cell", RuntimeError(writer.failures.pop(0)),
                       once=True)
        if writer.dropped and "dropped" not in self._warned:
            self._warned.add("dropped")
            print(f"jupyter_mlops: the store stayed locked with {writer.MAX_PENDING:,} cell "
                  "events waiting, so cell events were dropped: cells run until it frees are "
                  "left out of the execution log. The cells themselves ran normally.",
                  file=sys.stderr)

    def _end_run(self, tracked: TrackedCell, error: BaseException | None, count: int) -> None:
        """Figures, autolog and the run's end: one write transaction."""
        run = tracked.run
        if error is None:
            status = "FINISHED"
        elif isinstance(error, KeyboardInterrupt):
            status = "KILLED"
        else:
            status = "FAILED"
        try:
            with run.store.batch():
                if error is None and tracked.options.autolog:
                    try:
                        add_figures(run.store, run.run_id, tracked.figures)
                        autolog(run.store, run.run_id, tracked.names, self.shell.user_ns)
                    except Exception as exc:  # noqa: BLE001
                        self._warn(f"autolog of run {run.run_id[:8]} failed", exc)
                _end(run, status, error, execution_count=count)
        except Exception as exc:  # noqa: BLE001
            self._warn(f"could not end run {run.run_id[:8]}", exc)
            if not run.ended:  # the batch failed before the end: never leave it active
                try:
                    _end(run, status, error, execution_count=count)
                except Exception:  # noqa: BLE001 - already reported above
                    pass

    # -- direct calls of the cell magic ------------------------------------------------

    def run_tracked_body(self, options: TrackOptions, body: str) -> Any:
        """``run_cell_magic('track', ...)`` called directly: run the body inside a run.

        As ``%%time`` does, the body runs in the user's namespace, the value of a last
        expression is returned, and an exception ends the run FAILED (KILLED for
        KeyboardInterrupt) and is then raised again, never swallowed.
        """
        if self.transformer.tracking:
            from IPython.core.error import UsageError

            raise UsageError("nested %%track is not supported: the outer cell is already a run.")
        code = self.shell.transform_cell(body)
        names = analyze(code)
        self.capture.ensure_session(get_store(), now=True)  # the run refers to it
        run = start_run(options.name, options.experiment, options.tags, nested=True,
                        session_id=self.capture.session_id, source=body)
        tracked = TrackedCell(run, options, names, figure_numbers())
        if options.autolog:
            run.store.log_params(run.run_id, early_params(names))
        error: BaseException | None = None
        self.transformer.tracking = True
        try:
            inputs = input_datasets(names, self.shell.user_ns)
            if inputs:
                run.store.add_datasets(run.run_id, inputs)
            return _run_body(code, self.shell.user_ns)
        except BaseException as exc:
            error = exc
            raise
        finally:
            self.transformer.tracking = False
            if error is None and tracked.options.autolog:
                try:
                    tracked.figures = save_figures(run.store, new_figures(tracked.figures_before))
                except Exception as exc:  # noqa: BLE001
                    self._warn("could not save the cell's figures", exc)
            self._end_run(tracked, error, None)


def _run_body(code: str, namespace: dict[str, Any]) -> Any:
    """Execute ``code`` in ``namespace``; the value of a last bare expression is returned."""
    tree = ast.parse(code, filename="<%%track>")
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    exec(compile(tree, "<%%track>", "exec"), namespace)  # noqa: S102 - the user's own cell
    if last is None:
        return None
    expression = ast.Expression(last.value)
    return eval(compile(expression, "<%%track>", "eval"), namespace)  # noqa: S307
