"""XGBoost: the scikit-learn API (XGBClassifier, XGBRegressor, ...) and native Boosters.

- params: ``get_params()`` of a scikit-learn-API model (what ``mlflow.xgboost.autolog``
  logs through scikit-learn's autolog); for a Booster from ``xgb.train``, the training
  parameters its saved configuration holds that differ from a new Booster's, under
  XGBoost's own names (``max_depth``, ``eta``, ``objective``: the keys of the ``params``
  dict MLflow logs);
- histories: ``evals_result()`` as ``<data>-<metric>`` per boosting round, MLflow's names
  (``validation_0-logloss``); ``best_iteration`` and ``best_score`` after early stopping;
- importances: ``get_score`` for ``weight`` and ``gain``;
- native file: UBJSON (``save_model``), as MLflow's ``xgboost`` flavor writes it.

UBJSON and JSON model files are data that XGBoost's C++ parser reads: loading one runs no
Python code, so a planted file can at worst be a wrong model, which the sha256 of a
registered version and its signed row already refuse. They are signed anyway, like every
model file autolog keeps, so one rule covers all of them.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from .family import Family, Flavor, NativeFile
from .files import saved_bytes
from .sklearn import estimator_params

# Sections of a Booster's configuration that hold what it learned, not how it was trained.
_LEARNED = {"learner_model_param", "gbtree_model_param", "metrics"}


def _xgb() -> Any:
    return sys.modules["xgboost"]


def _flatten(config: Any, out: dict[str, Any]) -> dict[str, Any]:
    for key, item in config.items():
        if key in _LEARNED or key == "name":  # "name" says which section, many times
            continue
        if isinstance(item, dict):
            _flatten(item, out)
        elif not isinstance(item, list):
            out.setdefault(key, item)
    return out


def _value(text: Any) -> Any:
    """A configuration value as the number it writes, when it is one."""
    if not isinstance(text, str):
        return text
    try:
        return int(text)
    except ValueError:
        pass
    try:
        # XGBoost keeps parameters as float32 and writes 0.8 as 0.800000012.
        return float(f"{float(text):.7g}")
    except ValueError:
        return text


_defaults: dict[str, dict[str, Any]] = {}


def _default_config() -> dict[str, Any]:
    """A new Booster's configuration, flattened (once per XGBoost version)."""
    xgb = _xgb()
    if xgb.__version__ not in _defaults:
        fresh = xgb.Booster({"num_feature": 1})
        _defaults[xgb.__version__] = _flatten(json.loads(fresh.save_config()), {})
    return _defaults[xgb.__version__]


def booster_params(booster: Any) -> dict[str, Any]:
    """The training parameters in which ``booster`` differs from a new Booster."""
    config = json.loads(booster.save_config())
    trained = _flatten(config, {})
    default = _default_config()
    params = {key: _value(value) for key, value in trained.items()
              if default.get(key) != value}
    params["objective"] = config["learner"]["objective"]["name"]
    params["num_boost_round"] = booster.num_boosted_rounds()
    return params


def _objective(booster: Any) -> tuple[str, int]:
    learner = json.loads(booster.save_config())["learner"]
    return (learner["objective"]["name"],
            int(_value(learner["learner_model_param"].get("num_class", "0")) or 0))


def _dmatrix(booster: Any, X: Any) -> Any:
    xgb = _xgb()
    if isinstance(X, xgb.DMatrix):
        return X
    names = booster.feature_names
    if names is not None and not hasattr(X, "columns"):
        return xgb.DMatrix(X, feature_names=names)
    return xgb.DMatrix(X)


