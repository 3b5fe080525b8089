"""``export_model``: a version as a skops, ONNX or native file that its own library loads
and that predicts as the model does, with a sha256 manifest; an ONNX graph that predicts
differently beyond the tolerance is refused with the largest difference shown."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import jupyter_mlops as mlops

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def data():
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X = X.iloc[:, :8].copy()
    X.columns = [c.replace(" ", "_") for c in X.columns]
    return X, y


@pytest.fixture
def pipeline(store, data):
    X, y = data
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)
    mlops.register_model(model, "cancer", alias="champion", reference=X)
    return model


def _manifest(folder):
    manifest = json.loads((folder / "manifest.json").read_text())
    for name, entry in manifest["files"].items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == entry["sha256"]
    sums = dict(line.split("  ")[::-1] for line in (folder / "SHA256SUMS").read_text().splitlines())
    assert sums["manifest.json"] == hashlib.sha256((folder / "manifest.json").read_bytes()).hexdigest()
    return manifest


def test_skops_and_onnx_exports_predict_as_the_model(pipeline, data, tmp_path):
    import onnxruntime as ort
    import skops.io as sio

    X, _ = data
    folder = mlops.export_model("cancer@champion", tmp_path / "skops", format="skops")
    manifest = _manifest(folder)
    assert manifest["model"] == "models:/cancer/1" and manifest["format"] == "skops"
    path = folder / "model.skops"
    loaded = sio.load(path, trusted=sio.get_untrusted_types(file=path))
    np.testing.assert_array_equal(loaded.predict_proba(X), pipeline.predict_proba(X))

    folder = mlops.export_model("cancer@champion", tmp_path / "onnx", format="onnx")
    manifest = _manifest(folder)
    assert manifest["check"]["rows"] == len(X)
    assert manifest["check"]["max_abs_difference"] <= 1e-5
    assert manifest["check"]["tolerance"] == "atol 1e-05 on probabilities"
    session = ort.InferenceSession(str(folder / "model.onnx"),
                                   providers=["CPUExecutionProvider"])
    labels, proba = session.run(None, {"X": X.to_numpy(np.float32)})
    np.testing.assert_array_equal(labels, pipeline.predict(X))
    proba = np.array([[row[0], row[1]] for row in proba])  # skl2onnx's ZipMap
    np.testing.assert_allclose(proba, pipeline.predict_proba(X), atol=1e-5)

    # The ONNX file imports back as a version that evaluates like the original.
    version = mlops.import_model(folder / "model.onnx", "cancer_onnx", sample=X)
    back = mlops.load_model(version.uri)
    np.testing.assert_array_equal(back.classes_, [0, 1])
    np.testing.assert_allclose(back.predict_proba(X), pipeline.predict_proba(X), atol=1e-5)


def test_an_onnx_graph_outside_the_tolerance_is_refused_with_its_largest_difference(
        pipeline, tmp_path):
    # ONNX Runtime computes in float32: differences of ~1e-7 exceed a 1e-12 tolerance.
    with pytest.raises(mlops.ValidationError,
                       match=r"largest difference is \d.*\(row \d+ .*atol 1e-12 on probabilities"):
        mlops.export_model("cancer/1", tmp_path / "tight", format="onnx", atol=1e-12)
    assert not (tmp_path / "tight").exists()
    assert [p.name for p in tmp_path.iterdir()] == [".mlops"]  # no partial folder either


def test_native_files_load_in_their_own_library(store, data, tmp_path):
    import lightgbm as lgb
    import xgboost as xgb

    X, y = data
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 2}, xgb.DMatrix(X, y), 6)
    mlops.register_model(booster, "xgb", reference=X)
    gbm = lgb.LGBMClassifier(n_estimators=6, num_leaves=7, verbose=-1).fit(X, y)
    mlops.register_model(gbm, "lgb", reference=X)

    folder = mlops.export_model("xgb/1", tmp_path / "xgb", format="native")
    assert _manifest(folder)["check"]["max_abs_difference"] == 0
    again = xgb.Booster()
    again.load_model(folder / "model.json")
    np.testing.assert_array_equal(again.predict(xgb.DMatrix(X)), booster.predict(xgb.DMatrix(X)))
    folder = mlops.export_model("lgb/1", tmp_path / "lgb", format="native")
    _manifest(folder)
    np.testing.assert_allclose(lgb.Booster(model_file=folder / "model.txt").predict(X),
                               gbm.predict_proba(X)[:, 1], atol=1e-12)
    folder = mlops.export_model("lgb/1", tmp_path / "lgb-onnx", format="onnx")
    assert _manifest(folder)["check"]["max_abs_difference"] <= 1e-5


def test_bad_requests_are_refused_before_anything_is_written(pipeline, tmp_path, capsys):
    from jupyter_mlops.cli import main

    with pytest.raises(mlops.ValidationError, match="no native format besides its pickle"):
        mlops.export_model("cancer/1", tmp_path / "native", format="native")
    with pytest.raises(mlops.ValidationError, match="format is one of skops, onnx, native"):
        mlops.export_model("cancer/1", tmp_path / "x", format="joblib")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(mlops.ValidationError, match="not an empty folder"):
        mlops.export_model("cancer/1", tmp_path / "full")
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"
    assert main(["export", "cancer@champion", str(tmp_path / "cli"), "--format", "onnx"]) == 0
    out = capsys.readouterr().out
    assert "as onnx at" in out and "largest difference" in out
    assert (tmp_path / "cli" / "model.onnx").is_file()
