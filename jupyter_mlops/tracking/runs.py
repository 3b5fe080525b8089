"""Runs and what is logged to them: the Python API that ``%%track`` is built on.

The active run lives in a ``ContextVar`` so threads and tasks each have their own. A run
started outside any ``with`` block on the main thread (the notebook habit of calling
``start_run()`` in one cell and ``end_run()`` in a later one) is also remembered
process-wide, because a kernel may run each cell in a fresh context.
"""

from __future__ import annotations

import io
import os
import threading
import time
import traceback as traceback_module
import uuid
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from . import storage
from ..entities import TERMINAL_STATUSES
from ..errors import ValidationError, shorten
from ..store import Store
from ..store.current import get_store
from ..validation import check_name, check_tag, encode_param, metric_step, metric_value
from . import pruning
from .capture import flush_capture

# Set in the kernel of a notebook run (``run_notebook``): the runs it starts are children.
NOTEBOOK_RUN_ENV = "JUPYTER_MLOPS_NOTEBOOK_RUN"
NOTEBOOK_RUN_TAG = "jupyter_mlops.notebook_run"


# Set in a sweep's worker kernel: the runs it starts are trials of that sweep's parent.
PARENT_RUN_ENV = "JUPYTER_MLOPS_PARENT_RUN"


def _run_id_from_env(name: str) -> str | None:
    value = os.environ.get(name, "")
    return value if len(value) == 32 and all(c in "0123456789abcdef" for c in value) else None


def notebook_run_parent() -> str | None:
    """The notebook run this process runs under (its run id), or None."""
    return _run_id_from_env(NOTEBOOK_RUN_ENV)


MAX_TRACEBACK = 64 * 1024

_active: ContextVar[ActiveRun | None] = ContextVar("jupyter_mlops_active_run", default=None)
_main_thread_run: ActiveRun | None = None


class ActiveRun:
    """A run being recorded. Use it as a context manager to end it, whatever happens."""

    def __init__(self, store: Store, run_id: str, name: str | None, experiment: str) -> None:
        self.store = store
        self.run_id = run_id
        self.name = name
        self.experiment = experiment
        self.start_time = time.time()
        self.ended = False
        self.parent: ActiveRun | None = None
        self._token = None
        self._thread = threading.get_ident()

    @property
    def info(self) -> ActiveRun:
        """MLflow-style access: ``run.info.run_id``."""
        return self

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if not self.ended:
            if exc is None:
                _end(self, "FINISHED")
            else:
                status = ("KILLED" if isinstance(exc, (KeyboardInterrupt, pruning.TrialPruned))
                          else "FAILED")
                _end(self, status, exc)
        return False

    def __repr__(self) -> str:
        return f"<ActiveRun {self.run_id[:8]} {self.name!r} in {self.experiment!r}>"


def new_run_id() -> str:
    return uuid.uuid4().hex


def _parent_from_env(store: Store, tags: dict[str, str]) -> str | None:
    """The parent run a notebook run or a sweep's worker kernel names in the environment,
    if it is in ``store``: a notebook that switched to another store starts top-level runs
    there instead of naming a parent that store has never held."""
    notebook_run = notebook_run_parent()
    # A cell of a notebook run, else a trial in a sweep's worker kernel.
    parent_id = notebook_run if notebook_run is not None else _run_id_from_env(PARENT_RUN_ENV)
    if parent_id is None or not store.query("SELECT 1 FROM runs WHERE run_id = ?",
                                            (parent_id,)):
        return None
    if notebook_run is not None:
        tags[NOTEBOOK_RUN_TAG] = notebook_run
    return parent_id


def start_run(
    name: str | None = None,
    experiment: str = "default",
    tags: dict[str, Any] | None = None,
    *,
    nested: bool = False,
    store: Store | None = None,
    **origin: Any,
) -> ActiveRun:
    """Start a run and make it the active one.

    Examples
    --------
    >>> with start_run("baseline", experiment="iris") as run:   # doctest: +SKIP
    ...     log_param("C", 0.5)
    ...     log_metric("acc", 0.93)
    """
    global _main_thread_run
    parent = active_run()
    if parent is not None and not nested:
        raise ValidationError(
            f"Run {parent.run_id[:8]} ({parent.name!r}) is still active; end it with "
            "end_run(), or pass nested=True to start a child run."
        )
    if name is not None:
        check_name("Run name", name)
    check_name("Experiment name", experiment)
    checked_tags = {check_name("Tag key", k): check_tag(k, v) for k, v in (tags or {}).items()}
    parent_id = None if parent is None else parent.run_id
    store = store or get_store()
    if parent is None:
        parent_id = _parent_from_env(store, checked_tags)
    if parent_id is not None:
        checked_tags.setdefault("parent_run_id", parent_id)
    run = ActiveRun(store, new_run_id(), name, experiment)
    run.start_time = storage.create_run(
        store, run.run_id, experiment, name, checked_tags, parent_run_id=parent_id, **origin)
    run.parent = parent
    run._token = _active.set(run)
    if threading.current_thread() is threading.main_thread():
        _main_thread_run = run
    return run