class XGBoostFamily(Family):
    name = "xgboost"
    modules = ("xgboost",)

    def _booster(self, value: Any) -> Any:
        return value if isinstance(value, _xgb().Booster) else value.get_booster()

    def recognises(self, value: Any) -> bool:
        xgb = _xgb()
        if isinstance(value, xgb.Booster):
            return value.num_boosted_rounds() > 0
        return isinstance(value, xgb.XGBModel) and value.__sklearn_is_fitted__()

    def params(self, value: Any) -> dict[str, Any]:
        if isinstance(value, _xgb().Booster):
            return booster_params(value)
        return estimator_params(value)

    def history_in_caller(self, value: Any) -> bool:
        return isinstance(value, _xgb().Booster)  # xgb.train fills evals_result=...

    def histories(self, value: Any) -> dict[str, list[float]]:
        if isinstance(value, _xgb().Booster):
            return {}
        try:
            results = value.evals_result()
        except _xgb().core.XGBoostError:  # trained without an eval_set
            return {}
        return {f"{data}-{metric}": list(values)
                for data, metrics in results.items() for metric, values in metrics.items()}

    def metrics(self, value: Any) -> dict[str, float]:
        booster = self._booster(value)
        attributes = booster.attributes()
        found = {}
        if "best_iteration" in attributes:
            found["best_iteration"] = int(attributes["best_iteration"])
            found["stopped_iteration"] = booster.num_boosted_rounds() - 1
        if "best_score" in attributes:
            found["best_score"] = float(attributes["best_score"])
        return found

    def importances(self, value: Any) -> dict[str, list[Any]] | None:
        booster = self._booster(value)
        names = booster.feature_names or [f"f{i}" for i in range(booster.num_features())]
        columns: dict[str, list[Any]] = {"feature": list(names)}
        for kind in ("weight", "gain"):
            scores = booster.get_score(importance_type=kind)
            columns[kind] = [float(scores.get(name, 0.0)) for name in names]
        return columns

    def native(self, value: Any) -> NativeFile:
        if isinstance(value, _xgb().Booster):
            return NativeFile("ubj", bytes(value.save_raw("ubj")))
        # The scikit-learn wrapper's own save_model keeps its attributes in the file.
        return NativeFile("ubj", saved_bytes(value.save_model, "model.ubj"))

    def predictor(self, value: Any) -> Any:
        if not isinstance(value, _xgb().Booster):
            return value
        from .sklearn_api import native_predictor  # scikit-learn, only when predicting

        objective, classes = _objective(value)

        def scores(X: Any) -> Any:
            return value.predict(_dmatrix(value, X))

        if objective in ("binary:logistic",):
            return native_predictor(value, "proba", scores, [0, 1])
        if objective == "multi:softprob":
            return native_predictor(value, "proba", scores, list(range(classes)))
        if objective == "binary:hinge":
            return native_predictor(value, "labels", scores, [0, 1])
        if objective == "multi:softmax":
            return native_predictor(value, "labels", scores, list(range(classes)))
        return native_predictor(value, "regression", scores)

    def plain_data(self, value: Any) -> Any:
        if not isinstance(value, _xgb().DMatrix):
            return None
        dense = value.get_data().toarray()
        if value.feature_names is None:
            return dense
        import pandas as pd

        return pd.DataFrame(dense, columns=list(value.feature_names))

    def signature(self, value: Any) -> dict[str, Any] | None:
        booster = self._booster(value)
        if booster.feature_names:
            return {"kind": "dataframe",
                    "columns": [{"name": str(n), "dtype": None} for n in booster.feature_names]}
        return {"kind": "ndarray", "dtype": None, "shape": [-1, booster.num_features()]}

    def flavor(self, model: Any) -> Flavor:
        cls = type(model)
        data = self.native(model).data
        return Flavor(
            "xgboost",
            {"code": None, "data": "model.ubj", "model_class": f"{cls.__module__}.{cls.__name__}",
             "model_format": "ubj", "xgb_version": _xgb().__version__},
            "mlflow.xgboost", {"data": "model.ubj"}, files={"model.ubj": data},
            packages=[("xgboost", "xgboost")])


FAMILY = XGBoostFamily()
