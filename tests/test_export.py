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


TRACKED_FIT = """%%track -n forest
import pandas as pd
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
X, y = load_iris(return_X_y=True)
model = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)
"""


def _requirements(path):
    return dict(line.split("==") for line in (path / "requirements.txt").read_text().split())


def test_requirements_come_from_the_sessions_environment(shell, tmp_path):
    from importlib.metadata import version

    from support import run_cell

    assert run_cell(shell, TRACKED_FIT).success
    mlops.register_model(None, "forest")
    path = mlops.export_mlflow("forest/1", tmp_path / "forest")
    # What the pickle needs, at the session's versions; pandas was imported by the cell
    # but the model does not use it.
    assert _requirements(path) == {"scikit-learn": version("scikit-learn"),
                                   "numpy": version("numpy")}
    assert (path / "requirements.txt").read_text().startswith("scikit-learn==")
    conda = (path / "conda.yaml").read_text()
    assert f"  - scikit-learn=={version('scikit-learn')}\n" in conda
    assert f"  - numpy=={version('numpy')}\n" in conda and "pandas" not in conda
    X = shell.user_ns["X"]
    loaded = mlflow.pyfunc.load_model(str(path))
    np.testing.assert_array_equal(loaded.predict(X), shell.user_ns["model"].predict(X))


def test_versions_are_the_sessions_not_the_exporters(shell, tmp_path):
    """A session that ran elsewhere: its record (signed, as capture signs it) names other
    versions, and those are the ones exported."""
    import platform

    from jupyter_mlops.tracking.capture import current_session_id, flush_capture
    from jupyter_mlops.tracking.environment import capture_environment, write_environment
    from support import run_cell

    assert run_cell(shell, TRACKED_FIT).success
    flush_capture()
    elsewhere = capture_environment()
    elsewhere["python"] = "3.10.14"
    elsewhere["packages"] = {**elsewhere["packages"], "scikit-learn": "1.5.2",
                             "numpy": "1.26.4"}
    store = mlops.get_store()
    with store.write() as conn:
        write_environment(conn, current_session_id(), elsewhere, None)
    mlops.register_model(None, "forest")
    path = mlops.export_mlflow("forest/1", tmp_path / "forest")
    assert _requirements(path) == {"scikit-learn": "1.5.2", "numpy": "1.26.4"}
    assert "python: 3.10.14" in (path / "python_env.yaml").read_text()
    assert platform.python_version() not in (path / "conda.yaml").read_text()


def test_an_environment_record_not_signed_by_the_user_is_not_used(shell, tmp_path):
    from jupyter_mlops.tracking.capture import flush_capture
    from support import run_cell

    assert run_cell(shell, TRACKED_FIT).success
    flush_capture()
    store = mlops.get_store()
    store.connection().execute(
        "UPDATE environments SET data = json_set(data, '$.packages.numpy', '0.0.1')")
    mlops.register_model(None, "forest")
    with pytest.warns(UserWarning, match="not signed by you"):
        path = mlops.export_mlflow("forest/1", tmp_path / "forest")
    requirements = (path / "requirements.txt").read_text()
    assert "0.0.1" not in requirements and requirements.startswith("scikit-learn==")


def test_pickle_modules_are_read_without_unpickling_at_every_protocol():
    import pickle

    from jupyter_mlops.registry.requirements import pickle_modules, top_level

    model = Ridge().fit(np.arange(10.0).reshape(5, 2), np.arange(5.0))
    for protocol in (0, 2, 4, 5):
        modules = pickle_modules(pickle.dumps(model, protocol=protocol))
        assert "sklearn.linear_model._ridge" in modules, protocol
        assert top_level(modules) == {"sklearn", "numpy"}, protocol


def test_a_module_from_no_distribution_is_named_and_left_out(shell, tmp_path, monkeypatch):
    from support import run_cell

    (tmp_path / "localfeatures.py").write_text("def double(X):\n    return X * 2\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert run_cell(shell, "%%track -n local\nimport numpy as np\n"
                           "from localfeatures import double\n"
                           "from sklearn.pipeline import make_pipeline\n"
                           "from sklearn.preprocessing import FunctionTransformer\n"
                           "from sklearn.linear_model import Ridge\n"
                           "X = np.arange(20.0).reshape(10, 2)\n"
                           "model = make_pipeline(FunctionTransformer(double), Ridge())"
                           ".fit(X, X[:, 0])").success
    mlops.register_model(None, "local", variable="model")
    with pytest.warns(UserWarning, match="'localfeatures' that no installed distribution"):
        path = mlops.export_mlflow("local/1", tmp_path / "local")
    assert set(_requirements(path)) == {"scikit-learn", "numpy"}
