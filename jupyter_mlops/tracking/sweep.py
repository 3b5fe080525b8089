"""Sweeps: one parent run, each trial a child run, Optuna choosing the next settings.

A trial is run by a ``TrialRunner`` the caller gives (``%%sweep`` re-runs the cell through
the kernel hooks, so a trial is recorded exactly as ``%%track`` records the cell; ``sweep``
calls a function or runs a cell in a namespace). The engine only asks Optuna for params
(``study.ask``), reads the trial's metric back from its child run and tells Optuna
(``study.tell``). The store is the truth: a sweep whose kernel was killed is found again by
its key (cell, space, metric, method) and resumed, its finished trials told to a new study.

The parent run holds the space (``sweep.space.<name>`` params), the best trial's params
(``best_<name>``), the best value (``best_<metric>``, a history over trials), the best
trial's model artifacts (so ``register_model(None, NAME, run_id=parent)`` works) and
``trials.csv``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from . import storage
from ..entities import SYSTEM_METRIC_PREFIX
from ..errors import ValidationError, shorten
from ..validation import check_name, encode_param
from .runs import ActiveRun, _end, reopen_run, start_run
from .pruning import PRUNED_TAG, PRUNERS, TrialPruned, watching
from .samplers import asker
from .sweepspace import Space, grid_size

METHODS = ("grid", "random", "tpe")
DEFAULT_TRIALS = 20
TRIAL_TAG = "sweep.trial"
KEY_TAG = "sweep.key"
TABLE_NAME = "trials.csv"
_STEP_POLL_S = 0.05  # how often a pooled sweep that prunes reads its trials' steps

# A trial: (number, params, run name, tags) -> None; it records one child run of the
# active run (named and tagged as given) and raises what the trial raised.
TrialRunner = Callable[[int, dict[str, Any], str, dict[str, str]], None]


class TrialPool(Protocol):
    """Trials run elsewhere, several at once (worker kernels, see ``sweepjobs``): each
    records one child run of the sweep's parent, named and tagged as given."""

    size: int
    # Optional ``ahead: int``: trials it may be given beyond ``size``, queued until a
    # worker is free (a pool that would start them at once has none).

    def submit(self, number: int, params: dict[str, Any], name: str,
               tags: dict[str, str]) -> None: ...

    def wait(self, timeout: float | None = None) -> tuple[int, BaseException | None, bool] | None:
        """The next trial done: its number, what it raised, whether its worker died; None
        when none ended within ``timeout`` seconds (None: wait until one does)."""

    def stop(self) -> None:
        """Interrupt the running trials and wait (bounded) until they ended."""

    def close(self) -> None: ...


@dataclass
class Trial:
    number: int
    run_id: str
    params: dict[str, Any]
    status: str
    value: float | None = None
    duration_s: float | None = None
    error: str | None = None


@dataclass
class SweepProgress:
    """What a live view shows: the space, the trials so far and the best of them."""

    run_id: str
    name: str | None
    metric: str
    direction: str
    method: str
    space: Space
    n_trials: int
    trials: list[Trial] = field(default_factory=list)
    best: Trial | None = None
    status: str = "RUNNING"
    started: float = field(default_factory=time.time)

    @property
    def finished(self) -> int:
        return sum(t.status in ("FINISHED", "FAILED", "PRUNED") for t in self.trials)

    def importance(self) -> dict[str, float]:
        """How much each swept param moved the metric, in [0, 1], highest first."""
        from .sweepimportance import param_importance

        return param_importance(self.trials, self.space)