def reopen_run(run_id: str, *, store: Store | None = None) -> ActiveRun:
    """Make a KILLED or FAILED run the active one again, RUNNING (a sweep resumed)."""
    global _main_thread_run
    store = store or get_store()
    if active_run() is not None:
        raise ValidationError("Another run is active; end it with end_run() before resuming "
                              f"run {run_id[:8]}.")
    row = store.query("SELECT r.name, e.name FROM runs r JOIN experiments e "
                      "USING (experiment_id) WHERE r.run_id = ?", (run_id,))
    if not row:
        raise ValidationError(f"No run {run_id[:8]} to resume.")
    storage.reopen_run(store, run_id)
    run = ActiveRun(store, run_id, row[0][0], row[0][1])
    run._token = _active.set(run)
    if threading.current_thread() is threading.main_thread():
        _main_thread_run = run
    return run


def active_run() -> ActiveRun | None:
    """The run that ``log_*`` calls go to, or None."""
    run = _active.get()
    if run is not None and not run.ended:
        return run
    if threading.current_thread() is threading.main_thread():
        fallback = _main_thread_run
        if fallback is not None and not fallback.ended:
            return fallback
    return None


def _end(run: ActiveRun, status: str, exc: BaseException | None = None, **extra: Any) -> None:
    if status not in TERMINAL_STATUSES:
        raise ValidationError(
            f"Run status must be FINISHED, FAILED or KILLED; got {shorten(status)}."
        )
    error_type = error = trace = None
    if exc is not None:
        error_type = type(exc).__name__
        error = _capped(str(exc))
        trace = _capped("".join(
            traceback_module.format_exception(type(exc), exc, exc.__traceback__)))
    run.ended = True
    try:
        storage.finish_run(
            run.store, run.run_id, status, error_type=error_type, error=error, traceback=trace,
            **extra
        )
    finally:
        _forget(run)


def _forget(run: ActiveRun) -> None:
    """Stop ``run`` being the active one (its parent, if still open, is again), writing
    nothing: for a run that ended, or whose start was rolled back with its transaction."""
    global _main_thread_run
    run.ended = True
    if _active.get() is run:
        _active.set(run.parent if run.parent is not None and not run.parent.ended else None)
    if _main_thread_run is run:
        _main_thread_run = run.parent if run.parent and not run.parent.ended else None


