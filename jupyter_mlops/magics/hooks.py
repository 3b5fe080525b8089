"""The kernel hooks: capture every cell, and turn ``%%track`` cells into runs.

Nothing here may break or change the user's cell. Every failure of ours becomes one line
on stderr (``jupyter_mlops: ...``), never a traceback, and never IPython's "Error in
callback".
"""

from __future__ import annotations

import ast
import sys
import time
from dataclasses import dataclass, field
from collections.abc import Callable
from typing import Any

import IPython

from ..tracking import storage
from ..tracking.autolog import autolog, early_params, input_datasets
from ..tracking.capture import CellCapture, CellRecord, install, start_sampling, uninstall
from ..tracking.cellnames import CellNames, analyze
from ..tracking.displayed import log_displayed
from ..tracking.fileread import start_reading, stop_reading
from ..tracking.keeping import keep_inputs
from ..tracking.figures import FigureCollector, add_figures, save_figures
from ..tracking.fits import FitRecorder
from ..tracking.loops import LoopRecorder
from ..tracking.rewrite import instrument
from ..tracking.trialcode import Prepared
from ..tracking.paramdicts import log_dict_params
from ..tracking.pruning import TrialPruned
from ..tracking.resources import ResourceSampler, log_resources
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
    collector: FigureCollector | None = None  # the figures it draws, when autolog is on
    figures: list[tuple[str, str, int]] = field(default_factory=list)  # saved, not yet linked
    loops: LoopRecorder | None = None  # its loop curves, when autolog is on
    fits: FitRecorder | None = None  # its fits, for child runs
    resources: ResourceSampler | None = None  # its system.* metrics


class LoopRewriter:
    """IPython's AST transformer slot, filled only while a tracked cell runs: it rewrites
    the loops of that cell, and of code the magics in it compile (``%%capture``,
    ``%time``), so they record their numbers (see ``jupyter_mlops.tracking.loops``)."""

    def __init__(self, hooks: KernelHooks) -> None:
        self.hooks = hooks

    def visit(self, node: Any) -> Any:
        tracked = self.hooks._tracked
        if tracked is None or tracked.loops is None or not isinstance(node, ast.Module):
            return node
        try:
            node = instrument(node, tracked.loops, tracked.fits)
            # Hidden from %who; taken out again when the cell ends.
            self.hooks.shell.push(_bindings(tracked), interactive=False)
        except Exception as exc:  # noqa: BLE001 - IPython would unregister us: never raise
            self.hooks._warn("could not prepare the cell's loops for loop curves", exc)
        return node


