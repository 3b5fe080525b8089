"""CatBoost and statsmodels in a ``%%track`` cell."""

import numpy as np
import pytest

from frameworks_support import artifact_bytes, artifacts, assert_signed, history, only_run, table
from support import run_cell

DATA = """
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
X, y = load_breast_cancer(return_X_y=True, as_frame=True)
X.columns = [c.replace(" ", "_") for c in X.columns]
X_train, X_valid, y_train, y_valid = train_test_split(X, y, random_state=0)
"""


def test_catboost_params_history_importances_and_cbm(shell, store):
    catboost = pytest.importorskip("catboost")
    run_cell(shell, "import catboost" + DATA)
    assert run_cell(shell, """%%track -n cb
model = catboost.CatBoostClassifier(iterations=30, depth=3, learning_rate=0.2, verbose=0,
                                    allow_writing_files=False,
                                    random_seed=0)
model.fit(X_train, y_train, eval_set=(X_valid, y_valid))
""").success
    model = shell.user_ns["model"]
    run = only_run()
    assert run.params["model.depth"] == 3 and run.params["model.iterations"] == 30
    evals = model.get_evals_result()
    assert history(run, "learn-Logloss") == list(enumerate(evals["learn"]["Logloss"]))
    assert history(run, "validation-Logloss") == list(enumerate(evals["validation"]["Logloss"]))
    assert run.metrics["best_iteration"] == model.get_best_iteration()
    rows = table(store, run, "model/model.importance.csv")
    assert [r["feature"] for r in rows] == list(shell.user_ns["X"].columns)
    np.testing.assert_allclose([float(r["importance"]) for r in rows],
                               model.get_feature_importance())
    assert artifacts(run)["model/model.cbm"].kind == "model-native"
    assert_signed(store, run, "model/model.cbm")
    path = store.path / "native.cbm"
    path.write_bytes(artifact_bytes(store, run, "model/model.cbm"))
    reloaded = catboost.CatBoostClassifier().load_model(str(path))
    X_valid = shell.user_ns["X_valid"]
    np.testing.assert_array_equal(reloaded.predict_proba(X_valid), model.predict_proba(X_valid))


def test_statsmodels_results_metrics_coefficients_and_summary(shell, store):
    pytest.importorskip("statsmodels")
    run_cell(shell, "import statsmodels.api as sm" + DATA)
    assert run_cell(shell, """%%track -n ols
features = sm.add_constant(X_train[["mean_radius", "mean_texture"]])
ols = sm.OLS(y_train, features).fit()
""").success
    ols = shell.user_ns["ols"]
    run = only_run()
    assert run.params["ols.model_class"] == "OLS" and run.params["ols.cov_type"] == "nonrobust"
    for name in ("aic", "bic", "rsquared", "rsquared_adj", "llf", "fvalue"):
        assert run.metrics[name] == pytest.approx(float(getattr(ols, name)), rel=1e-12)
    rows = table(store, run, "model/ols.importance.csv")
    assert [r["feature"] for r in rows] == ["const", "mean_radius", "mean_texture"]
    np.testing.assert_allclose([float(r["coef"]) for r in rows], ols.params.to_numpy())
    summary = artifact_bytes(store, run, "model/ols.summary.txt").decode()
    assert "OLS Regression Results" in summary
    assert "model/ols.pkl" in artifacts(run)
