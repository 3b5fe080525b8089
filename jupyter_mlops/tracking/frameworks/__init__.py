"""The model families autolog recognises, one module per family, importing none of them.

A family is consulted only when its framework's module is already in ``sys.modules``, so
a cell that never imported xgboost pays nothing for xgboost and nothing here imports a
framework to find out. The order matters: a family whose models are also scikit-learn
estimators (XGBClassifier, LGBMRegressor, CatBoost) comes before ``sklearn``.

``family_of`` finds a value's family; ``predictor`` gives any recognised model
scikit-learn's ``predict`` API (a native Booster predicts from a DataFrame as an
XGBClassifier does), which evaluation, serving, replay and drift use; ``plain_data``
turns a framework's own data container (DMatrix, lgb.Dataset) into a DataFrame or array.
"""

from __future__ import annotations

import importlib
from typing import Any

from .family import Family, Flavor, NativeFile

__all__ = ["Family", "Flavor", "NativeFile", "data_sources", "family_named", "family_of",
           "plain_data", "predictor"]

_ORDER = ("xgboost", "lightgbm", "catboost", "keras", "transformers", "torch", "statsmodels",
          "sklearn")
_families: dict[str, Family] = {}


def _family(module: str) -> Family:
    if module not in _families:
        _families[module] = importlib.import_module(f"{__name__}.{module}").FAMILY
    return _families[module]


def loaded_families() -> list[Family]:
    """The families whose framework is imported, in the order they are asked."""
    return [family for family in map(_family, _ORDER) if family.loaded()]


def family_named(name: str | None) -> Family | None:
    """The family a registered version names as its framework (None when unknown)."""
    for module in _ORDER:
        family = _family(module)
        if family.name == name or module == name:
            return family
    return None


def family_of(value: Any) -> Family | None:
    """The family of a trained model, or None for anything else."""
    if value is None or isinstance(value, type):
        return None
    for family in loaded_families():
        try:
            if family.recognises(value):
                return family
        except Exception:  # noqa: BLE001 - an odd object is simply not a model of ours
            continue
    return None


def predictor(model: Any) -> Any:
    """``model`` behind scikit-learn's predict API (itself when it has it already)."""
    family = family_of(model)
    return family.predictor(model) if family is not None else model


def data_sources(value: Any) -> list[tuple[Any, str]]:
    """The objects a data container (an lgb.Dataset) was built from, with their roles."""
    for family in loaded_families():
        found = family.sources(value)
        if found:
            return found
    return []


def plain_data(value: Any) -> Any:
    """A DMatrix or lgb.Dataset as a DataFrame or array; anything else unchanged."""
    for family in loaded_families():
        converted = family.plain_data(value)
        if converted is not None:
            return converted
    return value
