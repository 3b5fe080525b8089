"""Hyperparameters kept in a dict, as notebooks keep them, logged as params.

``params = {"max_depth": 6, "eta": 0.1}`` handed to ``xgb.train(params, dtrain)`` or
``model.fit(X, y, **params)``, a dict written inside such a call, and a dict bound to a name
ending in ``params`` (``best_params = {...}``) give one param per entry, under the entry's
own key as MLflow's XGBoost and LightGBM autolog log them (``max_depth``, ``eta``). Only
entries whose values are plain (numbers, strings, booleans, None, short lists of those)
count; a key the run already has (an explicit ``log_param``, another dict) keeps its value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import storage
from .cellnames import CellNames
from ..errors import ValidationError
from ..validation import check_name, encode_param


def dict_params(names: CellNames, namespace: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of the cell's dicts of hyperparameters, first dict first."""
    from .autolog import _is_simple

    sources: list[Any] = [namespace.get(n) for n in names.param_names]
    sources += [namespace.get(n) for n in names.dict_names if n.lower().endswith("params")]
    sources += names.param_literals
    found: dict[str, Any] = {}
    for source in sources:
        if not isinstance(source, dict) or not all(isinstance(k, str) for k in source):
            continue
        for key, value in source.items():
            if key not in found and _is_simple(value):
                found[key] = value
    return found


def log_dict_params(store: Any, run_id: str, names: CellNames,
                    namespace: Mapping[str, Any]) -> int:
    """Log ``dict_params`` to the run, leaving the keys it has alone; returns how many."""
    existing = {k for (k,) in store.query("SELECT key FROM params WHERE run_id = ?", (run_id,))}
    encoded = {}
    for key, value in dict_params(names, namespace).items():
        if key in existing:
            continue
        try:
            encoded[check_name("Param name", key)] = encode_param(key, value, warn=False)
        except (ValidationError, ValueError):
            continue  # a key or value no param can hold: skipped, as autolog skips them
    storage.log_params(store, run_id, encoded)
    return len(encoded)
