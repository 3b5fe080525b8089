"""statsmodels: fitted results (``sm.OLS(y, X).fit()``, ``smf.logit(...).fit()``, ...).

- params: the model's class, its formula when it has one, and the results' covariance type
  (MLflow logs the arguments of ``fit``, which are gone once the cell has run);
- metrics: the numbers ``mlflow.statsmodels.autolog`` logs, by the same names (``aic``,
  ``bic``, ``rsquared``, ``llf``, ...), when the results have them;
- importances: the coefficient table (estimate, standard error, p-value per term);
- text: ``summary()``, as MLflow's ``model_summary.txt``;
- no native file: statsmodels saves results with pickle, so the registered pickle is its
  own format, and MLflow's ``statsmodels`` flavor is that pickle.

A Logit or Probit model predicts the probability of class 1: evaluation and serving see a
binary classifier; every other model is a regressor.
"""

from __future__ import annotations

import sys
from typing import Any

from .family import Family, Flavor
from .sklearn import pickle_flavor

# mlflow.statsmodels' _autolog_metric_allowlist.
METRICS = ("aic", "bic", "centered_tss", "condition_number", "df_model", "df_resid", "ess",
           "f_pvalue", "fvalue", "llf", "mse_model", "mse_resid", "mse_total", "rsquared",
           "rsquared_adj", "scale", "ssr", "uncentered_tss")
_BINARY = ("Logit", "Probit")


class StatsmodelsFamily(Family):
    name = "statsmodels"
    modules = ("statsmodels.base.wrapper",)

    def recognises(self, value: Any) -> bool:
        wrapper = sys.modules["statsmodels.base.wrapper"]
        return isinstance(value, wrapper.ResultsWrapper) and hasattr(value, "model")

    def params(self, value: Any) -> dict[str, Any]:
        model = value.model
        found: dict[str, Any] = {"model_class": type(model).__name__}
        formula = getattr(model, "formula", None)
        if isinstance(formula, str):
            found["formula"] = formula
        cov_type = getattr(value, "cov_type", None)
        if isinstance(cov_type, str):
            found["cov_type"] = cov_type
        return found

    def metrics(self, value: Any) -> dict[str, float]:
        found = {}
        for name in METRICS:
            try:
                number = getattr(value, name, None)
            except Exception:  # noqa: BLE001 - some statistics fail for some models
                continue
            if isinstance(number, (int, float)) or getattr(number, "shape", None) == ():
                found[name] = float(number)
        return found

    def importances(self, value: Any) -> dict[str, list[Any]]:
        import numpy as np

        names = value.model.exog_names
        return {"feature": [str(n) for n in names],
                "coef": np.asarray(value.params, dtype=float).tolist(),
                "std_err": np.asarray(value.bse, dtype=float).tolist(),
                "p_value": np.asarray(value.pvalues, dtype=float).tolist()}

    def texts(self, value: Any) -> dict[str, str]:
        return {"summary.txt": value.summary().as_text()}

    def predictor(self, value: Any) -> Any:
        from .sklearn_api import native_predictor

        def scores(X: Any) -> Any:
            import numpy as np

            return np.asarray(value.predict(X))

        if type(value.model).__name__ in _BINARY:
            return native_predictor(value, "proba", scores, [0, 1])
        return native_predictor(value, "regression", scores)

    def signature(self, value: Any) -> dict[str, Any]:
        return {"kind": "dataframe",
                "columns": [{"name": str(n), "dtype": None} for n in value.model.exog_names]}

    def flavor(self, model: Any) -> Flavor:
        version = sys.modules["statsmodels"].__version__
        return pickle_flavor("statsmodels", "mlflow.statsmodels",
                             {"code": None, "data": "model.statsmodels",
                              "statsmodels_version": version},
                             [("statsmodels", "statsmodels")], file_name="model.statsmodels")


FAMILY = StatsmodelsFamily()
