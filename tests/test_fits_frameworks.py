"""Several fits of boosting and deep-learning models in one tracked cell: each is a child
run with its params, its own training history, the data it was fitted on and its model,
as scikit-learn fits are."""

import os
import pickle

import numpy as np
import pytest

import jupyter_mlops as mlops
from frameworks_support import history
from support import run_cell

os.environ.setdefault("KERAS_BACKEND", "jax")

DATA = """
import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.model_selection import train_test_split
X, y = load_diabetes(return_X_y=True)
X_train, X_val, y_train, y_val = train_test_split(X.astype("float32"), y, random_state=0)
"""


def children_of(name):
    frame = mlops.search_runs(order_by=["start_time"])
    (parent,) = frame.run_id[frame.name == name]
    kids = mlops.search_runs(filter=f"parent_run_id = '{parent}'", order_by=["start_time"])
    return mlops.get_run(parent), [mlops.get_run(i) for i in kids.run_id]


def model_of(store, run):
    (artifact,) = [a for a in run.artifacts if a.kind == "model"]
    return pickle.loads(store.artifacts.read_verified(artifact.sha256))


def test_native_xgboost_boosters_trained_in_a_loop(shell, store):
    pytest.importorskip("xgboost")
    run_cell(shell, DATA + "import xgboost as xgb\n"
                           "dtrain = xgb.DMatrix(X_train, label=y_train)\n"
                           "dval = xgb.DMatrix(X_val, label=y_val)")
    assert run_cell(shell, """%%track -n depths
curves = []
for depth in (2, 4):
    evals = {}
    bst = xgb.train({"max_depth": depth, "eta": 0.3, "objective": "reg:squarederror"},
                    dtrain, num_boost_round=6, evals=[(dval, "val")], evals_result=evals,
                    verbose_eval=False)
    curves.append(evals["val"]["rmse"])
    val_rmse = evals["val"]["rmse"][-1]
""").success
    _, children = children_of("depths")
    curves = shell.user_ns["curves"]
    assert [c.name for c in children] == ["bst: Booster", "bst: Booster"]
    for child, depth, curve in zip(children, (2, 4), curves):
        assert child.status == "FINISHED"
        assert child.params["max_depth"] == depth
        assert child.metrics["val_rmse"] == curve[-1]  # its iteration's number
        assert history(child, "val-rmse") == list(enumerate(curve))  # its own curve
        assert [(d.name, d.role) for d in child.inputs] == [("dtrain", "train")]
        booster = model_of(store, child)
        assert booster.num_boosted_rounds() == 6
        predicted = booster.predict(shell.user_ns["dval"])
        rmse = float(np.sqrt(np.mean((predicted - shell.user_ns["y_val"]) ** 2)))
        assert rmse == pytest.approx(curve[-1], rel=1e-5)


def test_lightgbm_and_catboost_fitted_side_by_side(shell, store):
    pytest.importorskip("lightgbm")
    pytest.importorskip("catboost")
    run_cell(shell, DATA + "import lightgbm as lgb\nfrom catboost import CatBoostRegressor")
    assert run_cell(shell, """%%track -n pair
gbm = lgb.LGBMRegressor(n_estimators=8, learning_rate=0.2, verbose=-1)
gbm.fit(X_train, y_train, eval_set=[(X_val, y_val)])
cat = CatBoostRegressor(iterations=8, depth=3, verbose=False, random_seed=0)
cat.fit(X_train, y_train, eval_set=(X_val, y_val))
""").success
    _, (gbm, cat) = children_of("pair")
    assert (gbm.name, cat.name) == ("gbm: LGBMRegressor", "cat: CatBoostRegressor")
    assert gbm.params["n_estimators"] == 8 and cat.params["iterations"] == 8
    ns = shell.user_ns
    assert history(gbm, "valid_0-l2") == list(enumerate(ns["gbm"].evals_result_["valid_0"]["l2"]))
    validation = ns["cat"].get_evals_result()["validation"]["RMSE"]
    assert history(cat, "validation-RMSE") == list(enumerate(validation))
    for child in (gbm, cat):
        assert sorted((d.name, d.role) for d in child.inputs) == [("X_train", "train"),
                                                            ("y_train", "target")]
        # MLflow gives training_* metrics to scikit-learn's own models only.
        assert not any(k.startswith("training_") for k in child.metrics)
    restored = model_of(store, cat)
    np.testing.assert_array_equal(restored.predict(ns["X_val"]), ns["cat"].predict(ns["X_val"]))


def test_keras_models_fitted_in_a_loop(shell, store):
    keras = pytest.importorskip("keras")
    run_cell(shell, DATA + "import keras\nkeras.utils.set_random_seed(0)\n"
                           "X_train = (X_train - X_train.mean(0)) / X_train.std(0)")
    assert run_cell(shell, """%%track -n widths
for units in (4, 8):
    net = keras.Sequential([keras.Input((10,)), keras.layers.Dense(units, activation="relu"),
                            keras.layers.Dense(1)])
    net.compile(keras.optimizers.Adam(learning_rate=0.05), "mse")
    fitted = net.fit(X_train, y_train, epochs=3, batch_size=64, verbose=0)
    final_loss = fitted.history["loss"][-1]
""").success
    _, children = children_of("widths")
    assert [c.name for c in children] == ["net: Sequential", "net: Sequential"]
    for child in children:
        assert child.params["epochs"] == 3
        assert child.params["optimizer_learning_rate"] == pytest.approx(0.05)
        losses = [v for _, v in history(child, "loss")]
        assert len(losses) == 3 and losses[-1] == child.metrics["final_loss"]
        assert sorted((d.name, d.role) for d in child.inputs) == [("X_train", "train"),
                                                            ("y_train", "target")]
        restored = model_of(store, child)
        assert isinstance(restored, keras.Model)
    widths = [model_of(store, c).layers[0].units for c in children]
    assert widths == [4, 8]  # each child keeps the model its iteration fitted


def test_search_children_carry_the_data_the_search_was_fitted_on(shell):
    run_cell(shell, DATA + "from sklearn.model_selection import GridSearchCV\n"
                           "from sklearn.linear_model import Ridge")
    assert run_cell(shell, "%%track -n grid\n"
                           "gs = GridSearchCV(Ridge(), {'alpha': [0.1, 1.0, 10.0]}, cv=3)\n"
                           "gs.fit(X_train, y_train)").success
    _, children = children_of("grid")
    assert len(children) == 3
    for child in children:
        assert sorted((d.name, d.role) for d in child.inputs) == [("X_train", "train"),
                                                            ("y_train", "target")]
