"""Which execution made a model: the lineage a new version is registered with.

The object itself says it best. The kernel's capture remembers, for each name, the object it
held at the end of each execution, so the execution that bound the model (or last changed
it in place, as ``model.fit(X, y)`` does) is found by identity, failed executions included:
a cell that fits a Lasso and fails three lines later made that Lasso, not the earlier Ridge
cell that bound the same name. Without that memory (the object was bound before the
extension was loaded) the binding order of the execution log decides.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from ..errors import NotFoundError, ValidationError
from ..store import Store
from ..tracking.capture import current_session_id, execution_of, user_namespace


@dataclass(frozen=True)
class Origin:
    """The execution a model comes from, as the registry records it."""

    cell: int
    run_id: str | None
    execution_count: int | None
    status: str
    error: str | None


def variable_of(model: Any) -> str | None:
    """The notebook name that holds ``model`` itself (not a copy), if any."""
    names = [name for name, value in user_namespace().items()
             if value is model and not name.startswith("_")]
    return names[0] if len(names) == 1 else None


def find_origin(store: Store, model: Any, variable: str | None) -> Origin | None:
    """The execution that made ``model``, bound to ``variable`` in this kernel."""
    if variable is None:
        return None
    known = execution_of(variable, model, store) if model is not None else None
    if known is not None:
        cell = known[0]
    else:
        cell = _latest_binding(store, variable)
        if cell is None:
            return None
    rows = store.query("SELECT id, run_id, execution_count, status, error FROM cells "
                       "WHERE id = ?", (cell,))
    return Origin(*rows[0]) if rows else None


def _latest_binding(store: Store, variable: str) -> int | None:
    """The latest execution of this kernel that bound ``variable`` or changed its object
    in place, in the order they ran: a failed one counts for the statements it ran, and
    the running one (a cell that registers what it just fitted) for its source."""
    session = current_session_id()
    if not session:
        return None
    rows = store.query(
        "SELECT c.id FROM cells c WHERE c.session_id = ? AND (c.status IN ('ok', 'running') OR "
        "(c.status IN ('error', 'interrupted') AND c.statements_run > 0)) AND ("
        "EXISTS (SELECT 1 FROM json_each(c.defined) WHERE value = ?) OR "
        "EXISTS (SELECT 1 FROM json_each(c.modified) WHERE value = ?)) "
        "ORDER BY c.id DESC LIMIT 1", (session, variable, variable))
    return rows[0][0] if rows else None


def refuse_unfitted(model: Any, label: str, origin: Origin | None) -> None:
    """Raise when ``model`` is an estimator that was never fitted, with the reason."""
    reason = _unfitted(model)
    if reason is None:
        return
    where = ""
    if origin is not None and origin.status != "ok":
        count = f"In[{origin.execution_count}]" if origin.execution_count else "its cell"
        error = (origin.error or origin.status).split("\n", 1)[0][:120]
        where = f" Its cell {count} failed ({error}), which may have stopped its fit."
    raise ValidationError(
        f"{label} ({type(model).__name__}) is not fitted: {reason}.{where} Nothing was "
        "registered; fit it, then register it."
    )


def _unfitted(model: Any) -> str | None:
    """Why ``model`` is not fitted, for the model families that can tell; else None."""
    if "sklearn" in sys.modules:
        from sklearn.base import BaseEstimator
        from sklearn.exceptions import NotFittedError
        from sklearn.utils.validation import check_is_fitted

        if isinstance(model, BaseEstimator):
            try:
                check_is_fitted(model)
            except NotFittedError:
                return "it holds no fitted attributes"
            except TypeError:
                return None
            return None
    is_fitted = getattr(model, "is_fitted", None)  # CatBoost
    if callable(is_fitted) and type(model).__module__.startswith("catboost"):
        return None if is_fitted() else "is_fitted() is False"
    return None


def _run_label(store: Store, run_id: str) -> str:
    (name, status, count, cell_id), = store.query(
        "SELECT name, status, execution_count, cell_id FROM runs WHERE run_id = ?", (run_id,))
    where = [f"In[{count}]" if count is not None else None,
             f"cell {cell_id}" if cell_id else None]
    place = ", ".join(w for w in where if w)
    return f"run {run_id[:8]}{f' {name!r}' if name else ''}{f' ({place})' if place else ''}"


def default_run(store: Store) -> tuple[str, str]:
    """The run ``register NAME`` takes when told no model: the latest finished run that
    saved one, this kernel's first; and a line saying which, and which later run of this
    kernel it passed over (one that failed, or saved no model). Child runs (a search's
    candidates, the fits of one cell) are parts of their run, never taken on their own."""
    session = current_session_id()
    query = ("SELECT r.run_id FROM runs r JOIN artifacts a ON a.run_id = r.run_id "
             "AND a.kind = 'model' WHERE r.status = 'FINISHED' "
             "AND r.parent_run_id IS NULL {} ORDER BY r.start_time DESC LIMIT 1")
    rows = store.query(query.format("AND r.session_id = ?"), (session,)) if session else []
    rows = rows or store.query(query.format(""))
    latest = store.query("SELECT run_id, status FROM runs WHERE session_id = ? "
                         "AND parent_run_id IS NULL ORDER BY start_time DESC LIMIT 1",
                         (session,)) if session else []
    if not rows:
        skipped = ""
        if latest:
            skipped = f" The latest run, {_run_label(store, latest[0][0])}, is {latest[0][1]}."
        raise NotFoundError(
            f"No finished run has saved a model yet.{skipped} Fit an estimator in a %%track "
            "cell, or pass the model: register_model(model, name) (%mlops register NAME "
            "--var VAR)."
        )
    run_id = rows[0][0]
    note = (f"Registering the model saved by {_run_label(store, run_id)}, the latest finished "
            "run that saved one.")
    if latest and latest[0][0] != run_id:
        later, status = latest[0]
        why = "saved no model" if status == "FINISHED" else f"is {status}"
        note += (f" The latest run, {_run_label(store, later)}, {why}; to register a model "
                 "it holds, name it: --var VAR.")
    return run_id, note
