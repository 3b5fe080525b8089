"""Retraining: execute the training notebook in a fresh kernel, register what it produced,
and move an alias to the new version only when it is better on labelled data.

``monitor(retrain=NOTEBOOK)`` calls this on an alert; it can also be called by itself.
Every retraining is a ``retrains`` row, started before the notebook runs and finished
whatever happens, and its steps go to the monitor's trail when there is one.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ValidationError, shorten
from .trail import Trail, known_metric
from ..store import Store

#: Environment of a retraining notebook: the store, the model and the new data.
RETRAIN_ENV = ("JUPYTER_MLOPS_STORE", "JUPYTER_MLOPS_MODEL_URI", "JUPYTER_MLOPS_MONITOR_BATCH",
               "JUPYTER_MLOPS_MONITOR_LABELS")


@dataclass
class RetrainResult:
    """What one retraining did. ``status``: FINISHED, FAILED or UNCHANGED (same bytes)."""

    retrain_id: str
    notebook: str
    status: str
    old_version: int
    new_version: int | None = None
    run_id: str | None = None
    metric: str | None = None
    old_value: float | None = None
    new_value: float | None = None
    promoted: bool = False
    message: str = ""

    def __repr__(self) -> str:
        return f"<RetrainResult {self.status}: {self.message}>"


def _new_version(store: Store, name: str, before: int, started: float) -> tuple[int | None, str]:
    """The version the notebook registered, else one registered from its tracked run."""
    from ..registry.versions import register_model

    latest = store.query("SELECT max(version) FROM model_versions WHERE name = ?", (name,))[0][0]
    if latest is not None and latest > before:
        return latest, f"the notebook registered {name}/{latest}"
    runs = store.query(
        "SELECT r.run_id FROM runs r WHERE r.status = 'FINISHED' AND r.start_time >= ? AND "
        "EXISTS (SELECT 1 FROM artifacts a WHERE a.run_id = r.run_id AND a.kind = 'model') "
        "ORDER BY r.start_time DESC LIMIT 1", (started,))
    if not runs:
        return None, ("the notebook registered no new version of "
                      f"{name!r} and no tracked run of it saved a model")
    version = register_model(None, name, run_id=runs[0][0], store=store)
    if version.version <= before:
        return version.version, (f"the retrained model has the same bytes as {name}/"
                                 f"{version.version}")
    return version.version, f"registered {name}/{version.version} from run {runs[0][0][:8]}"


def retrain_model(
    uri: str,
    notebook: str | os.PathLike[str],
    *,
    promote: str | None = None,
    X: Any = None,
    y: Any = None,
    batch_path: str | None = None,
    labels: str | None = None,
    timeout: float = 600,
    store: Store | None = None,
    _trail: Trail | None = None,
) -> RetrainResult:
    """Execute the training ``notebook`` in a fresh kernel; with ``promote`` and labelled
    data (``X``, ``y``), move the URI's alias to the new version only if it is better.

    The notebook finds the store, the model and the new data in its environment (see
    :data:`RETRAIN_ENV`) and registers a new version of the model (or fits it in a
    ``%%track`` cell, which is then registered from that run). Both versions are compared on
    ``X``, ``y``: a notebook that trains on that same batch should hold part of it out.

    Examples
    --------
    >>> retrain_model("churn@champion", "train.ipynb", promote="roc_auc",
    ...               X=X_new, y=y_new)                                     # doctest: +SKIP
    <RetrainResult FINISHED: moved @champion from 3 to 4 (roc_auc 0.91 > 0.87)>
    """
    from ..registry.versions import get_model_version, load_model, parse_model_uri, set_alias
    from ..tracking.runner import run_notebook
    from ..store.current import get_store

    store = store or get_store()
    name, _number, alias = parse_model_uri(uri)
    if promote is not None:
        known_metric(promote, "--promote")
        if alias is None:
            raise ValidationError(f"--promote moves an alias; name the model by its alias "
                                  f"(name@champion), not {shorten(uri)}.")
    old = get_model_version(uri, store=store)
    trail = _trail or Trail(store, None, [])
    path = Path(notebook).resolve()
    result = RetrainResult(uuid.uuid4().hex, path.name, "RUNNING", old.version, metric=promote)
    before = store.query("SELECT max(version) FROM model_versions WHERE name = ?", (name,))[0][0]
    started = time.time()
    with store.write() as conn:
        conn.execute(
            "INSERT INTO retrains (retrain_id, monitor_id, started, name, notebook, status, "
            "old_version, metric) VALUES (?, ?, ?, ?, ?, 'RUNNING', ?, ?)",
            (result.retrain_id, trail.monitor_id, started, name, path.name, old.version,
             promote))
    try:
        env = {"JUPYTER_MLOPS_STORE": str(store.path), "JUPYTER_MLOPS_MODEL_URI": uri,
               "JUPYTER_MLOPS_MONITOR_BATCH": batch_path or "",
               "JUPYTER_MLOPS_MONITOR_LABELS": labels or ""}
        outcomes = run_notebook(path, env=env, timeout=timeout)
        failed = [o for o in outcomes if o.status != "ok" and not o.expected_error]
        if failed:
            result.status = "FAILED"
            result.message = f"cell {failed[0].index} of {path.name} failed: {failed[0].error}"
            trail("retrain", "failed", f"Retraining failed: {result.message}")
            return result
        trail("retrain", "ok", f"Executed {path.name} ({len(outcomes)} code cell(s)).")
        new_version, how = _new_version(store, name, before, started)
        if new_version is None or new_version <= before:
            result.status = "UNCHANGED" if new_version is not None else "FAILED"
            result.new_version = new_version
            result.message = how
            trail("register", "failed" if new_version is None else "skipped", f"{how}; nothing "
                  "to promote.")
            return result
        new = get_model_version(f"{name}/{new_version}", store=store)
        result.new_version, result.run_id = new.version, new.run_id
        trail("register", "ok", f"Retraining produced {name}/{new.version}: {how}.",
              {"version": new.version, "run_id": new.run_id})
        result.status = "FINISHED"
        result.message = f"retrained as {name}/{new.version}"
        if promote is None:
            return result
        if X is None or y is None or not len(y):
            trail("promote", "skipped", "No labelled data to compare the versions on; the "
                                        "alias did not move.")
            result.message += "; not promoted (no labelled data)"
            return result
        from ..evaluation import evaluate
        from ..evaluation.directions import higher_is_better

        scores = []
        for version in (old, new):
            evaluation = evaluate(load_model(version.uri, store=store), X, y, name="promote",
                                  model_uri=version.uri, importance=False)
            value = evaluation.metrics.get(promote)
            if value is None:
                raise ValidationError(f"{promote} was not computed for {version.uri} "
                                      f"({evaluation.task}); choose another --promote metric.")
            scores.append(value)
        result.old_value, result.new_value = scores
        higher = higher_is_better(promote) is not False
        better = (scores[1] > scores[0]) if higher else (scores[1] < scores[0])
        comparison = f"{promote} {scores[1]:.4g} vs {scores[0]:.4g} on {len(y):,} labelled rows"
        if better:
            set_alias(name, new.version, alias, store=store)
            result.promoted = True
            result.message = f"moved @{alias} from {old.version} to {new.version} ({comparison})"
            trail("promote", "ok", f"Moved {name}@{alias} from {old.version} to "
                                   f"{new.version}: {comparison}.",
                  {"metric": promote, "old": scores[0], "new": scores[1]})
        else:
            result.message = (f"kept @{alias} on {old.version}: {name}/{new.version} is not "
                              f"better ({comparison})")
            trail("promote", "kept", f"Kept {name}@{alias} on {old.version}: {name}/"
                                     f"{new.version} is not better ({comparison}).",
                  {"metric": promote, "old": scores[0], "new": scores[1]})
        return result
    except BaseException as exc:
        if result.status == "RUNNING":
            result.status = "FAILED"
            result.message = f"{type(exc).__name__}: {exc}"
            trail("retrain", "failed", f"Retraining stopped: {result.message}"[:500])
        raise
    finally:
        with store.write() as conn:
            conn.execute(
                "UPDATE retrains SET finished = ?, status = ?, new_version = ?, run_id = ?, "
                "old_value = ?, new_value = ?, promoted = ?, message = ? WHERE retrain_id = ?",
                (time.time(), result.status, result.new_version, result.run_id,
                 result.old_value, result.new_value, int(result.promoted), result.message,
                 result.retrain_id))