def _capped(text: str, limit: int = MAX_TRACEBACK) -> str:
    """``text`` storable as SQLite text and at most ``limit`` UTF-8 bytes.

    Lone surrogates (undecodable file names in an error) are escaped, or the store
    would refuse the whole run. A longer text keeps its head and its tail: the head has
    the outer frames with the cell's line, the tail the innermost frame and the message.
    """
    data = text.encode("utf-8", "backslashreplace")
    if len(data) <= limit:
        return data.decode("utf-8")
    keep = limit - 64  # room for the marker
    head = data[: keep // 2].decode("utf-8", "ignore")
    tail = data[len(data) - keep // 2:].decode("utf-8", "ignore")
    cut = len(data) - len(head.encode()) - len(tail.encode())
    return f"{head}\n[… {cut} bytes cut …]\n{tail}"


def end_run(status: str = "FINISHED") -> None:
    """End the active run with ``status`` (FINISHED, FAILED or KILLED); no-op without one."""
    run = active_run()
    if run is not None:
        _end(run, status)


def _run_for_logging() -> ActiveRun:
    # Like MLflow, logging with no active run starts one rather than losing the value.
    return active_run() or start_run()


def log_param(key: str, value: Any) -> None:
    """Record a hyperparameter. Params are write-once per run."""
    log_params({key: value})


def log_params(params: dict[str, Any]) -> None:
    """Record several params in one transaction."""
    encoded = {check_name("Param name", k): encode_param(k, v) for k, v in params.items()}
    run = _run_for_logging()
    storage.log_params(run.store, run.run_id, encoded)


def log_metric(key: str, value: float, step: int | None = None) -> None:
    """Record one value of a metric; ``step`` defaults to one past the last step of ``key``.

    NaN and ±inf are stored as such.
    """
    log_metrics({key: value}, step=step)


def log_metrics(metrics: dict[str, float], step: int | None = None) -> None:
    """Record several metric values at once, in one transaction."""
    step = metric_step(step, next(iter(metrics), None))
    values = [(check_name("Metric name", k), metric_value(k, v), step) for k, v in metrics.items()]
    run = _run_for_logging()
    storage.log_metrics(run.store, run.run_id, values, time.time())
    if pruning.watcher is not None:  # a sweep's trial: may raise TrialPruned
        pruning.watcher(metrics, step)


def set_tag(key: str, value: Any) -> None:
    """Set a tag (mutable, unlike params)."""
    set_tags({key: value})


def set_tags(tags: dict[str, Any]) -> None:
    """Set several tags at once (mutable, unlike params)."""
    checked = {check_name("Tag key", k): check_tag(k, v) for k, v in tags.items()}
    run = _run_for_logging()
    storage.set_tags(run.store, run.run_id, checked)


def log_artifact(path: str | os.PathLike[str], name: str | None = None) -> str:
    """Copy a file (or every file of a folder) into the store; returns the sha256 of the file."""
    source = Path(path)
    if not source.exists():
        raise ValidationError(f"No file {str(source)!r} to log; check the path.")
    run = _run_for_logging()
    files = [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file())
    digest = ""
    for file in files:
        relative = file.name if file == source else file.relative_to(source).as_posix()
        artifact_name = check_name("Artifact name", name if file == source and name else
                                   (f"{name}/{relative}" if name else relative))
        digest, size = run.store.artifacts.put_file(file)
        storage.add_artifact(run.store, run.run_id, artifact_name, "file", digest, size,
                               _media_type(artifact_name))
    return digest


def log_bytes(data: bytes, name: str, kind: str = "file", media_type: str | None = None) -> str:
    """Store bytes as an artifact of the active run; returns their sha256."""
    check_name("Artifact name", name)
    run = _run_for_logging()
    digest, size = run.store.artifacts.put_bytes(data)
    storage.add_artifact(run.store, run.run_id, name, kind, digest, size,
                         media_type or _media_type(name))
    return digest


def log_figure(figure: Any, name: str, dpi: int | None = None) -> str:
    """Save a matplotlib figure as a PNG artifact; returns its sha256."""
    if not hasattr(figure, "savefig"):
        raise ValidationError(
            f"log_figure takes a matplotlib Figure; got {type(figure).__name__}. "
            "Pass plt.gcf() or the figure returned by plt.subplots()."
        )
    if not name.lower().endswith(".png"):
        name += ".png"
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return log_bytes(buffer.getvalue(), name, kind="figure", media_type="image/png")


def log_dataset(data: Any, name: str, role: str = "input") -> str:
    """Fingerprint a DataFrame, Series, array or sparse matrix and link it to the run; returns
    the fingerprint.

    With ``role="train"`` a bounded sample (10,000 rows at most) is kept too: a model
    registered from the run takes it as its reference data.
    """
    from .datasets import fingerprint

    check_name("Dataset name", name)
    check_name("Dataset role", role)
    info = fingerprint(data)
    if info is None:
        raise ValidationError(
            f"log_dataset takes a pandas DataFrame or Series, a numpy array or a scipy sparse "
            f"matrix; got "
            f"{type(data).__name__}."
        )
    run = _run_for_logging()
    storage.add_datasets(run.store, run.run_id, [(name, role, info)])
    from .keeping import keep_inputs

    keep_inputs(run.store, [(name, role, info)], {name: data})
    if role == "train":
        # Keep a bounded sample, so a model registered from this run has reference data
        # for drift checks even once the notebook's variables are gone.
        from .datasets import sample_rows
        from ..store.serialize import dump

        digest, size = run.store.artifacts.put_bytes(dump(sample_rows(data), "Dataset sample"))
        storage.add_artifact(run.store, run.run_id, f"datasets/{name}.sample.pkl", "dataset_sample",
                               digest, size, "application/x-python-pickle", pickled=True)
    return info["fingerprint"]


def get_run(run_id: str):
    """The stored run with this id (or a unique prefix of it), with params, metrics and more.

    ``.environment`` is what its kernel session ran on (Python, platform, distributions, git
    commit); ``.system_metrics`` and ``metric_history("system.process_memory_rss_megabytes")``
    are what its cell used while it ran.
    """

    import dataclasses

    from .environment import session_environment

    flush_capture()  # its cell executions may still be on their way to the store
    store = get_store()
    run = storage.get_run(store, run_id)
    return dataclasses.replace(run, environment=session_environment(store, run.session_id))


def _media_type(name: str) -> str | None:
    import mimetypes

    return mimetypes.guess_type(name)[0]


__all__ = [
    "ActiveRun", "active_run", "end_run", "get_run", "log_artifact",
    "log_bytes", "log_dataset", "log_figure", "log_metric", "log_metrics", "log_param",
    "log_params", "set_tag", "set_tags", "start_run",
]
