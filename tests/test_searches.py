"""Searches in a ``%%track`` cell: the run is the parent, every candidate or trial a child."""

import io
import math
import pickle
import warnings

import pandas as pd
import pytest

import jupyter_mlops as mlops
from jupyter_mlops.tracking import searches as searches_module
from support import run_cell

SETUP = """
import numpy as np
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV
from sklearn.preprocessing import StandardScaler
X, y = load_iris(return_X_y=True)
X = StandardScaler().fit_transform(X)  # quick to fit
"""

GRID = """%%track -n grid
gs = GridSearchCV(LogisticRegression(max_iter=500), {"C": [0.01, 100]}, cv=3)
gs.fit(X, y)
"""


def parent_and_children(name):
    frame = mlops.search_runs()
    (parent,) = frame.loc[frame["name"] == name, "run_id"]
    children = frame[frame["parent_run_id"] == parent].sort_values("name")
    return mlops.get_run(parent), [mlops.get_run(r) for r in children["run_id"]]


def table(store, run, name):
    (artifact,) = [a for a in run.artifacts if a.name == name]
    assert (artifact.kind, artifact.media_type) == ("table", "text/csv")
    return pd.read_csv(io.BytesIO(store.artifacts.read_verified(artifact.sha256)))


def test_a_grid_search_logs_its_best_model_never_the_base_defaults(shell, store):
    run_cell(shell, SETUP)
    assert run_cell(shell, GRID).success
    gs = shell.user_ns["gs"]
    parent, children = parent_and_children("grid")
    assert parent.status == "FINISHED"
    # The bug this fixes: the seed estimator's C = 1.0 was logged as the model's.
    assert not any("estimator__" in key for key in parent.params)
    assert parent.params["best_C"] == gs.best_params_["C"] == 100
    assert parent.params["gs.C"] == 100 and parent.params["gs.max_iter"] == 500
    assert parent.params["gs.search.cv"] == 3
    assert parent.params["gs.search.param_grid"] == {"C": [0.01, 100]}
    assert parent.metrics["best_cv_score"] == gs.best_score_
    (model,) = [a for a in parent.artifacts if a.kind == "model"]
    assert model.name == "model/gs.pkl"
    saved = pickle.loads(store.artifacts.read_verified(model.sha256))
    assert type(saved).__name__ == "LogisticRegression" and saved.C == 100
    assert (saved.predict(shell.user_ns["X"]) == gs.predict(shell.user_ns["X"])).all()
    results = table(store, parent, "cv_results.csv")
    assert list(results["mean_test_score"]) == list(gs.cv_results_["mean_test_score"])

    assert [c.name for c in children] == ["gs[0]", "gs[1]"]
    for i, child in enumerate(children):
        assert (child.status, child.parent_run_id) == ("FINISHED", parent.run_id)
        assert child.experiment == parent.experiment and child.cell_id == parent.cell_id
        assert child.params["C"] == [0.01, 100][i] and child.params["max_iter"] == 500
        for key in ("mean_test_score", "std_test_score", "rank_test_score", "mean_fit_time",
                    "std_fit_time", "mean_score_time", "std_score_time"):
            assert child.metrics[key] == gs.cv_results_[key][i], key
        assert not any(k.startswith(("split", "param")) for k in child.metrics)
    assert children[gs.best_index_].tags["best"] == "true"
    assert "best" not in children[1 - gs.best_index_].tags


