"""MLflow's training_* metrics: same names and values as mlflow.sklearn.autolog, same fit."""

import warnings

import pytest

import jupyter_mlops as mlops
from jupyter_mlops.tracking import training_metrics as training_module
from support import run_cell

CASES = {
    "binary, weighted": ("""
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
X, y = load_breast_cancer(return_X_y=True)
X = StandardScaler().fit_transform(X)
w = np.linspace(0.5, 2.0, len(y))
""", "model = LogisticRegression(C=0.3)\nmodel.fit(X, y, sample_weight=w)"),
    "multiclass forest": ("""
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
X, y = load_iris(return_X_y=True)
""", "model = RandomForestClassifier(n_estimators=10, max_depth=2, random_state=0).fit(X, y)"),
    "regressor": ("""
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge
X, y = load_diabetes(return_X_y=True)
""", "model = Ridge(alpha=0.5)\nmodel.fit(X, y)"),
    "pipeline without predict_proba": ("""
from sklearn.datasets import load_wine
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC
X, y = load_wine(return_X_y=True)
""", "model = make_pipeline(StandardScaler(), LinearSVC(C=0.1))\nmodel.fit(X, y)"),
}


@pytest.fixture(scope="module")
def mlflow_store(tmp_path_factory):
    """One MLflow database for the module: making one takes seconds."""
    mlflow = pytest.importorskip("mlflow")
    import os

    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}")
    yield mlflow
    mlflow.set_tracking_uri(before)


@pytest.fixture
def mlflow_autolog(mlflow_store, tmp_path, request):
    """mlflow.sklearn.autolog on, in this process, in an experiment of this test's own."""
    import mlflow.sklearn

    mlflow = mlflow_store
    experiment = mlflow.create_experiment(request.node.name,
                                          artifact_location=(tmp_path / "mlruns").as_uri())
    mlflow.set_experiment(experiment_id=experiment)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow.sklearn.autolog(log_models=False, log_datasets=False, silent=True,
                               log_post_training_metrics=False)
        yield mlflow, experiment
        mlflow.sklearn.autolog(disable=True)


@pytest.mark.parametrize("case", list(CASES))
def test_same_names_and_values_as_mlflow_on_the_same_fit(shell, store, mlflow_autolog, case):
    setup, fit = CASES[case]
    run_cell(shell, "import numpy as np\n" + setup)
    assert run_cell(shell, f"%%track -n fit\n{fit}\n").success
    mlflow, experiment = mlflow_autolog
    (theirs,) = mlflow.search_runs(experiment_ids=[experiment])["run_id"]
    expected = {k: v for k, v in mlflow.get_run(theirs).data.metrics.items()
                if k.startswith("training_")}
    assert expected  # MLflow did compute them
    run = mlops.get_run(mlops.search_runs().loc[0, "run_id"])
    ours = {k: v for k, v in run.metrics.items() if k.startswith("training_")}
    assert ours == expected  # to the last digit
    if "proba" in case:
        assert "training_log_loss" not in ours


def test_above_the_row_bound_they_are_skipped_with_a_tag(shell, store, monkeypatch):
    monkeypatch.setattr(training_module, "MAX_ROWS", 100)
    run_cell(shell, "import numpy as np\n" + CASES["multiclass forest"][0])
    run_cell(shell, f"%%track\n{CASES['multiclass forest'][1]}\n")
    run = mlops.get_run(mlops.search_runs().loc[0, "run_id"])
    assert not any(k.startswith("training_") for k in run.metrics)
    assert run.tags["training_metrics_skipped"] == (
        "X has 150 rows, above the 100 rows training metrics are computed for")


def test_the_last_fit_on_named_data_counts(shell, store):
    run_cell(shell, "import numpy as np\n" + CASES["regressor"][0] +
             "from sklearn.cluster import KMeans\nfrom sklearn.tree import DecisionTreeRegressor")
    run_cell(shell, "%%track -n two\nfirst = Ridge().fit(X, y)\n"
                    "second = DecisionTreeRegressor(max_depth=2, random_state=0).fit(X, y)\n"
                    "clusters = KMeans(n_clusters=2, n_init=1, random_state=0).fit(X)\n")
    run = mlops.get_run(mlops.search_runs(filter="name = 'two'").loc[0, "run_id"])
    second = shell.user_ns["second"]
    assert run.metrics["training_score"] == second.score(shell.user_ns["X"], shell.user_ns["y"])
    assert run.metrics["training_r2_score"] == run.metrics["training_score"]
    run_cell(shell, "%%track -n sliced\nsliced = Ridge().fit(X[:, :3], y)\n")
    sliced = mlops.get_run(mlops.search_runs(filter="name = 'sliced'").loc[0, "run_id"])
    assert not any(k.startswith("training_") for k in sliced.metrics)  # X[:, :3] is no name


def test_a_model_that_cannot_predict_its_fit_data_costs_one_warning(shell, store):
    run_cell(shell, "import numpy as np\n" + CASES["regressor"][0])
    with pytest.warns(UserWarning, match="Training metrics of Ridge were not computed") as got:
        run_cell(shell, "%%track -n broken\nmodel = Ridge().fit(X, y)\nX = X[:, :2]\n")
    assert len([w for w in got if w.filename == "jupyter_mlops"]) == 1
    run = mlops.get_run(mlops.search_runs().loc[0, "run_id"])
    assert run.status == "FINISHED" and run.params["model.alpha"] == 1.0