@dataclass
class SweepResult:
    """A finished (or stopped) sweep: its parent run, its trials and the best of them."""

    run_id: str
    best_run_id: str | None
    best_params: dict[str, Any]
    best_value: float | None
    metric: str
    direction: str
    trials: list[Trial]
    status: str
    resumed: bool = False
    progress: SweepProgress | None = field(default=None, repr=False)

    def trials_frame(self):
        """The trials as a pandas DataFrame: number, run_id, status, params, value."""
        import pandas as pd

        return pd.DataFrame(_table_rows(self.trials, self.metric))

    def register(self, name: str, alias: str | None = None):
        """Register the best trial's model as a new version of ``name``; returns it."""
        from ..registry.versions import register_model

        if self.best_run_id is None:
            raise ValidationError("No trial of this sweep finished, so there is no best model "
                                  "to register; fix the cell and run the sweep again.")
        return register_model(None, name, run_id=self.best_run_id, alias=alias)

    def __repr__(self) -> str:
        best = "no best" if self.best_value is None else (
            f"best {self.metric}={self.best_value:.6g} at {self.best_params}")
        return (f"<SweepResult {self.run_id[:8]} {self.status}: {len(self.trials)} trials, "
                f"{best}>")

    def _repr_html_(self) -> str:
        from ..dashboards.sweep import sweep_html

        return sweep_html(self.progress) if self.progress is not None else repr(self)