def test_the_names_are_mlflows(shell, store, tmp_path, monkeypatch, request):
    """The same search under mlflow.sklearn.autolog: the same keys on parent and children."""
    pytest.importorskip("mlflow")
    import mlflow.sklearn

    monkeypatch.chdir(tmp_path)  # MLflow's artifacts go beside its database
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    request.addfinalizer(lambda: mlflow.set_tracking_uri(before))
    run_cell(shell, SETUP)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow.sklearn.autolog(log_models=False, log_datasets=False, silent=True,
                               max_tuning_runs=None)
        try:
            assert run_cell(shell, GRID).success
        finally:
            mlflow.sklearn.autolog(disable=True)
    (theirs,) = mlflow.search_runs(filter_string="tags.mlflow.runName != ''",
                                   search_all_experiments=True).query(
        "`tags.mlflow.parentRunId`.isnull()", engine="python")["run_id"]
    their_run = mlflow.get_run(theirs)
    their_children = mlflow.search_runs(filter_string=f"tags.mlflow.parentRunId = '{theirs}'",
                                        search_all_experiments=True)
    parent, children = parent_and_children("grid")
    best = {k for k in their_run.data.params if k.startswith("best_")}
    assert best == {k for k in parent.params if k.startswith("best_")} == {"best_C"}
    # Theirs also holds post-training metrics of the metric calls our autolog made.
    their_metrics = {k: v for k, v in their_run.data.metrics.items()
                     if k.startswith(("training_", "best_"))}
    assert set(their_metrics) == set(parent.metrics)  # best_cv_score, training_*
    for key, value in their_metrics.items():
        assert parent.metrics[key] == value, key
    their_keys = {c[8:] for c in their_children.columns if c.startswith("metrics.")}
    assert all(set(c.metrics) == their_keys for c in children)
    their_params = {c[7:] for c in their_children.columns if c.startswith("params.")}
    assert all(set(c.params) == their_params for c in children)
    assert "cv_results.csv" in {a.path for a in mlflow.MlflowClient().list_artifacts(theirs)}


def test_randomized_and_halving_searches(shell, store):
    run_cell(shell, SETUP)
    run_cell(shell, """%%track -n random
from scipy.stats import loguniform
from sklearn.experimental import enable_halving_search_cv
from sklearn.model_selection import HalvingGridSearchCV
from sklearn.tree import DecisionTreeClassifier
rs = RandomizedSearchCV(LogisticRegression(max_iter=500), {"C": loguniform(1e-2, 1e2)},
                        n_iter=4, cv=3, random_state=0).fit(X, y)
hs = HalvingGridSearchCV(DecisionTreeClassifier(random_state=0),
                         {"max_depth": [1, 2, 3, 4, 5, 6]}, cv=3, random_state=0)
hs.fit(X, y)
""")
    rs, hs = shell.user_ns["rs"], shell.user_ns["hs"]
    parent, children = parent_and_children("random")
    # Two searches in one cell: each one's best keys and table carry its name.
    assert parent.params["rs.best_C"] == rs.best_params_["C"]
    assert parent.params["hs.best_max_depth"] == hs.best_params_["max_depth"]
    assert parent.metrics["hs.best_cv_score"] == hs.best_score_
    assert {a.name for a in parent.artifacts} == {"model/rs.pkl", "model/hs.pkl",
                                                  "rs.cv_results.csv", "hs.cv_results.csv"}
    assert "rs.search.param_distributions" not in parent.params  # a scipy distribution
    by_search = {"rs": [c for c in children if c.name.startswith("rs[")],
                 "hs": [c for c in children if c.name.startswith("hs[")]}
    assert len(by_search["rs"]) == 4 and len(by_search["hs"]) == len(hs.cv_results_["params"])
    halving = sorted(by_search["hs"], key=lambda c: int(c.name[3:-1]))
    assert [c.metrics["iter"] for c in halving] == list(hs.cv_results_["iter"])
    assert [c.metrics["n_resources"] for c in halving] == list(hs.cv_results_["n_resources"])


