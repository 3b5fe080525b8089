"""An exported version loads in MLflow and predicts exactly as load_model does."""

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import Ridge

import jupyter_mlops as mlops

mlflow = pytest.importorskip("mlflow", reason="mlflow comes with the test extra")


def test_dataframe_model_round_trips_through_mlflow(store, tmp_path):
    rng = np.random.default_rng(1)
    X = pd.DataFrame({"age": rng.integers(18, 90, 300).astype("int64"),
                      "income": rng.normal(50, 10, 300), "score": rng.normal(size=300)})
    y = (X["income"] + X["score"] > 50).astype(int)
    model = RandomForestClassifier(n_estimators=20, random_state=0).fit(X, y)
    mlops.register_model(model, "forest", alias="champion", reference=X)
    path = mlops.export_mlflow("forest@champion", tmp_path / "exported")
    loaded = mlflow.pyfunc.load_model(str(path))
    expected = mlops.load_model("forest@champion").predict(X)
    np.testing.assert_array_equal(loaded.predict(X), expected)
    schema = loaded.metadata.get_input_schema()
    assert schema.input_names() == ["age", "income", "score"]
    with pytest.raises(Exception, match="income"):
        loaded.predict(X.drop(columns=["income"]))


def test_array_model_round_trips_through_mlflow(store, tmp_path):
    X = np.random.default_rng(2).normal(size=(100, 4))
    y = X @ np.array([1.0, -2.0, 0.5, 3.0])
    mlops.register_model(Ridge().fit(X, y), "ridge", reference=X)
    path = mlops.export_mlflow("ridge/1", tmp_path / "ridge")
    loaded = mlflow.pyfunc.load_model(str(path))
    np.testing.assert_array_equal(loaded.predict(X), mlops.load_model("ridge/1").predict(X))
    assert (path / "requirements.txt").read_text().startswith("scikit-learn==")


def test_export_refuses_a_non_empty_folder(store, tmp_path):
    X = np.arange(10.0).reshape(5, 2)
    mlops.register_model(Ridge().fit(X, X[:, 0]), "r")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "f").write_text("x")
    with pytest.raises(mlops.ValidationError, match="not empty"):
        mlops.export_mlflow("r/1", tmp_path / "busy")


def test_a_model_whose_file_indexes_its_arrays_loads_in_mlflow(store, tmp_path):
    from sklearn.neighbors import KNeighborsClassifier

    X = np.random.default_rng(3).normal(size=(5_000, 20))
    model = KNeighborsClassifier(n_neighbors=3, algorithm="brute").fit(X, X[:, 0] > 0)
    version = mlops.register_model(model, "knn")
    assert store.artifacts.path_for(version.sha256).read_bytes().endswith(b"MLOPSIDX")
    path = mlops.export_mlflow("knn/1", tmp_path / "knn")
    loaded = mlflow.sklearn.load_model(str(path))
    np.testing.assert_array_equal(loaded.predict(X[:100]), model.predict(X[:100]))
    np.testing.assert_array_equal(mlflow.pyfunc.load_model(str(path)).predict(X[:100]),
                                  model.predict(X[:100]))
