"""CatBoost: CatBoostClassifier, CatBoostRegressor and CatBoost models.

MLflow has no CatBoost autolog; its ``catboost`` flavor is what export writes.

- params: ``get_params()``, the parameters set explicitly;
- histories: ``get_evals_result()`` as ``<data>-<metric>`` per iteration
  (``learn-Logloss``, ``validation-Logloss``); ``best_iteration`` when a validation set
  was given;
- importances: ``get_feature_importance()`` (CatBoost's default, PredictionValuesChange);
- native file: ``.cbm``, CatBoost's binary format, as MLflow's flavor writes it.

A ``.cbm`` file is read by CatBoost's C++ library and runs no Python code when loaded: a
planted one can only be a wrong model, which a registered version's sha256 and signed row
refuse. It is signed like every model file autolog keeps.
"""

from __future__ import annotations

import sys
from typing import Any

from .family import Family, Flavor, NativeFile
from .files import saved_bytes


def _cb() -> Any:
    return sys.modules["catboost"]


class CatBoostFamily(Family):
    name = "catboost"
    modules = ("catboost",)

    def recognises(self, value: Any) -> bool:
        return isinstance(value, _cb().CatBoost) and value.is_fitted()

    def params(self, value: Any) -> dict[str, Any]:
        return dict(value.get_params())

    def histories(self, value: Any) -> dict[str, list[float]]:
        return {f"{data}-{metric}": list(values)
                for data, metrics in value.get_evals_result().items()
                for metric, values in metrics.items()}

    def metrics(self, value: Any) -> dict[str, float]:
        best = value.get_best_iteration()
        return {} if best is None else {"best_iteration": best}

    def importances(self, value: Any) -> dict[str, list[Any]]:
        return {"feature": list(value.feature_names_),
                "importance": value.get_feature_importance().tolist()}

    def native(self, value: Any) -> NativeFile:
        return NativeFile("cbm", saved_bytes(lambda path: value.save_model(path, format="cbm"),
                                             "model.cbm"))

    def signature(self, value: Any) -> dict[str, Any]:
        names = list(value.feature_names_)
        if names == [str(i) for i in range(len(names))]:  # trained on an array
            return {"kind": "ndarray", "dtype": None, "shape": [-1, len(names)]}
        return {"kind": "dataframe", "columns": [{"name": n, "dtype": None} for n in names]}

    def flavor(self, model: Any) -> Flavor:
        return Flavor("catboost",
                      {"catboost_version": _cb().__version__, "code": None, "data": "model.cb",
                       "model_type": type(model).__name__, "save_format": "cbm"},
                      "mlflow.catboost", {"data": "model.cb"},
                      files={"model.cb": self.native(model).data},
                      packages=[("catboost", "catboost")])


FAMILY = CatBoostFamily()