def test_candidates_that_fail_are_failed_children_of_a_finished_run(shell, store):
    run_cell(shell, SETUP)
    result = run_cell(shell, """%%track -n half
import warnings
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    gs = GridSearchCV(LogisticRegression(max_iter=500), {"C": [-1.0, 1.0, 10.0]}, cv=3)
    gs.fit(X, y)
""")
    assert result.success
    parent, children = parent_and_children("half")
    assert parent.status == "FINISHED" and parent.params["best_C"] in (1.0, 10.0)
    statuses = {c.params["C"]: c.status for c in children}
    assert statuses == {-1.0: "FAILED", 1.0: "FINISHED", 10.0: "FINISHED"}
    failed = next(c for c in children if c.status == "FAILED")
    assert math.isnan(failed.metrics["mean_test_score"])


def test_a_search_that_raises_fails_the_run_and_logs_no_defaults(shell, store):
    run_cell(shell, SETUP)
    result = run_cell(shell, """%%track -n raising
import jupyter_mlops as mlops
mlops.log_param("kept", 1)
gs = GridSearchCV(LogisticRegression(max_iter=500), {"C": [1.0, -1.0]}, cv=3,
                  error_score="raise")
gs.fit(X, y)
""")
    assert result.error_in_exec is not None  # the user's error still reaches them
    frame = mlops.search_runs()
    assert len(frame) == 1
    run = mlops.get_run(frame.loc[0, "run_id"])
    assert run.status == "FAILED" and run.params == {"kept": 1}


def test_a_search_without_refit_logs_its_best_params_and_no_model(shell, store, recwarn):
    run_cell(shell, SETUP)
    assert run_cell(shell, "%%track -n norefit\n"
                           "gs = GridSearchCV(LogisticRegression(max_iter=500), "
                           "{'C': [0.01, 100]}, cv=3, refit=False).fit(X, y)\n").success
    parent, children = parent_and_children("norefit")
    assert parent.params["best_C"] == 100 and parent.params["gs.search.refit"] is False
    assert [a.kind for a in parent.artifacts] == ["table"] and len(children) == 2
    assert not any(k.startswith("training_") for k in parent.metrics)
    assert [str(w.message) for w in recwarn if w.filename == "jupyter_mlops"] == []


def test_a_search_only_used_in_a_later_cell_is_not_logged_again(shell, store):
    run_cell(shell, SETUP)
    run_cell(shell, GRID)
    run_cell(shell, "%%track -n later\nacc = gs.score(X, y)\n")
    later, children = parent_and_children("later")
    assert children == [] and set(later.params) == set()
    assert [a for a in later.artifacts if a.kind != "figure"] == []
    assert later.metrics == {"acc": shell.user_ns["acc"]}


def test_past_the_bound_the_best_candidates_are_children(shell, store, monkeypatch):
    monkeypatch.setattr(searches_module, "MAX_CHILDREN", 2)
    run_cell(shell, SETUP)
    with pytest.warns(UserWarning, match="tried 4 candidates: the 2 best ranked"):
        run_cell(shell, """%%track -n big
gs = GridSearchCV(LogisticRegression(max_iter=500), {"C": [0.001, 0.01, 1.0, 100.0]}, cv=3)
gs.fit(X, y)
""")
    parent, children = parent_and_children("big")
    ranks = shell.user_ns["gs"].cv_results_["rank_test_score"]
    kept = sorted(range(4), key=lambda i: (ranks[i], i))[:2]
    assert sorted(c.name for c in children) == [f"gs[{i}]" for i in sorted(kept)]
    assert len(table(store, parent, "cv_results.csv")) == 4


OPTUNA_SETUP = """
import optuna
optuna.logging.set_verbosity(optuna.logging.ERROR)
def objective(trial):
    x = trial.suggest_float("x", -3, 3)
    kind = trial.suggest_categorical("kind", ["a", "b"])
    for step in range(3):
        trial.report(x * x + step, step)
    if trial.number == 1:
        raise optuna.TrialPruned()
    if trial.number == 2:
        raise ValueError("diverged")
    return (x - 1) ** 2
"""


