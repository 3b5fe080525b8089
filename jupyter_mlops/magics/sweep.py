"""``%%sweep``: re-run a cell over a search space, each trial a ``%%track`` run.

``%%sweep C=loguniform(1e-3,1e2) max_depth=[3,5,8] -n 30 --maximize accuracy``: the names
are variables the cell binds to literals; each trial runs the cell with those literals
replaced, through the same hooks as ``%%track`` (params, metrics, models, figures, loop
curves), as a child of one parent run. The cell's value is the ``SweepResult``, so
``_.register("name")`` registers the best trial's model.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from ..errors import ValidationError
from ..tracking.sweepspace import Space, parse_space, split_line
from .track import TrackOptions


@dataclass(frozen=True)
class SweepOptions:
    space: Space
    metric: str
    direction: str
    method: str
    n_trials: int | None
    timeout: float | None
    experiment: str
    name: str | None
    seed: int | None
    resume: bool
    jobs: int
    training_metrics: bool = False
    pruner: str = "median"
    client: str | None = None


def _sweep_arguments(func):
    for decorator in (
        argument("--training-metrics", action="store_true",
                 help="Compute MLflow's training metrics in each trial, as %%track does "
                      "(a prediction over the fit data each time; left out by default)."),
        argument("--new", action="store_true",
                 help="Start a new sweep even when one stopped earlier with this cell and "
                      "space (by default it is resumed)."),
        argument("--pruner", default="median", choices=["median", "none"],
                 help="Stop a trial whose per-step metric (a loop's, or log_metric(step=)) "
                      "falls below the median of earlier trials at that step: median "
                      "(Optuna's MedianPruner, the default with random and tpe) or none. "
                      "Trials in worker kernels (--jobs N) and on Dask (--client) too."),
        argument("--seed", type=int, default=None, help="Seed of the sampler."),
        argument("--jobs", type=int, default=1,
                 help="Trials run at once, each in a worker kernel given the notebook's "
                      "state by replaying the cells the sweep's cell depends on (1: in "
                      "this kernel)."),
        argument("--client", default=None, metavar="ADDRESS",
                 help="Run the trials as tasks of the Dask cluster whose scheduler is at "
                      "ADDRESS (e.g. tcp://10.0.0.5:8786), one at a time per worker, each "
                      "worker given the notebook's state as --jobs gives it; the workers "
                      "must reach the store's folder (--jobs N > 1 bounds the trials at "
                      "once)."),
        argument("--timeout", type=float, default=None,
                 help="Start no trial after this many seconds."),
        argument("--method", default=None, choices=["grid", "random", "tpe"],
                 help="How params are chosen: grid, random or tpe (Optuna's Bayesian "
                      "sampler). Default: grid when every name has a list of values and "
                      "-n is not given, else tpe."),
        argument("--name", default=None, help="Name of the parent run."),
        argument("-e", "--experiment", default="default",
                 help="Experiment of the parent run and its trials."),
        argument("--minimize", default=None, metavar="METRIC", help="Metric to minimise."),
        argument("--maximize", default=None, metavar="METRIC", help="Metric to maximise."),
        argument("-n", "--trials", type=int, default=None, help="Number of trials (20)."),
        argument("space", nargs="*", metavar="NAME=SPACE",
                 help="A variable the cell binds to a literal and its values: [v1,v2,...], "
                      "uniform(lo,hi), loguniform(lo,hi), int(lo,hi) or logint(lo,hi)."),
    ):
        func = decorator(func)
    return magic_arguments()(func)


@_sweep_arguments
def _sweep_signature(line: str) -> None:
    """Sweep this cell over a search space: each trial a child run of one parent run."""


def parse_sweep_line(line: str) -> SweepOptions:
    """Options of a ``%%sweep`` line; a mistake raises UsageError with one line to read."""
    items = split_line(line)
    space_items = [i for i in items if not i.startswith("-") and "=" in i
                   and i.split("=", 1)[0].isidentifier()]
    others: list[str] = []
    for item in items:
        if item not in space_items:
            others.extend(shlex.split(item) if item[:1] in "'\"" else [item])
    args = _sweep_signature.parser.parse_args(others)
    if args.space:
        raise UsageError(f"{args.space[0]!r} is not NAME=SPACE; write e.g. "
                         "C=loguniform(1e-3,1e2) depth=[3,5,8].")
    if args.maximize and args.minimize:
        raise UsageError("A sweep optimises one metric: give --maximize or --minimize, not both.")
    if args.jobs < 1:
        raise UsageError(f"--jobs takes a number of trials at once, 1 or more; got {args.jobs}.")
    try:
        space = parse_space(space_items)
    except ValidationError as exc:
        raise UsageError(str(exc)) from None
    method = args.method
    if method is None:
        from ..tracking.sweepspace import grid_size

        method = "grid" if grid_size(space) is not None and args.trials is None else "tpe"
    metric = args.maximize or args.minimize
    if not metric:
        raise UsageError("Say which metric the sweep optimises: --maximize METRIC or "
                         "--minimize METRIC.")
    return SweepOptions(space, metric, "maximize" if args.maximize else "minimize", method,
                        args.trials, args.timeout, args.experiment, args.name, args.seed,
                        not args.new, args.jobs, args.training_metrics, args.pruner,
                        args.client)


class LiveView:
    """The sweep's HTML, shown once and updated in place after each trial."""

    INTERVAL_S = 0.5  # a fast sweep redraws twice a second, not after every trial

    def __init__(self) -> None:
        self.handle: Any = None
        self.drawn = 0.0

    def update(self, progress) -> None:
        import time

        from IPython.display import HTML, display

        from ..dashboards.sweep import sweep_html

        now = time.monotonic()
        if progress.status == "RUNNING" and now - self.drawn < self.INTERVAL_S:
            return
        self.drawn = now

        markup = HTML(sweep_html(progress))
        if self.handle is None:
            self.handle = display(markup, display_id=True)
        else:
            self.handle.update(markup)


