"""XGBoost in a ``%%track`` cell: the scikit-learn API and native Boosters."""

import warnings

import numpy as np
import pytest

from frameworks_support import (
    artifact_bytes, artifacts, assert_signed, history, only_run, table,
)
from support import run_cell

xgb = pytest.importorskip("xgboost")

SETUP = """
import numpy as np
import xgboost as xgb
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
X, y = load_breast_cancer(return_X_y=True, as_frame=True)
X_train, X_valid, y_train, y_valid = train_test_split(X, y, random_state=0)
"""


def test_classifier_params_history_importances_and_native_file(shell, store):
    run_cell(shell, SETUP)
    result = run_cell(shell, """%%track -n xgb
model = xgb.XGBClassifier(n_estimators=30, max_depth=3, learning_rate=0.3,
                          early_stopping_rounds=5, eval_metric="logloss")
model.fit(X_train, y_train, eval_set=[(X_train, y_train), (X_valid, y_valid)], verbose=False)
""")
    assert result.success
    model = shell.user_ns["model"]
    run = only_run()
    assert run.status == "FINISHED"
    assert run.params["model.max_depth"] == 3 and run.params["model.n_estimators"] == 30
    assert run.params["model.eval_metric"] == "logloss"
    expected = model.evals_result()
    for data in ("validation_0", "validation_1"):
        assert history(run, f"{data}-logloss") == list(enumerate(expected[data]["logloss"]))
    assert run.metrics["best_iteration"] == model.best_iteration
    assert run.metrics["stopped_iteration"] == model.get_booster().num_boosted_rounds() - 1

    rows = table(store, run, "model/model.importance.csv")
    assert [r["feature"] for r in rows] == list(shell.user_ns["X"].columns)
    gain = model.get_booster().get_score(importance_type="gain")
    assert {r["feature"]: float(r["gain"]) for r in rows if float(r["gain"])} == pytest.approx(gain)

    files = artifacts(run)
    assert files["model/model.pkl"].kind == "model"
    assert files["model/model.ubj"].kind == "model-native"
    assert_signed(store, run, "model/model.ubj")
    path = store.path / "native.ubj"
    path.write_bytes(artifact_bytes(store, run, "model/model.ubj"))
    reloaded = xgb.XGBClassifier()
    reloaded.load_model(path)
    X_valid = shell.user_ns["X_valid"]
    np.testing.assert_array_equal(reloaded.predict_proba(X_valid), model.predict_proba(X_valid))


NATIVE = """%%track -n booster
history = {}
bst = xgb.train({"objective": "binary:logistic", "max_depth": 2, "eta": 0.1,
                 "eval_metric": ["logloss", "auc"]},
                dtrain, num_boost_round=25, evals=[(dtrain, "train"), (dvalid, "valid")],
                early_stopping_rounds=3, evals_result=history, verbose_eval=False)
"""


def test_native_booster_and_its_dmatrix(shell, store):
    run_cell(shell, SETUP)
    run_cell(shell, "dtrain = xgb.DMatrix(X_train, label=y_train)\n"
                    "dvalid = xgb.DMatrix(X_valid, label=y_valid)")
    assert run_cell(shell, NATIVE).success
    bst = shell.user_ns["bst"]
    run = only_run()
    assert run.params["bst.objective"] == "binary:logistic"
    assert run.params["bst.max_depth"] == 2 and run.params["bst.eta"] == 0.1
    assert run.metrics["best_iteration"] == bst.best_iteration
    assert run.metrics["best_score"] == pytest.approx(bst.best_score)
    recorded = shell.user_ns["history"]   # the dict xgb.train filled, as histories
    for data in ("train", "valid"):
        for metric in ("logloss", "auc"):
            assert history(run, f"{data}-{metric}") == list(enumerate(recorded[data][metric]))

    inputs = {d.name: d for d in run.inputs}
    assert inputs["dtrain"].role == "train" and inputs["dtrain"].kind == "dmatrix"
    assert inputs["dtrain"].shape == (len(shell.user_ns["X_train"]), 30)
    assert inputs["dtrain"].columns == list(shell.user_ns["X"].columns)

    path = store.path / "native.ubj"
    path.write_bytes(artifact_bytes(store, run, "model/bst.ubj"))
    reloaded = xgb.Booster(model_file=str(path))
    dvalid = shell.user_ns["dvalid"]
    np.testing.assert_array_equal(reloaded.predict(dvalid), bst.predict(dvalid))


def test_dmatrix_fingerprint_follows_its_content():
    from jupyter_mlops.tracking.datasets import fingerprint

    X = np.random.default_rng(0).normal(size=(50, 4))
    y = (X[:, 0] > 0).astype(float)
    first = fingerprint(xgb.DMatrix(X, label=y))
    assert first == fingerprint(xgb.DMatrix(X.copy(), label=y.copy()))
    changed = X.copy()
    changed[7, 2] += 1e-3  # a DMatrix holds float32
    assert fingerprint(xgb.DMatrix(changed, label=y))["fingerprint"] != first["fingerprint"]
    assert fingerprint(xgb.DMatrix(X, label=1 - y))["fingerprint"] != first["fingerprint"]
    assert first["kind"] == "dmatrix" and first["shape"] == [50, 4]


def test_a_missing_attribute_costs_one_warning_and_nothing_else(shell, store):
    run_cell(shell, SETUP)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run_cell(shell, """%%track
model = xgb.XGBRegressor(n_estimators=5, max_depth=2).fit(X_train, y_train)
model.evals_result = None   # as a version without evals_result() would be
score = model.score(X_valid, y_valid)
""")
    run = only_run()
    assert run.status == "FINISHED"
    assert run.params["model.max_depth"] == 2 and "score" in run.metrics
    assert {"model/model.pkl", "model/model.ubj", "model/model.importance.csv"} <= set(
        artifacts(run))
    warned = [str(w.message) for w in caught if "jupyter_mlops" in str(w.message)]
    assert len(warned) == 1 and "\n" not in warned[0]
    assert "training history" in warned[0] and "'model'" in warned[0]
