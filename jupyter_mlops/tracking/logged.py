"""What a tracked cell logged, in one line, so a run is visible where it was made.

``logged run iris-rf (a967484a): 2 params, 1 metric, model, 1 figure`` follows each
``%%track`` cell; ``%%track -q`` or ``JUPYTER_MLOPS_SUMMARY=off`` turns it off.
"""

from __future__ import annotations

import os

from . import storage
from .training_metrics import PREFIX as TRAINING_PREFIX
from ..store import Store

SUMMARY_SETTING = "JUPYTER_MLOPS_SUMMARY"
_OFF = {"0", "off", "false", "no"}


def summary_enabled() -> bool:
    """False when ``JUPYTER_MLOPS_SUMMARY`` is ``off`` (or 0, false, no)."""
    return os.environ.get(SUMMARY_SETTING, "on").strip().lower() not in _OFF


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def logged_line(store: Store, run_id: str) -> str:
    """One line: the run's name, short id, status if it did not finish, and what it holds.

    Examples
    --------
    >>> logged_line(store, run_id)                                   # doctest: +SKIP
    'logged run iris-rf (a967484a): 2 params, 1 metric, model (19 params), 1 figure'

    The cell's own params and metrics come first; the model's params and MLflow's
    ``training_*`` metrics are counted with the model.
    """
    run = storage.get_run(store, run_id)
    (children,) = store.query("SELECT count(*) FROM runs WHERE parent_run_id = ?",
                              (run_id,))[0]
    models = run.model_names
    figures = sum(1 for a in run.artifacts if a.kind == "figure")
    own = [key for key in run.params if run.model_of(key) is None]
    trained = [key for key in run.metrics if key.startswith(TRAINING_PREFIX)]
    parts = [_count(len(own), "param"), _count(len(run.metrics) - len(trained), "metric")]
    if models:
        inner = [_count(len(run.params) - len(own), "param")] if len(own) < len(run.params) else []
        if trained:
            inner.append(_count(len(trained), "training metric"))
        what = "model" if len(models) == 1 else f"{len(models)} models"
        parts.append(f"{what} ({', '.join(inner)})" if inner else what)
    if figures:
        parts.append(_count(figures, "figure"))
    if children:
        parts.append(_count(children, "child run"))
    status = "" if run.status == "FINISHED" else f"{run.status.lower()} "
    label = f"{run.name} ({run_id[:8]})" if run.name else run_id[:8]
    return f"logged {status}run {label}: {', '.join(parts)}"


__all__ = ["SUMMARY_SETTING", "logged_line", "summary_enabled"]
