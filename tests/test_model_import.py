"""``import_model``: models trained elsewhere (a real MLflow folder, native XGBoost and
LightGBM files, a tracking server's ``models:/`` URI) become versions that evaluate and
serve like any other; what can run code when loaded is refused until the user vouches."""

from __future__ import annotations

import hashlib
import json
import pickle
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import jupyter_mlops as mlops
from jupyter_mlops.serving import serve

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def data():
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X = X.iloc[:, :8].copy()
    X.columns = [c.replace(" ", "_") for c in X.columns]
    return X, y


@pytest.fixture(scope="module")
def mlflow_folder(tmp_path_factory, data):
    """A scikit-learn model saved by MLflow itself, with its signature."""
    mlflow_sklearn = pytest.importorskip("mlflow.sklearn")
    from mlflow.models import infer_signature

    X, y = data
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)
    folder = tmp_path_factory.mktemp("mlflow") / "cancer"
    # Requirements given: MLflow would otherwise resolve them in a subprocess.
    mlflow_sklearn.save_model(model, str(folder), signature=infer_signature(X, model.predict(X)),
                              pip_requirements=["scikit-learn", "skops"])
    return folder, model


def _score(url: str, frame: pd.DataFrame) -> list:
    body = json.dumps({"dataframe_split": frame.to_dict(orient="split")}).encode()
    request = urllib.request.Request(f"{url}/invocations", body,
                                     {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())["predictions"]


def test_an_mlflow_folder_imports_evaluates_and_serves(store, mlflow_folder, data):
    folder, original = mlflow_folder
    X, y = data
    version = mlops.import_model(folder, "cancer", alias="champion")
    # Without a sample, the signature is the one MLflow wrote, dtypes included.
    assert version.signature["columns"][0] == {"name": "mean_radius", "dtype": "float64"}
    origin = mlops.model_origin("cancer@champion")
    assert origin["format"] == "mlflow/sklearn" and origin["source"] == str(folder.resolve())
    files = origin["metadata"]["files"]
    assert files["model.skops"] == hashlib.sha256((folder / "model.skops").read_bytes()).hexdigest()
    assert origin["metadata"]["mlflow_version"] and "inputs" in origin["signature"]
    card = mlops.model_card("cancer@champion").markdown()
    assert "| Imported from |" in card and "(mlflow/sklearn, sha256 " in card

    # With a sample: the reference sample drift and monitoring compare with.
    again = mlops.import_model(folder, "cancer2", sample=X)
    assert again.reference_rows == len(X)
    loaded = mlops.load_model("cancer@champion")
    np.testing.assert_array_equal(loaded.predict(X), original.predict(X))
    result = mlops.evaluate(loaded, X, y, model_uri="cancer@champion", importance=False)
    assert result.metrics["accuracy"] == pytest.approx((original.predict(X) == y).mean())
    with serve("cancer@champion", port=0, watch_interval=None) as running:
        assert _score(running.url, X.head(20)) == original.predict(X.head(20)).tolist()


def test_native_xgboost_and_lightgbm_files_import_evaluate_serve_and_monitor(store, data, tmp_path):
    import lightgbm as lgb
    import xgboost as xgb

    X, y = data
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 2},
                        xgb.DMatrix(X, y), 8)
    booster.save_model(tmp_path / "model.json")
    gbm = lgb.train({"objective": "binary", "verbose": -1, "num_leaves": 7},
                    lgb.Dataset(X, y), 8)
    gbm.save_model(tmp_path / "model.txt")
    expected = {"xgb": booster.predict(xgb.DMatrix(X)), "lgb": gbm.predict(X)}
    for name, file in (("xgb", "model.json"), ("lgb", "model.txt")):
        version = mlops.import_model(tmp_path / file, name, sample=X)
        origin = mlops.model_origin(version.uri)
        assert origin["sha256"] == hashlib.sha256((tmp_path / file).read_bytes()).hexdigest()
        assert version.signature["columns"][0]["name"] == "mean_radius"
        labels = (expected[name] > 0.5).astype(int)
        result = mlops.evaluate(mlops.load_model(version.uri), X, y, model_uri=version.uri,
                                importance=False)
        assert result.metrics["accuracy"] == pytest.approx((labels == y).mean())
        assert result.metrics["roc_auc"] > 0.9
        with serve(version.uri, port=0, watch_interval=None) as running:
            assert _score(running.url, X.head(30)) == labels[:30].tolist()
        # Monitored against the sample it was imported with: the same rows do not drift.
        checked = mlops.monitor(version.uri, batch=X.assign(target=y), labels="target")
        assert checked.n_rows == len(X) and checked.drift.share_drifted == 0
        assert checked.metrics["accuracy"] == pytest.approx((labels == y).mean())


