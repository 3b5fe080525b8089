"""LightGBM in a ``%%track`` cell: the scikit-learn API and native Boosters."""

import numpy as np
import pytest

from frameworks_support import artifact_bytes, artifacts, assert_signed, history, only_run, table
from support import run_cell

lgb = pytest.importorskip("lightgbm")

SETUP = """
import numpy as np
import lightgbm as lgb
from sklearn.datasets import load_diabetes
from sklearn.model_selection import train_test_split
X, y = load_diabetes(return_X_y=True, as_frame=True)
X_train, X_valid, y_train, y_valid = train_test_split(X, y, random_state=0)
"""


def test_regressor_params_history_importances_and_native_file(shell, store):
    run_cell(shell, SETUP)
    assert run_cell(shell, """%%track -n lgbm
model = lgb.LGBMRegressor(n_estimators=40, num_leaves=7, learning_rate=0.1, verbose=-1)
model.fit(X_train, y_train, eval_set=[(X_valid, y_valid)],
          callbacks=[lgb.early_stopping(5, verbose=False)])
""").success
    model = shell.user_ns["model"]
    run = only_run()
    assert run.params["model.num_leaves"] == 7 and run.params["model.n_estimators"] == 40
    assert history(run, "valid_0-l2") == list(enumerate(model.evals_result_["valid_0"]["l2"]))
    assert run.metrics["best_iteration"] == model.best_iteration_
    assert run.metrics["stopped_iteration"] == model.booster_.current_iteration() - 1

    rows = table(store, run, "model/model.importance.csv")
    assert [r["feature"] for r in rows] == list(shell.user_ns["X"].columns)
    assert [int(r["split"]) for r in rows] == model.booster_.feature_importance("split").tolist()

    assert artifacts(run)["model/model.txt"].kind == "model-native"
    assert_signed(store, run, "model/model.txt")
    reloaded = lgb.Booster(model_str=artifact_bytes(store, run, "model/model.txt").decode())
    X_valid = shell.user_ns["X_valid"]
    np.testing.assert_allclose(reloaded.predict(X_valid), model.predict(X_valid), rtol=1e-12)


def test_native_booster_its_dataset_and_the_evaluation_it_recorded(shell, store):
    run_cell(shell, SETUP)
    run_cell(shell, "dtrain = lgb.Dataset(X_train, label=y_train)\n"
                    "dvalid = lgb.Dataset(X_valid, label=y_valid, reference=dtrain)")
    assert run_cell(shell, """%%track -n booster
params = {"objective": "regression", "num_leaves": 5, "learning_rate": 0.05, "verbose": -1}
evals = {}
gbm = lgb.train(params, dtrain, num_boost_round=30, valid_sets=[dtrain, dvalid],
                valid_names=["train", "valid"], callbacks=[lgb.record_evaluation(evals)])
""").success
    gbm = shell.user_ns["gbm"]
    run = only_run()
    assert run.params["gbm.num_leaves"] == 5 and run.params["gbm.objective"] == "regression"
    assert run.params["gbm.num_iterations"] == 30
    evals = shell.user_ns["evals"]
    assert history(run, "valid-l2") == list(enumerate(evals["valid"]["l2"]))
    assert history(run, "train-l2") == list(enumerate(evals["train"]["l2"]))
    assert "best_iteration" not in run.metrics  # no early stopping

    inputs = {d.name: d for d in run.inputs}
    # Fingerprinted before the cell ran: training frees the Dataset's rows.
    assert inputs["dtrain"].role == "train" and inputs["dtrain"].kind == "lgb_dataset"
    assert inputs["dtrain"].columns == list(shell.user_ns["X"].columns)
    reloaded = lgb.Booster(model_str=artifact_bytes(store, run, "model/gbm.txt").decode())
    X_valid = shell.user_ns["X_valid"]
    np.testing.assert_array_equal(reloaded.predict(X_valid), gbm.predict(X_valid))


def test_dataset_fingerprint_follows_its_rows_and_labels():
    from jupyter_mlops.tracking.datasets import fingerprint

    X = np.random.default_rng(0).normal(size=(40, 3))
    y = X[:, 0] * 2
    first = fingerprint(lgb.Dataset(X, label=y))
    assert first == fingerprint(lgb.Dataset(X.copy(), label=y.copy()))
    assert fingerprint(lgb.Dataset(X, label=y + 1))["fingerprint"] != first["fingerprint"]
    changed = X.copy()
    changed[3, 1] = 0.5
    assert fingerprint(lgb.Dataset(changed, label=y))["fingerprint"] != first["fingerprint"]
    trained = lgb.Dataset(X, label=y)
    lgb.train({"verbose": -1, "min_data_in_leaf": 2}, trained, num_boost_round=1)
    assert fingerprint(trained) is None  # its rows were freed: nothing to fingerprint