def test_an_optuna_study_gives_a_child_per_trial(shell, store):
    run_cell(shell, OPTUNA_SETUP)
    result = run_cell(shell, """%%track -n study
study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
study.optimize(objective, n_trials=6, catch=(ValueError,))
""")
    assert result.success
    study = shell.user_ns["study"]
    parent, children = parent_and_children("study")
    assert parent.status == "FINISHED"
    assert parent.params["best_x"] == study.best_params["x"]
    assert parent.params["best_kind"] == study.best_params["kind"]
    assert parent.metrics["best_value"] == study.best_value
    assert parent.params["study.search.direction"] == "minimize"
    assert parent.params["study.search.sampler"] == "RandomSampler"
    assert len(table(store, parent, "trials.csv")) == 6
    by_number = {int(c.name[6:-1]): c for c in children}
    assert sorted(by_number) == list(range(6))
    assert by_number[1].tags["state"] == "PRUNED" and by_number[1].status == "FINISHED"
    assert by_number[2].tags["state"] == "FAIL" and by_number[2].status == "FAILED"
    trial = study.trials[3]
    child = by_number[3]
    assert child.params == trial.params and child.metrics["value"] == trial.value
    assert [(m.step, m.value) for m in child.metric_history("intermediate_value")] == sorted(
        trial.intermediate_values.items())
    assert child.start_time == trial.datetime_start.timestamp()
    assert child.duration_s == pytest.approx(trial.duration.total_seconds(), abs=1e-6)
    assert by_number[study.best_trial.number].tags["best"] == "true"


def test_a_study_carried_over_logs_only_the_trials_of_this_cell(shell, store):
    run_cell(shell, OPTUNA_SETUP)
    run_cell(shell, "%%track -n first\nstudy = optuna.create_study()\n"
                    "study.optimize(lambda t: t.suggest_float('x', 0, 1), n_trials=3)")
    run_cell(shell, "%%track -n second\n"
                    "study.optimize(lambda t: t.suggest_float('x', 0, 1), n_trials=2)")
    _, first = parent_and_children("first")
    second_parent, second = parent_and_children("second")
    assert sorted(c.name for c in first) == ["study[0]", "study[1]", "study[2]"]
    assert sorted(c.name for c in second) == ["study[3]", "study[4]"]
    assert second_parent.metrics["best_value"] == shell.user_ns["study"].best_value


def test_a_study_without_a_completed_trial_warns_once_and_keeps_everything(shell, store):
    run_cell(shell, OPTUNA_SETUP)
    with pytest.warns(UserWarning) as caught:
        result = run_cell(shell, """%%track -n empty
import jupyter_mlops as mlops
mlops.log_metric("kept", 1.0)
study = optuna.create_study()
study.optimize(lambda t: (_ for _ in ()).throw(optuna.TrialPruned()), n_trials=2)
study.optimize(lambda t: 1 / 0, n_trials=1, catch=(ZeroDivisionError,))
""")
    ours = [w for w in caught if "jupyter_mlops" in w.filename or "no completed" in
            str(w.message)]
    assert len(ours) == 1 and "has no completed trial" in str(ours[0].message)
    assert "\n" not in str(ours[0].message)
    assert result.success
    parent, children = parent_and_children("empty")
    assert parent.status == "FINISHED" and parent.metrics == {"kept": 1.0}
    assert not any(k.startswith("best_") for k in parent.params)
    assert sorted(c.tags["state"] for c in children) == ["FAIL", "PRUNED", "PRUNED"]


HYPEROPT_SETUP = """
from hyperopt import STATUS_FAIL, STATUS_OK, Trials, fmin, hp, tpe
import numpy as np
space = {"x": hp.uniform("x", -2, 2), "kind": hp.choice("kind", ["a", "b"])}
def objective(p):
    if p["x"] > 1.5:
        return {"status": STATUS_FAIL}
    return {"loss": (p["x"] - 0.5) ** 2, "status": STATUS_OK, "accuracy": 1 - abs(p["x"])}
"""