class KernelHooks:
    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.capture = CellCapture()
        self.transformer = TrackTransformer()
        self.loop_rewriter = LoopRewriter(self)
        self._stack: list[Any] = []
        self._record: CellRecord | None = None
        self._tracked: TrackedCell | None = None
        self._warned: set[str] = set()
        # The id and count of the top-level cell running now, for runs its magics start.
        self.cell_id: str | None = None
        self.execution_count: int | None = None
        # Names bound to model.predict(X) by the cells run so far -> "X": a later cell that
        # displays a metric of them names it after X.
        self.predictions: dict[str, str] = {}

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
        self.capture.writer.close(timeout=5.0)
        uninstall(self.capture)
        events = self.shell.events
        for name, callback in (("pre_run_cell", self.pre_run_cell),
                               ("post_run_cell", self.post_run_cell),
                               ("post_execute", self.post_execute)):
            if callback in events.callbacks[name]:
                events.unregister(name, callback)
        if self.transformer in self.shell.input_transformers_cleanup:
            self.shell.input_transformers_cleanup.remove(self.transformer)
        self._stop_autolog(self._tracked)

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
        self.cell_id, self.execution_count = cell_id, count
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
            if self._tracked is not None:
                self._tracked.resources = self._record.resources
        except Exception as exc:  # noqa: BLE001
            self._warn("could not record this cell", exc, once=run_id is None)
        if self._tracked is not None:
            self.transformer.tracking = True
            self._start_autolog(self._tracked, raw)

    def _begin_run(self, store, raw: str, header: str, count: int, cell_id: str | None,
                   names: CellNames):
        """The session row, the run and its input data: one write transaction."""
        try:
            options = self.transformer.options_for(header)
        except Exception:  # noqa: BLE001 - the transformer shows the usage error itself
            return None
        inputs: list = []
        try:
            with store.batch():
                self.capture.ensure_session(store, now=True)  # the run refers to it
                run = start_run(
                    options.name, options.experiment, options.tags, nested=True,
                    session_id=self.capture.session_id, cell_id=cell_id,
                    execution_count=count, source=raw,
                )
                self._tracked = TrackedCell(run, options, names)
                if options.autolog:
                    storage.log_params(store, run.run_id, early_params(names))
                try:
                    inputs = input_datasets(names, self.shell.user_ns)
                    if inputs:
                        storage.add_datasets(store, run.run_id, inputs)
                except Exception as exc:  # noqa: BLE001
                    self._warn("could not fingerprint the cell's input data", exc)
                self._keep_inputs(store, inputs)
        except Exception as exc:  # noqa: BLE001
            if self._tracked is not None:  # its row went with the rolled-back transaction
                _forget(self._tracked.run)
            self._tracked = None
            self._warn("could not start a run for this cell", exc)
            return None
        return run.run_id

    def _keep_inputs(self, store, inputs: list) -> None:
        """The bytes of the inputs (under the data policy), and from now on the files the
        cell reads: in the run's start transaction, its chunks written before their rows."""
        if inputs:
            keep_inputs(store, inputs, self.shell.user_ns)
        try:
            start_reading(store)
        except Exception as exc:  # noqa: BLE001
            self._warn("could not follow the files the cell reads", exc, once=True)

    def _link_files(self, run) -> None:
        try:
            stop_reading(run.store, run.run_id)
        except Exception as exc:  # noqa: BLE001
            self._warn(f"could not record the files run {run.run_id[:8]} read", exc)

    def post_execute(self) -> None:
        tracked = self._tracked
        if tracked is None or len(self._stack) != 1:
            return
        self._save_figures(tracked)

    def _save_figures(self, tracked: TrackedCell) -> None:
        """Drawn now, before the inline backend closes those still open; linked when the
        run ends."""
        collector, tracked.collector = tracked.collector, None
        if collector is None:
            return
        collector.stop()
        try:
            tracked.figures = save_figures(tracked.run.store, collector.figures(),
                                           self.shell.user_ns)
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
        self._stop_autolog(tracked)
        if tracked is not None:
            self._end_run(tracked, error, count, getattr(result, "result", None))
        record, self._record = self._record, None
        names = record.names if record is not None else (
            tracked.names if tracked is not None else None)
        if error is None and names is not None:
            self._follow_predictions(names)
        if record is not None:
            try:
                self.capture.end(record, count, error, self.shell.user_ns)
            except Exception as exc:  # noqa: BLE001
                self._warn("could not record this cell", exc, once=True)

    def _follow_predictions(self, names: CellNames) -> None:
        for name in names.defined:
            if name in names.predictions:
                self.predictions[name] = names.predictions[name]
            else:
                self.predictions.pop(name, None)

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

    def _start_autolog(self, tracked: TrackedCell, source: str, *, rewrite: bool = True) -> None:
        """What autolog follows while the cell runs: its figures, and its loops (the AST is
        rewritten from now until it ends)."""
        if not tracked.options.autolog:
            return
        try:
            tracked.collector = FigureCollector(source)
            tracked.collector.start()
        except Exception as exc:  # noqa: BLE001
            self._warn("could not follow the cell's figures", exc)
        tracked.loops = LoopRecorder(self.shell.user_ns)
        tracked.fits = FitRecorder(tracked.run.store, tracked.loops, self.shell.user_ns)
        # Only while a tracked cell runs: other cells keep IPython's path untouched.
        if rewrite and self.loop_rewriter not in self.shell.ast_transformers:
            self.shell.ast_transformers.append(self.loop_rewriter)

    def _stop_autolog(self, tracked: TrackedCell | None) -> None:
        if tracked is not None and tracked.collector is not None:
            tracked.collector.stop()
            tracked.collector = None
        if self.loop_rewriter in self.shell.ast_transformers:
            self.shell.ast_transformers.remove(self.loop_rewriter)
        if tracked is not None and tracked.loops is not None:
            self.shell.drop_by_id(_bindings(tracked))

    def _log_fits(self, tracked: TrackedCell, error: BaseException | None) -> None:
        """Several fits (or any, in a failed cell) as child runs of the cell's run."""
        if tracked.fits is None:
            return
        what = f"could not record the fits of run {tracked.run.run_id[:8]}"
        try:
            tracked.fits.log_children(tracked.run.run_id, failed=error is not None,
                                      skip=set(tracked.names.literals))
        except Exception as exc:  # noqa: BLE001
            self._warn(what, exc)
        if tracked.fits.problems:
            self._warn(what, RuntimeError(tracked.fits.problems[0]))

    def _log_loops(self, tracked: TrackedCell) -> None:
        """The loop curves, also for a cell that failed: each point was a value it reached."""
        if tracked.loops is None:
            return
        try:
            notes = tracked.loops.log(tracked.run.store, tracked.run.run_id,
                                      skip=set(tracked.names.literals))
        except Exception as exc:  # noqa: BLE001
            self._warn("could not record the loop curves", exc)
            return
        if notes:
            print(f"jupyter_mlops: a loop name stopped being a number ({'; '.join(notes)}); "
                  "its curve ends there and the points before it were kept.", file=sys.stderr)

    def _log_untidy(self, tracked: TrackedCell, shown: Any) -> None:
        """What notebooks say without binding it: the metric the cell displays, the dicts
        of params it hands to fit or train calls."""
        run, namespace = tracked.run, self.shell.user_ns
        try:
            log_displayed(run.store, run.run_id, tracked.names.displayed, shown, namespace,
                          {**self.predictions, **tracked.names.predictions})
            log_dict_params(run.store, run.run_id, tracked.names, namespace)
        except Exception as exc:  # noqa: BLE001
            self._warn(f"autolog of run {run.run_id[:8]} failed", exc)

    def _end_run(self, tracked: TrackedCell, error: BaseException | None, count: int,
                 shown: Any = None) -> None:
        """Loop curves, figures, autolog, resources and the run's end: one write transaction."""
        run = tracked.run
        if tracked.resources is not None:
            tracked.resources.stop()  # what follows is our work, not the cell's
        if error is None:
            status = "FINISHED"
        elif isinstance(error, (KeyboardInterrupt, TrialPruned)):
            status = "KILLED"
        else:
            status = "FAILED"
        try:
            with run.store.batch():
                self._link_files(run)
                self._log_loops(tracked)  # before autolog, which leaves their keys alone
                self._log_fits(tracked, error)
                if error is None and tracked.options.autolog:
                    self._log_untidy(tracked, shown)
                    try:
                        add_figures(run.store, run.run_id, tracked.figures)
                        logged = autolog(
                            run.store, run.run_id, tracked.names, self.shell.user_ns,
                            model=self._chosen_model(tracked),
                            throwaway=tracked.fits.loop_only() if tracked.fits else (),
                            training_metrics=tracked.options.training_metrics)
                        if logged["rebound"]:
                            print(f"jupyter_mlops: {', '.join(logged['rebound'])} changed after "
                                  "the run logged it from the cell's source; params are "
                                  "write-once, so the run keeps the source's value and tags "
                                  "it params_rebound.", file=sys.stderr)
                    except Exception as exc:  # noqa: BLE001
                        self._warn(f"autolog of run {run.run_id[:8]} failed", exc)
                if tracked.resources is not None:
                    try:
                        log_resources(run.store, run.run_id, tracked.resources)
                    except Exception as exc:  # noqa: BLE001
                        self._warn(f"could not log the resources of run {run.run_id[:8]}", exc)
                    if tracked.resources.error is not None:
                        self._warn("resource sampling stopped early",
                                   tracked.resources.error, once=True)
                _end(run, status, error, execution_count=count)
        except Exception as exc:  # noqa: BLE001
            self._warn(f"could not end run {run.run_id[:8]}", exc)
            if not run.ended:  # the batch failed before the end: never leave it active
                try:
                    _end(run, status, error, execution_count=count)
                except Exception:  # noqa: BLE001 - already reported above
                    pass
        self._say_logged(tracked)

    def _chosen_model(self, tracked: TrackedCell) -> str | None:
        """``--model VAR`` when VAR holds a trained model; else one line saying why not."""
        chosen = tracked.options.model
        if chosen is None:
            return None
        from ..tracking.frameworks import family_of

        value = self.shell.user_ns.get(chosen)
        if value is not None and family_of(value) is not None:
            return chosen
        what = "is not defined" if value is None else "holds no trained model"
        print(f"jupyter_mlops: --model {chosen}: {chosen} {what} when the cell ended, so the "
              "run keeps the models the cell fitted. Name the variable the model is in.",
              file=sys.stderr)
        return None

    def _say_logged(self, tracked: TrackedCell) -> None:
        """The one-line summary under a tracked cell, unless -q or the setting is off."""
        from ..tracking.logged import logged_line, summary_enabled

        if tracked.options.quiet or not summary_enabled():
            return
        try:
            print(logged_line(tracked.run.store, tracked.run.run_id))
        except Exception as exc:  # noqa: BLE001
            self._warn(f"could not summarise run {tracked.run.run_id[:8]}", exc, once=True)

    # -- direct calls of the cell magic ------------------------------------------------

    def run_tracked_body(self, options: TrackOptions, body: str, *,
                         inner: bool = False, names: CellNames | None = None,
                         prepare: Callable[[Any, Any], Prepared | None] | None = None) -> Any:
        """``run_cell_magic('track', ...)`` called directly: run the body inside a run.

        As ``%%time`` does, the body runs in the user's namespace, the value of a last
        expression is returned, and an exception ends the run FAILED (KILLED for
        KeyboardInterrupt) and is then raised again, never swallowed. ``inner`` (a sweep's
        trial) records the body as an execution of the running cell, with its id and count,
        and gives the run that cell: its model can be registered and replayed. ``names``
        is ``analyze(body)`` when the caller knows it already (a sweep reads its cell once);
        ``prepare(loops, fits)`` gives the body's code compiled already, or None.
        """
        if self.transformer.tracking:
            from IPython.core.error import UsageError

            raise UsageError("nested %%track is not supported: the outer cell is already a run.")
        # A sweep's trial is the cell's own code, transformed once by the sweep.
        code = body if inner else self.shell.transform_cell(body)
        if names is None:
            names = analyze(code)
        store = get_store()
        self.capture.ensure_session(store, now=True)  # the run refers to it
        count = self.execution_count if inner else None
        origin = {"cell_id": self.cell_id, "execution_count": count} if inner else {}
        started = time.time()
        run = None
        unread: Exception | None = None  # the input data could not be read: the run fails
        try:
            # The run's start, its params and its input data: one write transaction.
            with store.batch():
                run = start_run(options.name, options.experiment, options.tags, nested=True,
                                session_id=self.capture.session_id, source=body, store=store,
                                **origin)
                if options.autolog:
                    storage.log_params(run.store, run.run_id, early_params(names))
                try:
                    inputs = input_datasets(names, self.shell.user_ns)
                    if inputs:
                        storage.add_datasets(run.store, run.run_id, inputs)
                    self._keep_inputs(run.store, inputs)
                except Exception as exc:  # noqa: BLE001 - raised below, as the run's error
                    unread = exc
        except BaseException:
            if run is not None:
                _forget(run)  # its row went with the rolled-back transaction
            raise
        tracked = TrackedCell(run, options, names)
        self._start_autolog(tracked, body, rewrite=False)  # _run_body rewrites the loops
        error: BaseException | None = None
        shown = None
        self.transformer.tracking = True
        try:
            if unread is not None:
                raise unread
            tracked.resources = start_sampling()
            shown = _run_body(code, self.shell.user_ns, tracked, prepare)
            return shown
        except BaseException as exc:
            error = exc
            raise
        finally:
            self.transformer.tracking = False
            self._save_figures(tracked)
            self._stop_autolog(tracked)
            with run.store.batch():  # the run's end and, of a trial, its execution
                self._end_run(tracked, error, count, shown)
                if inner:
                    try:
                        self.capture.add_inner(run.store, body, count, self.cell_id,
                                               run.run_id, names, started, error)
                    except Exception as exc:  # noqa: BLE001
                        self._warn("could not record the trial's execution", exc)