def sweep_key(source: str, space: Space, metric: str, direction: str, method: str,
              experiment: str) -> str:
    """What makes a sweep the same sweep, so that running it again resumes it."""
    text = json.dumps([source.strip(), {n: d.describe() for n, d in space.items()}, metric,
                       direction, method, experiment], allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def check_options(metric: str | None, direction: str, method: str, n_trials: int | None,
                  timeout: float | None) -> None:
    if not metric:
        raise ValidationError("Say which metric the sweep optimises: --maximize METRIC or "
                              "--minimize METRIC (metric=..., direction=...).")
    check_name("Metric name", metric)
    if direction not in ("maximize", "minimize"):
        raise ValidationError(f"A sweep's direction is 'maximize' or 'minimize'; got "
                              f"{shorten(direction)}.")
    if method not in METHODS:
        raise ValidationError(f"A sweep's method is one of {', '.join(METHODS)}; got "
                              f"{shorten(method)}.")
    if n_trials is not None and (not isinstance(n_trials, int) or n_trials < 1):
        raise ValidationError(f"A sweep runs at least one trial; got -n {shorten(n_trials)}.")
    if timeout is not None and not (isinstance(timeout, (int, float)) and timeout > 0):
        raise ValidationError(f"A sweep's timeout is a number of seconds above 0; got "
                              f"{shorten(timeout)}.")


def run_sweep(
    space: Space,
    runner: TrialRunner,
    *,
    metric: str,
    direction: str = "maximize",
    method: str = "tpe",
    n_trials: int | None = None,
    timeout: float | None = None,
    experiment: str = "default",
    name: str | None = None,
    key_source: str = "",
    seed: int | None = None,
    resume: bool = True,
    on_trial: Callable[[SweepProgress], None] | None = None,
    origin: Mapping[str, Any] | None = None,
    pool: Callable[[str], TrialPool] | None = None,
    pruner: str = "median",
) -> SweepResult:
    """Run (or resume) a sweep: at most ``n_trials`` trials, none started after ``timeout``
    seconds. KeyboardInterrupt ends the running trial and the parent KILLED and is raised
    again; a sweep stopped so is resumed by running it again with ``resume=True``.

    ``pool`` (given the parent's run id) runs the trials several at once instead of
    ``runner``; a trial whose worker died runs once more. ``pruner="median"`` stops a
    trial whose per-step metric falls below the median of the earlier trials at that step
    (Optuna's MedianPruner; random and tpe only); a pooled trial's steps come back through
    the store's folder (``pruningchannel``)."""
    from ..store.current import get_store

    check_options(metric, direction, method, n_trials, timeout)
    if pruner not in PRUNERS:
        raise ValidationError(f"A sweep's pruner is one of {', '.join(PRUNERS)}; got "
                              f"{shorten(pruner)}.")
    size = grid_size(space)
    if method == "grid" and size is None:
        ranged = [n for n, d in space.items() if d.kind != "categorical"]
        raise ValidationError(f"A grid needs a list of values for each name; {ranged[0]} is a "
                              "range: list its values, or use --method random or tpe.")
    if n_trials is None:
        n_trials = size if method == "grid" else DEFAULT_TRIALS
    if method == "grid":
        n_trials = min(n_trials, size)
    store = get_store()
    key = sweep_key(key_source, space, metric, direction, method, experiment)
    parent, prior = _open_parent(store, key, space, metric, direction, method, experiment,
                                 name, n_trials, timeout, resume, origin or {})
    progress = SweepProgress(parent.run_id, parent.name, metric, direction, method, space,
                             n_trials, list(prior))
    progress.best = _best(prior, direction)
    sign = 1.0 if direction == "maximize" else -1.0
    started = time.monotonic()
    status = "FINISHED"
    error: BaseException | None = None

    history = BestHistory(store, parent.run_id, f"best_{metric}")

    def record(trial: Trial) -> None:
        progress.trials = [t for t in progress.trials if t.number != trial.number] + [trial]
        ask.tell(trial)  # type: ignore[attr-defined]
        if trial.status == "FINISHED" and trial.value is not None:
            best = progress.best
            if best is None or sign * trial.value > sign * best.value:
                progress.best = trial
            history.add(progress.best.value, trial.number)
        if on_trial is not None:
            on_trial(progress)

    def open_slots() -> bool:
        return timeout is None or time.monotonic() - started < timeout

    try:
        # The workers start first: their kernels boot while this one loads the sampler
        # (importing Optuna takes about as long as starting a kernel).
        workers = pool(parent.run_id) if pool is not None else None
        try:
            ask = asker(space, method, direction, seed, prior, pruner)  # inside: the parent ends
        except BaseException:
            if workers is not None:
                workers.close()
            raise
        if workers is not None:
            prunes = getattr(ask, "prunes", False)
            _run_pooled(store, parent, workers, ask, progress, n_trials, open_slots, record,
                        prunes, queue_ahead=timeout is None and not prunes)
        while pool is None and progress.finished < n_trials and open_slots():
            number = max((t.number for t in progress.trials), default=-1) + 1
            params = ask(number)
            if params is None:
                break  # the grid is done
            with watching(ask.watcher(number, metric)):  # type: ignore[attr-defined]
                record(_run_trial(store, parent, runner, number, params, metric))
    except KeyboardInterrupt as exc:
        status, error = "KILLED", exc
        raise
    except BaseException as exc:
        status, error = "FAILED", exc
        raise
    finally:
        progress.status = status
        _close_parent(store, parent, progress, status, error, history)
        if on_trial is not None:
            on_trial(progress)
    best = progress.best
    return SweepResult(parent.run_id, best.run_id if best else None,
                       dict(best.params) if best else {}, best.value if best else None,
                       metric, direction, progress.trials, progress.status, bool(prior),
                       progress)


def sweep(
    target: Callable[..., Any] | str,
    space: Mapping[str, Any] | None = None,
    *,
    maximize: str | None = None,
    minimize: str | None = None,
    n_trials: int | None = None,
    method: str | None = None,
    timeout: float | None = None,
    experiment: str = "default",
    name: str | None = None,
    seed: int | None = None,
    resume: bool = True,
    namespace: dict[str, Any] | None = None,
    jobs: int = 1,
    pruner: str = "median",
    client: Any = None,
    **dimensions: Any,
) -> SweepResult:
    """Sweep a function or a cell's source over a space, each trial a child run of one parent.

    A function is called with the trial's params as keywords; a number it returns is the
    metric, a dict of numbers its metrics. A cell (a string) runs in ``namespace`` (the
    ``__main__`` module's by default) with the literals of the swept names replaced, and what
    it binds is autologged as ``%%track`` would. The space maps a name to a list of values or
    to ``"uniform(lo,hi)"``, ``"loguniform(lo,hi)"``, ``"int(lo,hi)"``. ``jobs=N`` runs a
    cell's trials N at once in worker kernels given this kernel's state by replaying the
    executions the cell depends on (``%load_ext jupyter_mlops`` must be loaded).
    ``client=`` (a ``dask.distributed.Client`` or a scheduler address) runs a cell's trials
    as tasks of that Dask cluster instead, one at a time per worker (``jobs`` > 1 bounds
    them), each worker given the same state; the workers must reach the store's folder.
    ``pruner="median"`` (random and tpe) stops a trial whose metric, logged per step with
    ``log_metric(key, value, step=)``, falls below the median of earlier trials; it ends
    KILLED, tagged ``sweep.pruned``, and the sweep goes on (in worker kernels and on Dask
    too: their steps come back through the store's folder).

    Examples
    --------
    >>> def train(C):                                                  # doctest: +SKIP
    ...     return LogisticRegression(C=C).fit(Xtr, ytr).score(Xte, yte)
    >>> result = sweep(train, C="loguniform(1e-3,1e2)", n_trials=20, maximize="accuracy")
    >>> result.best_params, result.register("iris")                    # doctest: +SKIP
    """
    from .sweepcell import check_swept
    from .sweepspace import parse_space

    if maximize and minimize:
        raise ValidationError("A sweep optimises one metric: give maximize= or minimize=, "
                              "not both.")
    space = parse_space({**(space or {}), **dimensions})
    metric = maximize or minimize or ""
    direction = "maximize" if maximize or not minimize else "minimize"
    if method is None:
        method = "grid" if grid_size(space) is not None and n_trials is None else "tpe"
    check_options(metric, direction, method, n_trials, timeout)
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise ValidationError(f"jobs is a number of trials at once, 1 or more; got "
                              f"{shorten(jobs)}.")
    pool = None
    if (jobs > 1 or client is not None) and not isinstance(target, str):
        raise ValidationError("jobs > 1 and client= run a cell's trials in workers; a "
                              "function cannot be sent there: give the cell's source, or "
                              "neither.")
    if isinstance(target, str):
        check_swept(target, space)
        runner = cell_runner(target, _namespace(namespace), experiment)
        key_source = target
        if jobs > 1 or client is not None:
            pool = _cell_pool(target, jobs, experiment, client)
    elif callable(target):
        runner = function_runner(target, metric, experiment)
        key_source = f"{getattr(target, '__module__', '')}.{getattr(target, '__qualname__', '')}"
    else:
        raise ValidationError(f"sweep takes a function or a cell's source; got "
                              f"{type(target).__name__}.")
    return run_sweep(space, runner, metric=metric, direction=direction, method=method,
                     n_trials=n_trials, timeout=timeout, experiment=experiment, name=name,
                     key_source=key_source, seed=seed, resume=resume, pool=pool,
                     pruner=pruner)


def _cell_pool(code: str, jobs: int, experiment: str,
               client: Any = None) -> Callable[[str], TrialPool]:
    """Worker kernels (or a Dask cluster's workers) given this kernel's state, for the
    trials of ``code``."""
    from ..store.current import get_store
    from .capture import current_session_id
    from .sweepcell import TrialCell
    from .sweepjobs import TrialSource, WorkerPool, state_cells

    session_id = current_session_id()
    if session_id is None:
        raise ValidationError("jobs > 1 and client= rebuild this kernel's state from its "
                              "recorded cells: run %load_ext jupyter_mlops first (or sweep "
                              "with neither).")
    store = get_store()
    cells = state_cells(store, session_id, code)
    source = TrialSource(TrialCell(code).body, experiment)  # the cell read once
    if client is not None:
        from .sweepdask import dask_pool

        return dask_pool(client, jobs, store=store, cells=cells, source=source)

    def start(parent_id: str) -> TrialPool:
        return WorkerPool(jobs, store=store, parent_id=parent_id, cells=cells, source=source)

    return start


def _namespace(namespace: dict[str, Any] | None) -> dict[str, Any]:
    if namespace is not None:
        return namespace
    import __main__

    return __main__.__dict__


def function_runner(function: Callable[..., Any], metric: str, experiment: str) -> TrialRunner:
    """Trials that call ``function(**params)`` inside a child run and log what it returns."""
    from numbers import Real

    from .runs import log_metrics, log_params

    def run(number: int, params: dict[str, Any], name: str, tags: dict[str, str]) -> None:
        with start_run(name, experiment, tags, nested=True):
            log_params(params)
            value = function(**params)
            if isinstance(value, Mapping):
                numbers = {k: float(v) for k, v in value.items()
                           if isinstance(v, Real) and not isinstance(v, bool)}
                if numbers:
                    log_metrics(numbers)
            elif isinstance(value, Real) and not isinstance(value, bool):
                log_metrics({metric: float(value)})

    return run


def cell_runner(code: str, namespace: dict[str, Any], experiment: str) -> TrialRunner:
    """Trials that run ``code`` with the swept literals replaced, autologged as a cell."""
    from .autolog import autolog, early_params
    from .sweepcell import TrialCell

    cell = TrialCell(code)  # parsed and analysed once, not once a trial

    def run(number: int, params: dict[str, Any], name: str, tags: dict[str, str]) -> None:
        body = cell.body(params)
        names = cell.names(params, body)
        with start_run(name, experiment, tags, nested=True, source=body) as child:
            storage.log_params(child.store, child.run_id, early_params(names))
            exec(compile(body, f"<sweep trial {number}>", "exec"), namespace)  # noqa: S102
            autolog(child.store, child.run_id, names, namespace, training_metrics=False)

    return run


# -- the parent run ----------------------------------------------------------------------

def _open_parent(store, key, space, metric, direction, method, experiment, name, n_trials,
                 timeout, resume, origin) -> tuple[ActiveRun, list[Trial]]:
    """The parent run: the sweep stopped earlier with this key, reopened, or a new one."""
    found = store.query(
        "SELECT r.run_id FROM runs r JOIN tags t ON t.run_id = r.run_id AND t.key = ? "
        "WHERE t.value = ? AND r.parent_run_id IS NULL AND r.status IN ('KILLED', 'FAILED') "
        "ORDER BY r.start_time DESC LIMIT 1", (KEY_TAG, key)) if resume else []
    tags = {"sweep.n_trials": str(n_trials), "sweep.timeout": "" if timeout is None
            else str(timeout)}
    if found:
        parent = reopen_run(found[0][0], store=store)
        storage.set_tags(store, parent.run_id, tags)
        return parent, _prior_trials(store, parent.run_id, space, metric)
    parent = start_run(name, experiment, {KEY_TAG: key, **tags},
                       store=store, **origin)
    params = {f"sweep.space.{n}": d.describe() for n, d in space.items()}
    params.update({"sweep.metric": metric, "sweep.direction": direction,
                   "sweep.method": method})
    storage.log_params(store, parent.run_id, {k: encode_param(k, v) for k, v in params.items()})
    return parent, []


def _prior_trials(store, parent_id: str, space: Space, metric: str) -> list[Trial]:
    """The finished and failed trials of a sweep stopped earlier (killed ones run again)."""
    rows = store.query(
        "SELECT r.run_id, t.value FROM runs r JOIN tags t ON t.run_id = r.run_id AND t.key = ? "
        "WHERE r.parent_run_id = ? AND (r.status IN ('FINISHED', 'FAILED') OR EXISTS ("
        "SELECT 1 FROM tags p WHERE p.run_id = r.run_id AND p.key = ?))",
        (TRIAL_TAG, parent_id, PRUNED_TAG))
    trials = []
    for run_id, number in rows:
        run = storage.get_run(store, run_id)
        params = {n: run.params[n] for n in space if n in run.params}
        value = run.metrics.get(metric) if run.status == "FINISHED" else None
        status = "PRUNED" if PRUNED_TAG in run.tags else run.status
        trials.append(Trial(int(number), run_id, params, status,
                            value if value is not None and math.isfinite(value) else None,
                            run.duration_s, run.error))
    return sorted(trials, key=lambda t: t.number)


class BestHistory:
    """The parent's ``best_<metric>`` history, a point per trial that finished.

    Quick trials do not each pay a write transaction of their own for it: the points are
    written at most every ``INTERVAL_S`` (so a view of the parent still follows a long
    sweep) and the rest with the parent's end, in its one closing transaction. A kernel
    killed mid-sweep loses at most that last interval of points, never a trial."""

    INTERVAL_S = 1.0

    def __init__(self, store, run_id: str, key: str) -> None:
        self.store, self.run_id, self.key = store, run_id, key
        self.pending: list[tuple[float, int, float]] = []  # (value, trial number, time)
        self.written = time.monotonic()

    def add(self, value: float, number: int) -> None:
        self.pending.append((value, number, time.time()))
        if time.monotonic() - self.written >= self.INTERVAL_S:
            with self.store.batch():
                self.flush()

    def flush(self) -> None:
        """Write the pending points (inside the caller's transaction, when there is one)."""
        pending, self.pending = self.pending, []
        for value, number, when in pending:
            storage.log_metrics(self.store, self.run_id, [(self.key, value, number)], when)
        self.written = time.monotonic()


def _close_parent(store, parent: ActiveRun, progress: SweepProgress, status: str,
                  error: BaseException | None, history: BestHistory | None = None) -> None:
    """The best history's last points, the best trial's params, model and the trials
    table, then the end: one write."""
    best = progress.best
    with store.batch():
        if history is not None:
            history.flush()
        rows = _table_rows(progress.trials, progress.metric)
        digest, size = store.artifacts.put_bytes(_csv(rows))
        storage.add_artifact(store, parent.run_id, TABLE_NAME, "table", digest, size,
                             "text/csv")
        tags = {"sweep.trials": str(progress.finished)}
        if best is not None:
            tags["sweep.best_trial"] = best.run_id
        storage.set_tags(store, parent.run_id, tags)
        importance = progress.importance()
        if importance:
            storage.log_metrics(store, parent.run_id, [
                (f"sweep.importance.{n}", v, 0) for n, v in importance.items()], time.time())
        if status == "FINISHED" and best is not None:
            storage.log_params(store, parent.run_id, {
                f"best_{n}": encode_param(f"best_{n}", v) for n, v in best.params.items()})
            for name, kind, sha, size, media in store.query(
                    "SELECT name, kind, sha256, size, media_type FROM artifacts "
                    "WHERE run_id = ? AND (kind = 'model' OR name LIKE 'model/%')",
                    (best.run_id,)):
                storage.add_artifact(store, parent.run_id, name, kind, sha, size, media)
        if status == "FINISHED" and best is None and progress.trials:
            status = "FAILED"
            error = RuntimeError(f"None of the {len(progress.trials)} trials finished with "
                                 f"metric {progress.metric!r}; see their tracebacks.")
            progress.status = status
        _end(parent, status, error)


# -- trials -------------------------------------------------------------------------------

def _trial_names(parent: ActiveRun, number: int) -> tuple[str, dict[str, str]]:
    """A trial's run name and tags."""
    return (f"{parent.name or 'sweep'}[{number}]",
            {TRIAL_TAG: str(number), "sweep.parent": parent.run_id})


def _trial_runs(store, parent_id: str, number: int, status: str | None = None) -> list[str]:
    """The child runs of trial ``number``, the latest first."""
    return [r for (r,) in store.query(
        "SELECT r.run_id FROM runs r JOIN tags t ON t.run_id = r.run_id AND t.key = ? "
        "WHERE r.parent_run_id = ? AND t.value = ? AND (? IS NULL OR r.status = ?) "
        "ORDER BY r.start_time DESC", (TRIAL_TAG, parent_id, str(number), status, status))]


def _run_trial(store, parent: ActiveRun, runner: TrialRunner, number: int,
               params: dict[str, Any], metric: str) -> Trial:
    name, tags = _trial_names(parent, number)
    known = set(_trial_runs(store, parent.run_id, number))
    error: BaseException | None = None
    try:
        runner(number, dict(params), name, tags)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - a failed trial is recorded; the sweep goes on
        error = exc
    return _outcome(store, parent, number, params, metric, error, known)


def _run_pooled(store, parent: ActiveRun, pool: TrialPool, ask, progress: SweepProgress,
                n_trials: int, open_slots: Callable[[], bool],
                record: Callable[[Trial], None], prunes: bool = False, *,
                queue_ahead: bool = False) -> None:
    """Keep every worker busy until ``n_trials`` are done; a trial whose worker died is
    reported and run once more. An interrupt stops the running trials (KILLED) and keeps
    those that finished, also those not yet read back. When the sweep ``prunes``, the
    running trials' steps are read while waiting and told to the pruner, which may stop
    them (see ``pruningchannel``).

    ``queue_ahead`` (no timeout, which a queued trial could start after, and no pruning,
    whose trials are told their number as they start): a pool with a queue of its own
    (``pool.ahead``) is given that many trials more than it has workers, so a worker that
    ends a trial takes the next at once instead of waiting while this thread reads its
    result back and asks for the next params."""
    from .pruningchannel import StepChannel

    in_flight: dict[int, tuple[dict[str, Any], set[str], int]] = {}
    slots = pool.size + (getattr(pool, "ahead", 0) if queue_ahead else 0)
    number = max((t.number for t in progress.trials), default=-1) + 1
    exhausted = False
    channel = StepChannel(store.path, parent.run_id, progress.metric) if prunes else None

    def submit(trial_number: int, params: dict[str, Any], attempt: int) -> None:
        in_flight[trial_number] = (params, set(_trial_runs(store, parent.run_id,
                                                           trial_number)), attempt)
        if channel is not None:
            channel.watch(trial_number, ask.watcher(trial_number, progress.metric))
        pool.submit(trial_number, dict(params), *_trial_names(parent, trial_number))

    try:
        while True:
            while (not exhausted and len(in_flight) < slots
                   and progress.finished + len(in_flight) < n_trials and open_slots()):
                params = ask(number)
                if params is None:
                    exhausted = True  # the grid is done
                    break
                submit(number, params, 1)
                number += 1
            if not in_flight:
                return
            if channel is None:
                ended = pool.wait()
            else:
                ended = pool.wait(_STEP_POLL_S)
                channel.poll()
                if ended is None:
                    continue
            done, error, died = ended
            params, known, attempt = in_flight.pop(done)
            pruned = channel.done(done) if channel is not None else None
            if pruned is not None and not died and str(error).startswith("TrialPruned"):
                error = pruned  # stopped by the pruner: recorded as a trial pruned here
            if not died:  # a run left RUNNING by a worker that died before the task ran again
                _end_left(store, parent.run_id, done, "KILLED",
                          "its worker died and the trial ran again elsewhere")
            else:
                _end_left(store, parent.run_id, done, "KILLED", "its worker kernel died")
                if attempt == 1:
                    print(f"jupyter_mlops: the worker kernel running trial {done} died; the "
                          "trial runs once more in a new one.", flush=True)
                    submit(done, params, 2)
                    continue
                error = RuntimeError(f"The worker kernel running trial {done} died twice; "
                                     "the trial is not run again.")
                if not _trial_runs(store, parent.run_id, done):
                    name, tags = _trial_names(parent, done)
                    _end(start_run(name, parent.experiment, tags, nested=True, store=store),
                         "FAILED", error)
                known = set()
            record(_outcome(store, parent, done, params, progress.metric, error, known))
    except KeyboardInterrupt:
        pool.stop()
        for trial_number in in_flight:
            _end_left(store, parent.run_id, trial_number, "KILLED", "the sweep was interrupted")
        told = {t.number for t in progress.trials}
        progress.trials += [t for t in _prior_trials(store, parent.run_id, progress.space,
                                                     progress.metric) if t.number not in told]
        progress.best = _best(progress.trials, progress.direction)
        raise
    finally:
        pool.close()
        if channel is not None:
            channel.close()


def _end_left(store, parent_id: str, number: int, status: str, why: str) -> None:
    """End the trial's runs its worker left RUNNING."""
    for run_id in _trial_runs(store, parent_id, number, "RUNNING"):
        storage.finish_run(store, run_id, status, error_type="WorkerStopped",
                           error=f"Trial {number} stopped: {why}.")


def _outcome(store, parent: ActiveRun, number: int, params: dict[str, Any], metric: str,
             error: BaseException | None, known: set[str]) -> Trial:
    """The trial as its child run recorded it."""
    run_ids = [r for r in _trial_runs(store, parent.run_id, number) if r not in known]
    if not run_ids:
        what = f"{type(error).__name__}: {error}" if error else "no run"
        raise ValidationError(f"Trial {number} recorded no child run ({shorten(what)}); a "
                              "sweep's cell must be one %%track could track.")
    run_id = run_ids[0]
    status, duration, run_error, metrics = storage.run_outcome(store, run_id)
    value = metrics.get(metric)
    trial = Trial(number, run_id, dict(params), status, None, duration,
                  run_error or (None if error is None else f"{type(error).__name__}: {error}"))
    if error is not None and status == "FINISHED":
        trial.status = "FAILED"
    if isinstance(error, TrialPruned):
        storage.set_tags(store, run_id, {PRUNED_TAG: str(error.step)})
        trial.status, trial.error = "PRUNED", str(error)
        return trial
    if trial.status == "FINISHED":
        if value is None:
            known_metrics = ", ".join(sorted(
                k for k in metrics if not k.startswith(SYSTEM_METRIC_PREFIX))) or "none"
            raise ValidationError(
                f"Trial {number} logged no metric {metric!r} (its metrics: {known_metrics}); "
                "name one of them with --maximize/--minimize, or bind it in the cell.")
        if math.isfinite(value):
            trial.value = value
        else:
            trial.status = "FAILED"
            trial.error = f"metric {metric!r} is {value}"
    if trial.status == "FAILED":
        print(f"jupyter_mlops: trial {number} failed ({shorten(trial.error or '', 200)}); "
              "the sweep goes on.", flush=True)
    return trial


def _best(trials: list[Trial], direction: str) -> Trial | None:
    scored = [t for t in trials if t.status == "FINISHED" and t.value is not None]
    if not scored:
        return None
    pick = max if direction == "maximize" else min
    return pick(scored, key=lambda t: t.value)


# -- the trials table -----------------------------------------------------------------------

def _table_rows(trials: list[Trial], metric: str) -> list[dict[str, Any]]:
    rows = []
    for trial in sorted(trials, key=lambda t: t.number):
        row: dict[str, Any] = {"number": trial.number, "run_id": trial.run_id,
                               "status": trial.status}
        row.update(trial.params)
        row[metric] = trial.value
        row["duration_s"] = trial.duration_s
        rows.append(row)
    return rows


def _csv(rows: list[dict[str, Any]]) -> bytes:
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns or ["number"])
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


__all__ = ["METHODS", "SweepProgress", "SweepResult", "Trial", "TrialPool", "TrialRunner",
           "cell_runner",
           "function_runner", "run_sweep", "sweep", "sweep_key"]
