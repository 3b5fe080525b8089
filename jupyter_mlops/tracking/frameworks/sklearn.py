"""scikit-learn: fitted estimators, and the scikit-learn API other families share.

Params are ``get_params(deep=True)``, the names ``mlflow.sklearn.autolog`` logs. A tree
ensemble's ``feature_importances_`` become a table. The model is its pickle (MLflow's
``sklearn`` flavor is a pickle too), so there is no native file.
"""

from __future__ import annotations

import sys
import weakref
from typing import Any

from .family import Family, Flavor


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


def estimator_params(value: Any) -> dict[str, Any]:
    """``get_params(deep=True)``, as scikit-learn-API models of every family have it.

    For a class that keeps ``BaseEstimator``'s own ``get_params``, the same dict built
    from its param names read once per class: scikit-learn reads them from the
    ``__init__`` signature at every call, which costs more than the rest of a sweep
    trial's autolog of the model."""
    names = _param_names(type(value))
    if names is None:
        return dict(value.get_params(deep=True))
    found: dict[str, Any] = {}
    for key in names:
        item = getattr(value, key)
        if hasattr(item, "get_params") and not isinstance(item, type):
            found.update((f"{key}__{k}", v) for k, v in (
                estimator_params(item) if _param_names(type(item)) is not None
                else item.get_params()).items())
        found[key] = item
    return found


_PARAM_NAMES: weakref.WeakKeyDictionary[type, tuple[Any, list[str] | None]] = (
    weakref.WeakKeyDictionary())


def _param_names(cls: type) -> list[str] | None:
    """The param names of a class whose ``get_params`` is ``BaseEstimator``'s, else None
    (its own ``get_params`` is called)."""
    try:
        cached = _PARAM_NAMES.get(cls)
    except TypeError:
        return None
    if cached is not None and cached[0] is cls.__init__:
        return cached[1]
    names = None
    if "sklearn" in sys.modules:
        from sklearn.base import BaseEstimator

        plain = (isinstance(cls, type) and issubclass(cls, BaseEstimator)
                 and cls.get_params is BaseEstimator.get_params
                 and getattr(cls._get_param_names, "__func__", None)
                 is BaseEstimator._get_param_names.__func__)
        names = list(cls._get_param_names()) if plain else None
    try:
        _PARAM_NAMES[cls] = (cls.__init__, names)
    except TypeError:
        pass
    return names


def feature_names(value: Any, count: int | None = None) -> list[str]:
    """The names the model was fitted with (``feature_names_in_``), else ``x0, x1, ...``."""
    names = getattr(value, "feature_names_in_", None)
    if names is not None:
        return [str(n) for n in names]
    count = count if count is not None else int(getattr(value, "n_features_in_", 0) or 0)
    return [f"x{i}" for i in range(count)]


def importance_table(value: Any, columns: dict[str, Any]) -> dict[str, list[Any]] | None:
    """``{"feature": names, kind: values, ...}`` with one row per feature."""
    columns = {kind: [float(v) for v in values] for kind, values in columns.items()
               if values is not None}
    if not columns:
        return None
    width = len(next(iter(columns.values())))
    return {"feature": feature_names(value, width)[:width], **columns}


def pickle_flavor(name: str, loader_module: str, details: dict[str, Any],
                  packages: list[tuple[str, str]], pyfunc: dict[str, Any] | None = None,
                  file_name: str = "model.pkl") -> Flavor:
    """A flavor whose model file is the registered pickle itself."""
    return Flavor(name, details, loader_module, pyfunc or {"data": file_name},
                  pickled=file_name, packages=packages)


class SklearnFamily(Family):
    name = "sklearn"
    modules = ("sklearn",)

    def recognises(self, value: Any) -> bool:
        return fitted_estimator(value)

    def params(self, value: Any) -> dict[str, Any]:
        return estimator_params(value)

    def importances(self, value: Any) -> dict[str, list[Any]] | None:
        values = getattr(value, "feature_importances_", None)
        if values is None or getattr(values, "ndim", 1) != 1:
            return None
        return importance_table(value, {"importance": values})

    def flavor(self, model: Any) -> Flavor:
        version = getattr(sys.modules.get("sklearn"), "__version__", "unknown")
        return pickle_flavor("sklearn", "mlflow.sklearn",
                             {"code": None, "pickled_model": "model.pkl",
                              "serialization_format": "pickle", "sklearn_version": version},
                             [("scikit-learn", "sklearn"), ("cloudpickle", "")],
                             {"model_path": "model.pkl", "predict_fn": "predict"})


FAMILY = SklearnFamily()