class Planted:
    """Unpickling this creates ``marker``: proof that the planted code ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_pickle_is_never_unpickled_before_the_user_vouches(store, data, tmp_path):
    X, y = data
    marker = tmp_path / "ran"
    (tmp_path / "planted.pkl").write_bytes(pickle.dumps(Planted(marker)))
    with pytest.raises(mlops.UntrustedPickleError, match=r"is a pickle.*trust=True"):
        mlops.import_model(tmp_path / "planted.pkl", "planted")
    assert not marker.exists() and mlops.list_models().empty

    model = LogisticRegression(max_iter=500).fit(X, y)
    (tmp_path / "mine.pkl").write_bytes(pickle.dumps(model))
    with pytest.raises(mlops.UntrustedPickleError, match="sha256"):
        mlops.import_model(tmp_path / "mine.pkl", "mine")
    version = mlops.import_model(tmp_path / "mine.pkl", "mine", sample=X, trust=True)
    # Vouched once: the version is this user's now and loads through the usual gate.
    np.testing.assert_array_equal(mlops.load_model(version.uri).predict(X), model.predict(X))


def _foreign_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "torch-model"
    folder.mkdir()
    (folder / "MLmodel").write_text(
        "flavors:\n  python_function:\n    loader_module: mlflow.pytorch\n    data: data\n"
        "  pytorch:\n    model_data: data\n    pytorch_version: 2.5.0\n")
    return folder


def test_an_unknown_flavor_is_a_black_box_with_mlflow_and_refused_without(store, tmp_path,
                                                                         monkeypatch):
    folder = _foreign_folder(tmp_path)
    with pytest.raises(mlops.UntrustedPickleError, match=r"flavor pytorch.*mlflow\.pyfunc"):
        mlops.import_model(folder, "torchy")
    with monkeypatch.context() as patched:
        patched.setitem(sys.modules, "mlflow", None)  # as if MLflow were not installed
        patched.setitem(sys.modules, "mlflow.pyfunc", None)
        with pytest.raises(mlops.ValidationError,
                           match=r"has the flavor pytorch.*pip install mlflow"):
            mlops.import_model(folder, "torchy", trust=True)
    assert mlops.list_models().empty


def test_unreadable_sources_are_one_line(store, data, tmp_path):
    X, _ = data
    with pytest.raises(mlops.ValidationError, match="neither a file, a folder"):
        mlops.import_model(tmp_path / "missing.json", "m")
    (tmp_path / "model.bin").write_bytes(b"\0\1")
    with pytest.raises(mlops.ValidationError, match="not a model format"):
        mlops.import_model(tmp_path / "model.bin", "m")
    (tmp_path / "folder").mkdir()
    with pytest.raises(mlops.ValidationError, match="holds no MLmodel"):
        mlops.import_model(tmp_path / "folder", "m")
    with pytest.raises(mlops.ValidationError, match="tracking_uri"):
        mlops.import_model("models:/churn/1", "m")


def test_a_tracking_server_version_imports_by_its_uri(store, data, mlflow_server, tmp_path):
    X, y = data
    model = LogisticRegression(max_iter=500).fit(X, y)
    with mlops.start_run(name="trained elsewhere"):  # MLflow wants a version's run
        mlops.register_model(model, "pushed", reference=X)
    mlops.sync(mlflow_server.uri, models=True)
    version = mlops.import_model("models:/pushed/1", "pulled", sample=X,
                                 tracking_uri=mlflow_server.uri, trust=True)
    origin = mlops.model_origin(version.uri)
    assert origin["source"] == f"models:/pushed/1 at {mlflow_server.uri}"
    assert origin["metadata"]["registered_version"] == "1"
    np.testing.assert_array_equal(mlops.load_model(version.uri).predict(X), model.predict(X))


def test_the_terminal_imports_a_file_with_a_sample(store, data, tmp_path, capsys):
    import xgboost as xgb

    from jupyter_mlops.cli import main

    X, y = data
    xgb.train({"objective": "binary:logistic"}, xgb.DMatrix(X, y), 4).save_model(
        tmp_path / "b.ubj")
    X.to_csv(tmp_path / "X.csv", index=False)
    assert main(["import", str(tmp_path / "b.ubj"), "churn", "--sample",
                 str(tmp_path / "X.csv"), "--alias", "champion"]) == 0
    assert "as models:/churn/1 (@champion)" in capsys.readouterr().out
    assert mlops.get_model_version("churn@champion").reference_rows == len(X)
    assert main(["import", str(tmp_path / "b.ubj"), "bad name"]) == 2