def _bindings(tracked: TrackedCell) -> dict[str, Any]:
    """The objects a rewritten cell calls, by their reserved names."""
    found = dict(tracked.loops.bindings) if tracked.loops is not None else {}
    if tracked.fits is not None:
        found.update(tracked.fits.bindings)
    return found


def _run_body(code: str, namespace: dict[str, Any], tracked: TrackedCell,
              prepare: Callable[[Any, Any], Prepared | None] | None = None) -> Any:
    """Execute ``code`` in ``namespace``; the value of a last bare expression is returned.
    ``prepare`` (a sweep's trial) may give it compiled already."""
    prepared = prepare(tracked.loops, tracked.fits) if prepare is not None else None
    if prepared is None:
        tree = ast.parse(code, filename="<%%track>")
        if tracked.loops is not None:
            tree = instrument(tree, tracked.loops, tracked.fits)
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        prepared = Prepared(compile(tree, "<%%track>", "exec"), None if last is None else
                            compile(ast.Expression(last.value), "<%%track>", "eval"), {})
    if tracked.loops is not None:
        namespace.update(_bindings(tracked))
    namespace.update(prepared.bindings)
    try:
        exec(prepared.body, namespace)  # noqa: S102 - the user's own cell
        if prepared.last is None:
            return None
        return eval(prepared.last, namespace)  # noqa: S307
    finally:
        for name in prepared.bindings:
            namespace.pop(name, None)
