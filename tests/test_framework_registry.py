"""Each framework's model through the registry: register, load, evaluate, drift, serve and
export as MLflow's own flavor, loaded back with ``mlflow.pyfunc``."""

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split

import jupyter_mlops as mlops
from jupyter_mlops.serving import serve
from jupyter_mlops.tracking.frameworks import predictor
from test_serving import Client

mlflow = pytest.importorskip("mlflow", reason="mlflow comes with the test extra")
pytestmark = pytest.mark.timeout(300)


def classification():
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X.columns = [c.replace(" ", "_") for c in X.columns]
    return train_test_split(X, y, random_state=0)


def regression():
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    return train_test_split(X, y, random_state=0)


def xgb_classifier():
    import xgboost as xgb

    X, X_test, y, y_test = classification()
    model = xgb.XGBClassifier(n_estimators=20, max_depth=3).fit(X, y)
    return model, X, X_test, y_test, "xgboost", model.predict


def xgb_booster():
    import xgboost as xgb

    X, X_test, y, y_test = classification()
    bst = xgb.train({"objective": "binary:logistic", "max_depth": 3},
                    xgb.DMatrix(X, label=y), num_boost_round=20)
    return bst, X, X_test, y_test, "xgboost", lambda data: bst.predict(xgb.DMatrix(data))


def lgb_regressor():
    import lightgbm as lgb

    X, X_test, y, y_test = regression()
    model = lgb.LGBMRegressor(n_estimators=30, num_leaves=7, verbose=-1).fit(X, y)
    return model, X, X_test, y_test, "lightgbm", model.predict


def lgb_booster():
    import lightgbm as lgb

    X, X_test, y, y_test = classification()
    gbm = lgb.train({"objective": "binary", "num_leaves": 7, "verbose": -1},
                    lgb.Dataset(X, label=y), num_boost_round=20)
    return gbm, X, X_test, y_test, "lightgbm", gbm.predict


def catboost_classifier():
    import catboost

    X, X_test, y, y_test = classification()
    model = catboost.CatBoostClassifier(iterations=20, depth=3, verbose=0, random_seed=0,
                                        allow_writing_files=False)
    model.fit(X, y)
    return model, X, X_test, y_test, "catboost", model.predict


def statsmodels_logit():
    import statsmodels.api as sm

    X, X_test, y, y_test = classification()
    X, X_test = (sm.add_constant(frame[["mean_radius", "mean_texture"]]) for frame in (X, X_test))
    logit = sm.Logit(y, X).fit(disp=0)
    return logit, X, X_test, y_test, "statsmodels", logit.predict


def keras_classifier():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras

    X, X_test, y, y_test = classification()
    mean, std = X.mean(), X.std()
    X, X_test = (((frame - mean) / std).to_numpy("float32") for frame in (X, X_test))
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((30,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    model.fit(X, y.to_numpy(), epochs=3, batch_size=64, verbose=0)
    return model, X, X_test, y_test, "keras", lambda data: model.predict(data, verbose=0)


CASES = {"xgb-classifier": xgb_classifier, "xgb-booster": xgb_booster,
         "lgb-regressor": lgb_regressor, "lgb-booster": lgb_booster,
         "catboost-classifier": catboost_classifier, "statsmodels-logit": statsmodels_logit,
         "keras-classifier": keras_classifier}


def _check_served(uri, model, X_test):
    with serve(uri, port=0, watch_interval=None) as running:
        client = Client(running.url)
        if isinstance(X_test, pd.DataFrame):
            status, _, body = client.post({"dataframe_split":
                                           X_test.head(8).to_dict(orient="split")})
        else:
            status, _, body = client.post({"instances": X_test[:8].tolist()})
        client.close()
    assert status == 200, body
    np.testing.assert_allclose(body["predictions"], predictor(model).predict(X_test[:8]))


@pytest.mark.parametrize("case", CASES)
def test_registered_model_loads_evaluates_drifts_serves_and_exports(case, store, tmp_path):
    model, X, X_test, y_test, flavor, native_predict = CASES[case]()
    version = mlops.register_model(model, case, reference=X)
    assert version.framework == flavor
    loaded = mlops.load_model(f"{case}/1")
    assert type(loaded) is type(model)
    np.testing.assert_array_equal(predictor(loaded).predict(X_test),
                                  predictor(model).predict(X_test))

    result = mlops.evaluate(f"{case}/1", X_test, y_test, name="holdout")
    predicted = predictor(model).predict(X_test)
    if result.task == "regression":
        assert result.metrics["r2"] == pytest.approx(r2_score(y_test, predicted), abs=1e-12)
    else:
        assert result.task == "binary"
        assert result.metrics["accuracy"] == accuracy_score(y_test, predicted)
        assert "roc_auc" in result.metrics
    assert result.details["model"]["class"] == type(model).__name__
    assert result.details.get("importance") is not None

    report = mlops.drift_report(X, X_test, model=model)
    assert "prediction" in set(report.columns["column"])

    _check_served(f"{case}/1", model, X_test)

    path = mlops.export_mlflow(f"{case}/1", tmp_path / case)
    mlmodel = (path / "MLmodel").read_text()
    assert f"\n  {flavor}:\n" in mlmodel and "\n  sklearn:\n" not in mlmodel
    assert (path / "requirements.txt").read_text().startswith(f"{flavor}==")
    if flavor == "keras":  # MLflow's keras flavor wants the backend the model was saved with
        os.environ.setdefault("KERAS_BACKEND", "jax")
    exported = mlflow.pyfunc.load_model(str(path))
    np.testing.assert_allclose(np.asarray(exported.predict(X_test)).reshape(-1),
                               np.asarray(native_predict(X_test)).reshape(-1), rtol=1e-6)


def test_evaluate_takes_a_native_booster_and_its_dmatrix(store):
    import xgboost as xgb

    bst, X, X_test, y_test, _, _ = xgb_booster()
    dtest = xgb.DMatrix(X_test, label=y_test)
    result = mlops.evaluate(bst, dtest)  # labels from the DMatrix
    expected = (bst.predict(dtest) > 0.5).astype(int)
    assert result.metrics["accuracy"] == accuracy_score(y_test, expected)
    assert result.details["importance"]["features"] == list(X_test.columns)


def test_export_imports_no_mlflow(store, tmp_path):
    model = xgb_booster()[0]
    mlops.register_model(model, "plain")
    code = ("import sys, jupyter_mlops as m; m.set_store(sys.argv[1]); "
            "m.export_mlflow('plain/1', sys.argv[2]); print('mlflow' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code, str(store.path), str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=120, env=dict(os.environ))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
    assert pd.read_csv(tmp_path / "out" / "requirements.txt", header=None)[0][0].startswith(
        "xgboost==")
