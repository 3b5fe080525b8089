"""LightGBM: the scikit-learn API (LGBMClassifier, LGBMRegressor, ...) and native Boosters.

- params: ``get_params()`` of a scikit-learn-API model; for a Booster from ``lgb.train``,
  the ``params`` it was trained with, the dict ``mlflow.lightgbm.autolog`` logs;
- histories: ``evals_result_`` (or the dict ``lgb.record_evaluation`` filled for a Booster)
  as ``<data>-<metric>`` per round, MLflow's names (``valid_0-binary_logloss``);
  ``best_iteration`` and ``stopped_iteration`` after early stopping;
- importances: ``feature_importance`` by ``split`` and ``gain``;
- native file: the model as LightGBM's text format (``model_to_string``), which MLflow's
  ``lightgbm`` flavor writes for a Booster (a scikit-learn-API model is exported as its
  pickle, as MLflow does: the text file does not keep the wrapper's classes).

LightGBM's text format is parsed by its C++ library and runs no Python code when loaded, so
a planted file can only be a wrong model, which a registered version's sha256 and signed row
refuse. It is signed like every model file autolog keeps.
"""

from __future__ import annotations

import sys
from typing import Any

from ...errors import ValidationError
from .family import Family, Flavor, NativeFile
from .sklearn import estimator_params, pickle_flavor


def _lgb() -> Any:
    return sys.modules["lightgbm"]


def _header(booster: Any) -> dict[str, str]:
    """The ``key=value`` lines heading the model's text (its objective, its classes)."""
    text = booster.model_to_string(num_iteration=1)
    head = text.split("\nTree=", 1)[0]
    return dict(line.split("=", 1) for line in head.splitlines() if "=" in line)


class LightGBMFamily(Family):
    name = "lightgbm"
    modules = ("lightgbm",)

    def _booster(self, value: Any) -> Any:
        return value if isinstance(value, _lgb().Booster) else value.booster_

    def recognises(self, value: Any) -> bool:
        lgb = _lgb()
        if isinstance(value, lgb.Booster):
            return value.current_iteration() > 0
        return isinstance(value, lgb.LGBMModel) and value.__sklearn_is_fitted__()

    def params(self, value: Any) -> dict[str, Any]:
        if isinstance(value, _lgb().Booster):
            return dict(value.params or {})
        return estimator_params(value)

    def history_in_caller(self, value: Any) -> bool:
        return isinstance(value, _lgb().Booster)  # lgb.record_evaluation(d) fills d

    def histories(self, value: Any) -> dict[str, list[float]]:
        if isinstance(value, _lgb().Booster):
            return {}
        return {f"{data}-{metric}": list(values)
                for data, metrics in (value.evals_result_ or {}).items()
                for metric, values in metrics.items()}

    def metrics(self, value: Any) -> dict[str, float]:
        booster = self._booster(value)
        best = booster.best_iteration
        if not best:  # 0: trained without early stopping
            return {}
        return {"best_iteration": best, "stopped_iteration": booster.current_iteration() - 1}

    def importances(self, value: Any) -> dict[str, list[Any]]:
        booster = self._booster(value)
        return {"feature": list(booster.feature_name()),
                "split": booster.feature_importance("split").tolist(),
                "gain": booster.feature_importance("gain").tolist()}

    def native(self, value: Any) -> NativeFile:
        return NativeFile("txt", self._booster(value).model_to_string().encode(), "text/plain")

    def predictor(self, value: Any) -> Any:
        if not isinstance(value, _lgb().Booster):
            return value
        from .sklearn_api import native_predictor  # scikit-learn, only when predicting

        header = _header(value)
        objective = header.get("objective", "").split(" ", 1)[0]

        def scores(X: Any) -> Any:
            return value.predict(self.plain_data(X) if self.plain_data(X) is not None else X)

        if objective == "binary":
            return native_predictor(value, "proba", scores, [0, 1])
        if objective in ("multiclass", "multiclassova"):
            return native_predictor(value, "proba", scores,
                                    list(range(int(header.get("num_class", "1")))))
        return native_predictor(value, "regression", scores)

    def plain_data(self, value: Any) -> Any:
        if not isinstance(value, _lgb().Dataset):
            return None
        if value.data is None:
            raise ValidationError(
                "This lgb.Dataset no longer holds its rows: LightGBM frees them once it has "
                "trained on it. Pass the DataFrame or array itself, or build the Dataset with "
                "free_raw_data=False.")
        return value.data

    def sources(self, value: Any) -> list[tuple[Any, str]]:
        # Its rows are freed once trained on: the objects it came from can still be read.
        if not isinstance(value, _lgb().Dataset) or value.data is None:
            return []
        return [(value.data, "train"), (value.label, "target")]

    def signature(self, value: Any) -> dict[str, Any]:
        booster = self._booster(value)
        names = booster.feature_name()
        if names and names != [f"Column_{i}" for i in range(len(names))]:
            return {"kind": "dataframe",
                    "columns": [{"name": str(n), "dtype": None} for n in names]}
        return {"kind": "ndarray", "dtype": None, "shape": [-1, booster.num_feature()]}

    def flavor(self, model: Any) -> Flavor:
        cls = type(model)
        details = {"code": None, "lgb_version": _lgb().__version__,
                   "model_class": f"{cls.__module__}.{cls.__name__}"}
        packages = [("lightgbm", "lightgbm")]
        if not isinstance(model, _lgb().Booster):
            return pickle_flavor("lightgbm", "mlflow.lightgbm",
                                 {**details, "data": "model.pkl",
                                  "serialization_format": "pickle"},
                                 packages + [("scikit-learn", "sklearn"), ("cloudpickle", "")])
        return Flavor("lightgbm", {**details, "data": "model.lgb"}, "mlflow.lightgbm",
                      {"data": "model.lgb"}, files={"model.lgb": self.native(model).data},
                      packages=packages)


FAMILY = LightGBMFamily()
