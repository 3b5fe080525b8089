"""What ``%%track`` logs by itself, read from the cell's AST and the namespace after it ran.

- names bound only to literals are params (``C = 0.5`` gives ``params.C``);
- other real numbers the cell binds are metrics (``acc = accuracy_score(...)``);
- fitted scikit-learn estimators give their ``get_params()`` as ``<var>.<param>`` params and
  are saved as the run's model artifacts;
- DataFrames, Series and arrays the cell reads are fingerprinted as its inputs.

Explicit ``log_*`` calls made in the cell win: autolog never overwrites a key they set.
"""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Mapping
from typing import Any

from .cellnames import CellNames
from ..errors import ModelSerializationError
from .datasets import data_kind, fingerprint
from ..store.serialize import dump
from ..store import Store
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


def fitted_estimator(value: Any) -> bool:
    """A fitted scikit-learn estimator instance; never imports scikit-learn itself."""
    if "sklearn" not in sys.modules or isinstance(value, type):
        return False
    from sklearn.base import BaseEstimator
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    if not isinstance(value, BaseEstimator):
        return False
    try:
        check_is_fitted(value)
    except (NotFittedError, TypeError):
        return False
    return True


def input_datasets(names: CellNames, namespace: Mapping[str, Any], *, free_only: bool = True):
    """``(name, role, fingerprint)`` for the data the cell reads (roles from ``fit`` calls)."""
    roles: dict[str, str] = {}
    for x_name, y_name in names.fit_inputs:
        if x_name:
            roles.setdefault(x_name, "train")
        if y_name:
            roles.setdefault(y_name, "target")
    candidates = names.used if free_only else [n for n in roles if n not in names.used]
    found = []
    for name in candidates:
        value = namespace.get(name)
        if value is None or data_kind(value) is None:
            continue
        info = fingerprint(value)
        if info is not None:
            found.append((name, roles.get(name, "input"), info))
    return found


def _model_bytes(name: str, value: Any) -> bytes | None:
    try:
        return dump(value)
    except ModelSerializationError as exc:
        warnings.warn(f"Model {name!r}: {exc} Its params were logged.", stacklevel=2)
        return None


def autolog(store: Store, run_id: str, names: CellNames, namespace: Mapping[str, Any]) -> dict:
    """Log what the cell bound; returns counts of what was logged, by kind."""
    existing_params = {k for (k,) in store.query(
        "SELECT key FROM params WHERE run_id = ?", (run_id,))}
    existing_metrics = {k for (k,) in store.query(
        "SELECT key FROM latest_metrics WHERE run_id = ?", (run_id,))}
    params: dict[str, str] = {}
    metrics: list[tuple[str, float, int]] = []
    models: list[tuple[str, Any]] = []

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

    candidates = list(dict.fromkeys([*names.assigned, *names.fitted, *names.defined]))
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
        elif fitted_estimator(value):
            models.append((name, value))
            for key, param in sorted(value.get_params(deep=True).items()):
                if _is_simple(param) and not (isinstance(param, float) and math.isnan(param)):
                    add_param(f"{name}.{key}", param)

    store.log_params(run_id, params)
    if metrics:
        import time

        store.log_metrics(run_id, metrics, time.time())
    saved = 0
    for name, model in models:
        data = _model_bytes(name, model)
        if data is None:
            continue
        digest, size = store.artifacts.put_bytes(data)
        store.add_artifact(run_id, f"model/{name}.pkl", "model", digest, size, MODEL_MEDIA_TYPE,
                           pickled=True)
        saved += 1
    outputs = input_datasets(names, namespace, free_only=False)
    if outputs:
        store.add_datasets(run_id, outputs)
    return {"params": len(params), "metrics": len(metrics), "models": saved,
            "datasets": len(outputs)}