@magics_class
class SweepMagics(Magics):
    def __init__(self, shell, hooks) -> None:
        super().__init__(shell)
        self.hooks = hooks

    @_sweep_arguments
    @cell_magic
    def sweep(self, line: str, cell: str):
        """Sweep this cell: each trial re-runs it with the swept literals replaced, as a
        child run of one parent run that keeps the space, the trials table, the best
        trial's params, metric and model. Running the same sweep again after its kernel
        died (or after an interrupt) resumes it."""
        from ..tracking.sweep import run_sweep
        from ..tracking.sweepcell import TrialCell, check_swept
        from ..tracking.trialcode import TrialCode

        options = parse_sweep_line(line)
        code = self.shell.transform_cell(cell)
        try:
            check_swept(code, options.space)
        except ValidationError as exc:
            raise UsageError(str(exc)) from None
        hooks = self.hooks
        trial_cell = TrialCell(code)  # parsed, analysed and compiled once, not once a trial
        trial_code = TrialCode(trial_cell)

        def runner(number: int, params: dict[str, Any], name: str, tags: dict[str, str]):
            body = trial_cell.body(params)
            # Quiet: the live view tells each trial, not a summary line per trial.
            hooks.run_tracked_body(TrackOptions(name, options.experiment, tags, True,
                                                quiet=True,
                                                training_metrics=options.training_metrics),
                                   body, inner=True, names=trial_cell.names(params, body),
                                   prepare=lambda loops, fits: trial_code.prepare(
                                       params, loops, fits))

        # The sweep cell's own row first: each trial's execution is written after it.
        hooks.capture.writer.flush(5.0)
        pool = None
        if options.jobs > 1 or options.client:
            from ..store.current import get_store
            from ..tracking.sweepjobs import TrialSource, WorkerPool, state_cells

            store = get_store()
            cells = state_cells(store, hooks.capture.session_id, code)
            cell_id = hooks.cell_id
            source = TrialSource(trial_cell.body, options.experiment, options.training_metrics)

        if options.client:
            from ..tracking.sweepdask import dask_pool

            try:
                pool = dask_pool(options.client, options.jobs, store=store, cells=cells,
                                 source=source, cell_id=cell_id)
            except ValidationError as exc:
                raise UsageError(str(exc)) from None
        elif options.jobs > 1:

            def pool(parent_id: str) -> WorkerPool:
                return WorkerPool(options.jobs, store=store, parent_id=parent_id, cells=cells,
                                  source=source, cell_id=cell_id)

        view = LiveView()
        try:
            result = run_sweep(
                options.space, runner, metric=options.metric, direction=options.direction,
                method=options.method, n_trials=options.n_trials, timeout=options.timeout,
                experiment=options.experiment, name=options.name, key_source=code,
                seed=options.seed, resume=options.resume, on_trial=view.update,
                origin=self._origin(line, cell), pool=pool, pruner=options.pruner)
        except ValidationError as exc:
            raise UsageError(str(exc)) from None
        if view.handle is not None:
            from IPython.display import HTML

            view.handle.update(HTML(""))  # the result below shows the final view
        return result

    def _origin(self, line: str, cell: str) -> dict[str, Any]:
        """Where the parent run comes from: this kernel's session and the cell running."""
        from ..store.current import get_store

        hooks = self.hooks
        hooks.capture.ensure_session(get_store(), now=True)
        return {"session_id": hooks.capture.session_id, "cell_id": hooks.cell_id,
                "execution_count": hooks.execution_count,
                "source": f"%%sweep {line}\n{cell}"}