def test_hyperopt_trials_give_a_child_per_trial(shell, store):
    run_cell(shell, HYPEROPT_SETUP)
    result = run_cell(shell, """%%track -n hyper
trials = Trials()
best = fmin(objective, space, algo=tpe.suggest, max_evals=12, trials=trials,
            rstate=np.random.default_rng(0), show_progressbar=False)
""")
    assert result.success
    trials, best = shell.user_ns["trials"], shell.user_ns["best"]
    parent, children = parent_and_children("hyper")
    assert parent.params["best_x"] == best["x"] and parent.params["best_kind"] == best["kind"]
    assert parent.metrics["best_loss"] == trials.best_trial["result"]["loss"]
    assert len(table(store, parent, "trials.csv")) == 12
    assert len(children) == 12
    for child in children:
        trial = trials.trials[int(child.name[7:-1])]
        assert child.params["x"] == trial["misc"]["vals"]["x"][0]
        if trial["result"]["status"] == "ok":
            assert child.status == "FINISHED"
            assert child.metrics == {"loss": trial["result"]["loss"],
                                     "accuracy": trial["result"]["accuracy"]}
        else:
            assert child.status == "FAILED" and child.metrics == {}
    assert [c.tags.get("best") for c in children].count("true") == 1


def test_fmin_without_trials_gives_the_best_values_as_params(shell, store):
    run_cell(shell, HYPEROPT_SETUP)
    run_cell(shell, """%%track -n bare
best = fmin(objective, space, algo=tpe.suggest, max_evals=5,
            rstate=np.random.default_rng(0), show_progressbar=False)
""")
    parent, children = parent_and_children("bare")
    best = shell.user_ns["best"]
    assert parent.params == {"best_x": best["x"], "best_kind": best["kind"]}
    assert children == []


def test_search_kind_imports_nothing():
    import subprocess
    import sys

    code = ("import sys\nfrom jupyter_mlops.tracking.searches import search_kind\n"
            "assert search_kind(object()) is None and search_kind({}) is None\n"
            "print(sorted(m for m in ('sklearn', 'optuna', 'hyperopt', 'pandas') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_in_a_real_kernel_a_search_and_a_failing_study_each_cost_one_line(kernel):
    from support import stream_text

    reply, _ = kernel.execute("%load_ext jupyter_mlops\n" + SETUP + OPTUNA_SETUP)
    assert reply["status"] == "ok"
    reply, outputs = kernel.execute(GRID, timeout=120)
    assert reply["status"] == "ok" and stream_text(outputs, "stderr") == ""
    reply, outputs = kernel.execute(
        "%%track -n empty\nstudy = optuna.create_study()\n"
        "study.optimize(lambda t: 1 / 0, n_trials=2, catch=(ZeroDivisionError,))\n",
        timeout=120)
    assert reply["status"] == "ok"
    lines = stream_text(outputs, "stderr").splitlines()
    assert len(lines) == 1 and "has no completed trial" in lines[0], lines
    reply, outputs = kernel.execute(
        "import jupyter_mlops as mlops\n"
        "runs = mlops.search_runs()\n"
        "print(sorted(runs['name']), sorted(set(runs['status'])))\n"
        "grid = runs[runs['name'] == 'grid'].iloc[0]\n"
        "print(sorted(mlops.get_run(grid['run_id']).params)[:2])")
    printed = stream_text(outputs).splitlines()
    assert printed[0] == ("['empty', 'grid', 'gs[0]', 'gs[1]', 'study[0]', 'study[1]'] "
                          "['FAILED', 'FINISHED']")
    assert printed[1] == "['best_C', 'gs.C']"


def test_the_cell_names_the_function_each_name_was_bound_from():
    from jupyter_mlops.tracking.cellnames import analyze

    names = analyze("best = hyperopt.fmin(f, space)\nother = fmin(f, space)\nx = 1\n")
    assert names.calls == {"best": "hyperopt.fmin", "other": "fmin"}
