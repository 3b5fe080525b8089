"""What ``%%track`` logs by itself, read from the cell's AST and the namespace after it ran.

- names bound only to literals are params (``C = 0.5`` gives ``params.C``);
- other real numbers the cell binds are metrics (``acc = accuracy_score(...)``);
- trained models of every framework family already imported (``frameworks``: scikit-learn,
  XGBoost, LightGBM, CatBoost, Keras, PyTorch, statsmodels, transformers) give their params
  as ``<var>.<param>``, their training histories as metric histories, their feature
  importances as a table, and are saved as the run's model artifacts (pickle, and their
  native format beside it);
- DataFrames, Series and arrays the cell reads are fingerprinted as its inputs.

Explicit ``log_*`` calls made in the cell win: autolog never overwrites a key they set.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Collection, Mapping
from typing import Any

from . import storage
from .cellnames import CellNames
from ..errors import ModelSerializationError
from .datasets import data_kind, fingerprint
from .keeping import keep_inputs
from .frameworks import family_of
from .frameworks.record import ModelRecord, container_sources, record_models
from .frameworks.sklearn import fitted_estimator  # noqa: F401 - its former home
from .searches import SearchLog, read_searches, search_kind
from .training_metrics import cell_training_metrics
from ..store.serialize import dump
from ..store import Store, chunks
from ..validation import MAX_NAME_LENGTH, encode_param, metric_value

MODEL_MEDIA_TYPE = "application/x-python-pickle"
_SIMPLE = (type(None), bool, int, float, str)


def _is_simple(value: Any) -> bool:
    if isinstance(value, _SIMPLE):
        return True
    if isinstance(value, (list, tuple)):
        return len(value) <= 64 and all(isinstance(v, _SIMPLE) for v in value)
    return type(value).__module__ == "numpy" and getattr(value, "shape", None) == ()


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    return (type(value).__module__ == "numpy" and getattr(value, "shape", None) == ()
            and getattr(value, "dtype", None) is not None and value.dtype.kind in "iuf")


def input_datasets(names: CellNames, namespace: Mapping[str, Any], *, free_only: bool = True):
    """``(name, role, fingerprint)`` for the data the cell reads (roles from ``fit`` calls)."""
    roles: dict[str, str] = {}
    for x_name, y_name in names.fit_inputs:
        if x_name:
            roles.setdefault(x_name, "train")
        if y_name:
            roles.setdefault(y_name, "target")
    candidates = names.used if free_only else [n for n in roles if n not in names.used]
    found, sources = [], []
    for name in candidates:
        value = namespace.get(name)
        if value is None or data_kind(value) is None:
            continue
        info = fingerprint(value)
        if info is not None:
            found.append((name, roles.get(name, "input"), info))
            sources.extend(container_sources(value, roles.get(name), namespace))
    named = {name: role for name, role, _ in found}
    found.extend(s for s in sources if named.get(s[0], "input") == "input")
    return found


def _model_bytes(name: str, value: Any) -> bytes | None:
    try:
        return dump(value)
    except ModelSerializationError as exc:
        warnings.warn(f"Model {name!r}: {exc} Its params were logged.", stacklevel=2)
        return None


def early_params(names: CellNames) -> dict[str, str]:
    """Params known before the cell runs: literals it binds once at its top level.

    Logged when the run starts, so a running or failed run shows them. A name bound more
    than once, or inside a branch or loop, waits for the cell's end and its final value.
    """
    params: dict[str, str] = {}
    for name, literal in names.early_literals.items():
        if name.startswith("_") or len(name) > MAX_NAME_LENGTH or not _is_simple(literal):
            continue
        try:
            params[name] = encode_param(name, literal, warn=False)
        except ValueError:
            pass  # too long to be a param: autolog skips it, as at the cell's end
    return params


REBOUND_TAG = "params_rebound"


def _rebound(names: CellNames, namespace: Mapping[str, Any], logged: set[str]) -> list[str]:
    """Params logged at the run's start whose name the cell bound again out of sight of its
    source (``global`` in a function, ``exec``). Params are write-once: the run keeps the
    value the source gave, and a tag names these."""
    found = []
    for name, literal in names.early_literals.items():
        if name in logged and name in namespace:
            try:
                if bool(namespace[name] != literal):
                    found.append(name)
            except Exception:  # noqa: BLE001 - an object that cannot say: not a rebinding
                continue
    return sorted(found)


def run_models(models: list[tuple[str, Any, Any]], namespace: Mapping[str, Any], *,
               chosen: str | None = None, throwaway: Collection[str] = ()):
    """The run's own models among ``(name, model, family)`` the cell left bound.

    ``chosen`` (``%%track --model VAR``) is the run's model whatever else the cell fitted.
    Otherwise a name the cell fitted only inside loops (``partial`` in a learning curve)
    holds a throw-away: its fits are child runs, and it is the run's model only when the
    cell fitted nothing outside loops.
    """
    if chosen is not None:
        value = namespace.get(chosen)
        family = family_of(value) if value is not None else None
        return [(chosen, value, family)] if family is not None else models
    kept = [model for model in models if model[0] not in throwaway]
    return kept or models


def autolog(store: Store, run_id: str, names: CellNames, namespace: Mapping[str, Any], *,
            model: str | None = None, throwaway: Collection[str] = (),
            training_metrics: bool = True) -> dict:
    """Log what the cell bound; returns counts of what was logged, by kind.

    ``model`` and ``throwaway`` choose the run's model (see ``run_models``);
    ``training_metrics=False`` leaves out MLflow's training metrics (a prediction over the
    fit data): a sweep's trials skip them, as Optuna's trials under MLflow do."""
    existing_params = {k for (k,) in store.query(
        "SELECT key FROM params WHERE run_id = ?", (run_id,))}
    existing_metrics = {k for (k,) in store.query(
        "SELECT key FROM latest_metrics WHERE run_id = ?", (run_id,))}
    params: dict[str, str] = {}
    metrics: list[tuple[str, float, int]] = []
    models: list[tuple[str, Any, Any]] = []  # (name, model, its framework family)
    searches: list[tuple[str, Any]] = []

    explicit = existing_params | existing_metrics

    def add_param(key: str, value: Any) -> None:
        if key in explicit or key in params or len(key) > MAX_NAME_LENGTH:
            return
        try:
            params[key] = encode_param(key, value, warn=False)
        except ValueError:
            pass  # too long to be a param; autolog skips it rather than failing the run

    for name, literal in names.literals.items():
        if name.startswith("_") or name not in namespace or not _is_simple(literal):
            continue
        add_param(name, namespace[name] if _is_simple(namespace[name]) else literal)
    rebound = _rebound(names, namespace, existing_params)
    if rebound:
        storage.set_tags(store, run_id, {REBOUND_TAG: ", ".join(rebound)})

    # Objects the cell only called methods on count too: ``study.optimize(...)`` in a later
    # cell trains the study it did not bind.
    called = [name for name, *_ in names.method_calls]
    candidates = list(dict.fromkeys([*names.assigned, *names.fitted, *names.defined, *called]))
    for name in candidates:
        if name.startswith("_") or name not in namespace or name in names.literals:
            continue
        value = namespace[name]
        if name in names.assigned and _is_number(value):
            if name not in explicit:
                try:
                    metrics.append((name, metric_value(name, value), 0))
                except ValueError:
                    pass  # past what a float holds: autolog skips it, as a too-long param
        elif search_kind(value) is not None:  # its best model, never its base estimator
            searches.append((name, value))
        elif (family := family_of(value)) is not None:
            models.append((name, value, family))

    models = run_models(models, namespace, chosen=model, throwaway=throwaway)
    records = record_models(models, [*names.defined, *names.used], namespace)
    for (name, _, _), record in zip(models, records):
        for key, param in sorted(record.params.items()):
            if _is_simple(param) and not (isinstance(param, float) and math.isnan(param)):
                add_param(f"{name}.{key}", param)
        metrics.extend(record.metric_rows(name, {m[0] for m in metrics} | explicit))

    found = SearchLog()
    if searches or names.calls:
        (started,) = store.query("SELECT start_time FROM runs WHERE run_id = ?", (run_id,))[0]
        found = read_searches(searches, names, namespace, started)
    # A search's refitted best model is saved; its params came with the search's own.
    for name, best in found.models:
        if (family := family_of(best)) is not None:
            models.append((name, best, family))
            records.append(ModelRecord())
    trained, notes = cell_training_metrics(
        names, namespace, {**{name: model for name, model, _ in models}, **dict(searches)}
    ) if training_metrics else ({}, {})
    for key, value in found.params.items():
        add_param(key, value)
    taken = explicit | {key for key, _, _ in metrics}
    metrics += [(k, v, 0) for k, v in {**found.metrics, **trained}.items() if k not in taken]
    if notes:
        storage.set_tags(store, run_id, notes)
    storage.log_params(store, run_id, params)
    if metrics:
        import time

        storage.log_metrics(store, run_id, metrics, time.time())
    saved = 0
    for (name, model, family), record in zip(models, records):
        data = _model_bytes(name, family.saved(model))
        if data is not None:
            digest, pieces = chunks.digests(data)
            store.artifacts.put_bytes(data, digest)
            storage.add_artifact(store, run_id, f"model/{name}.pkl", "model", digest, len(data),
                                 MODEL_MEDIA_TYPE, pickled=True, chunks=pieces)
            saved += 1
        for artifact in record.artifacts:
            digest, size = store.artifacts.put_bytes(artifact.data)
            storage.add_artifact(store, run_id, artifact.name, artifact.kind, digest, size,
                               artifact.media_type, pickled=artifact.signed)
    outputs = input_datasets(names, namespace, free_only=False)
    if outputs:
        storage.add_datasets(store, run_id, outputs)
        keep_inputs(store, outputs, namespace)
    return {"params": len(params), "metrics": len(metrics), "models": saved, "rebound": rebound,
            "datasets": len(outputs), "children": found.write(store, run_id)}
