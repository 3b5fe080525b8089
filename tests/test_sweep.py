"""``%%sweep``: each trial a ``%%track`` child run of one parent, with real sklearn models."""

import io
import pickle

import pandas as pd
import pytest
from IPython.core.error import UsageError

import jupyter_mlops as mlops
from jupyter_mlops.tracking.cellnames import analyze
from jupyter_mlops.tracking.sweepcell import TrialCell, check_swept, substitute
from jupyter_mlops.tracking.sweepspace import parse_space, split_line
from jupyter_mlops.errors import ValidationError
from jupyter_mlops.magics.sweep import parse_sweep_line
from support import run_cell

SETUP = """
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.tree import DecisionTreeClassifier
X, y = load_iris(return_X_y=True)
Xtr, Xte, ytr, yte = train_test_split(X, y, random_state=0)
"""

TREES = """%%sweep max_depth=[1, 2, 3] criterion=["gini", "entropy"] --maximize accuracy --name trees
max_depth = 2
criterion = "gini"
model = DecisionTreeClassifier(max_depth=max_depth, criterion=criterion, random_state=0)
model.fit(Xtr, ytr)
accuracy = model.score(Xte, yte)
"""


def children(parent_id):
    frame = mlops.search_runs()
    return frame[frame["parent_run_id"] == parent_id]


def test_a_grid_sweep_runs_each_point_as_a_child_and_keeps_the_best_on_the_parent(shell, store):
    run_cell(shell, SETUP)
    outcome = run_cell(shell, TREES)
    assert outcome.success, outcome.error_in_exec
    result = outcome.result
    trials = children(result.run_id)
    assert len(trials) == 6 and set(trials["status"]) == {"FINISHED"}
    # Each trial is the cell with its literals replaced: its params are the point it ran.
    points = {(r["params.max_depth"], r["params.criterion"]) for _, r in trials.iterrows()}
    assert points == {(d, c) for d in (1, 2, 3) for c in ("gini", "entropy")}
    parent = mlops.get_run(result.run_id)
    assert parent.status == "FINISHED" and parent.name == "trees"
    assert parent.params["sweep.space.max_depth"] == "[1, 2, 3]"
    assert parent.params["best_max_depth"] == 3 == result.best_params["max_depth"]
    best = mlops.get_run(result.best_run_id)
    assert parent.metrics["best_accuracy"] == best.metrics["accuracy"] == max(
        trials["metrics.accuracy"])
    assert parent.tags["sweep.best_trial"] == result.best_run_id
    # The best so far after each trial, written with the parent's end for quick trials.
    history = parent.metric_history("best_accuracy")
    assert [m.step for m in history] == sorted(t.number for t in result.trials)
    assert [m.value for m in history] == sorted(m.value for m in history)
    assert history[-1].value == parent.metrics["best_accuracy"]
    # max_depth moves the accuracy, the criterion barely: the ranking says so.
    assert parent.metrics["sweep.importance.max_depth"] > parent.metrics[
        "sweep.importance.criterion"]
    # The best trial's model is the parent's, so it registers in one line.
    (model,) = [a for a in parent.artifacts if a.kind == "model"]
    assert model.sha256 == [a for a in best.artifacts if a.kind == "model"][0].sha256
    assert pickle.loads(store.artifacts.read_verified(model.sha256)).max_depth == 3
    version = result.register("iris-tree", alias="champion")
    assert mlops.load_model("iris-tree@champion").max_depth == 3
    assert version.run_id == result.best_run_id
    (table,) = [a for a in parent.artifacts if a.name == "trials.csv"]
    rows = pd.read_csv(io.BytesIO(store.artifacts.read_verified(table.sha256)))
    assert list(rows["number"]) == list(range(6)) and "accuracy" in rows
    # The parent links back to the cell; the cell's own namespace is left as a trial set it.
    assert parent.source.startswith("%%sweep max_depth=")
    assert parent.cell_id is None or isinstance(parent.cell_id, str)
    # Each trial is an execution of the sweep's cell: the best one replays and verifies.
    assert best.execution_count == parent.execution_count is not None
    assert best.cell_id == parent.cell_id
    script = mlops.replay("iris-tree@champion", verify=True)
    assert "max_depth = 3" in str(script) and "%%sweep" not in str(script)
    assert script.verification.ok, script.verification.message


def test_tpe_over_a_log_range_is_bounded_by_n_and_a_failing_trial_is_failed(shell, store):
    run_cell(shell, SETUP)
    cell = """%%sweep C=loguniform(1e-3, 1e2) -n 5 --maximize acc --seed 1 --method tpe
C = 1.0
if C > 20:
    raise ValueError("C too large for this demo")
clf = LogisticRegression(C=C, max_iter=300).fit(Xtr, ytr)
acc = clf.score(Xte, yte)
"""
    outcome = run_cell(shell, cell)
    assert outcome.success, outcome.error_in_exec
    trials = children(outcome.result.run_id)
    assert len(trials) == 5
    values = trials["params.C"]
    assert ((values >= 1e-3) & (values <= 1e2)).all()
    failed = trials[trials["status"] == "FAILED"]
    assert (failed["params.C"] > 20).all()
    for run_id in failed["run_id"]:
        assert "C too large" in mlops.get_run(run_id).traceback
    assert (trials[trials["status"] == "FINISHED"]["params.C"] <= 20).all()
    assert mlops.get_run(outcome.result.run_id).status == "FINISHED"


def test_a_timeout_bounds_the_sweep(shell, store):
    run_cell(shell, SETUP)
    cell = """%%sweep depth=int(1, 8) -n 50 --timeout 0.5 --maximize acc --method random
import time
depth = 3
time.sleep(0.2)
acc = DecisionTreeClassifier(max_depth=depth).fit(Xtr, ytr).score(Xte, yte)
"""
    outcome = run_cell(shell, cell)
    assert outcome.success, outcome.error_in_exec
    assert 1 <= len(children(outcome.result.run_id)) < 50


def test_a_literal_a_function_binds_is_baked_into_the_function_each_trial_defines(shell,
                                                                                     store):
    # Trials run one code object compiled once, reading the swept literals from the trial's
    # values while the trial runs; a function called after the trial must not read them.
    outcome = run_cell(shell, """%%sweep a=[1, 2] b=[3, 4] --maximize acc
b = 0
def f():
    a = 5
    return a
acc = f() + b
""")
    assert outcome.success, outcome.error_in_exec
    assert sorted(t.value for t in outcome.result.trials) == [4, 5, 5, 6]
    later = run_cell(shell, "later = (f(), b)")
    assert later.success, later.error_in_exec
    assert shell.user_ns["later"] == (2, 4)


@pytest.mark.parametrize("line, message", [
    ("--maximize acc", "sweep space is empty"),
    ("depth=[] --maximize acc", "is empty"),
    ("depth=loguniform(0, 1) --maximize acc", "above 0"),
    ("depth=int(1.5, 3) --maximize acc", "whole numbers"),
    ("depth=[1,2]", "--maximize METRIC"),
    ("depth=foo(1) --maximize acc", "not understood"),
])
def test_a_bad_line_is_refused_in_one_line(line, message):
    with pytest.raises(UsageError, match=message):
        parse_sweep_line(line)


def test_a_name_the_cell_does_not_bind_to_a_literal_is_refused_before_any_trial(shell, store):
    run_cell(shell, SETUP)
    cell = """%%sweep depth=[1, 2] --maximize acc
depth = len(Xtr) // 50
acc = DecisionTreeClassifier(max_depth=depth).fit(Xtr, ytr).score(Xte, yte)
"""
    outcome = run_cell(shell, cell)
    assert isinstance(outcome.error_in_exec, UsageError)
    assert "does not bind 'depth' to a literal" in str(outcome.error_in_exec)
    assert mlops.search_runs().empty  # no parent, no trial


def test_a_missing_metric_stops_the_sweep_naming_the_metrics_there(shell, store):
    run_cell(shell, SETUP)
    cell = """%%sweep depth=[1, 2] --maximize accuracy
depth = 1
acc = DecisionTreeClassifier(max_depth=depth).fit(Xtr, ytr).score(Xte, yte)
"""
    outcome = run_cell(shell, cell)
    assert isinstance(outcome.error_in_exec, UsageError)
    assert "no metric 'accuracy' (its metrics: acc)" in str(outcome.error_in_exec)
    (parent,) = [r for r in mlops.search_runs()["run_id"]
                 if "sweep.key" in mlops.get_run(r).tags]
    assert mlops.get_run(parent).status == "FAILED"


def test_the_space_parser_and_the_literal_rewrite():
    assert split_line('a=[1, 2] b=uniform(0, 1) --name "my sweep"') == [
        "a=[1, 2]", "b=uniform(0, 1)", "--name", '"my sweep"']
    space = parse_space(["k=['rbf', 'linear']", "C=loguniform(1e-3,1e2)", "n=int(1,9)"])
    assert space["k"].choices == ("rbf", "linear")
    assert (space["C"].log, space["n"].kind) == (True, "int")
    with pytest.raises(ValidationError, match="twice"):
        parse_space(["a=[1]", "a=[2]"])
    code = "C = 1.0  # strength\nk: str = 'rbf'\nprint('é', C, k)\n"
    assert substitute(code, {"C": 0.25, "k": "linear"}) == (
        "C = 0.25  # strength\nk: str = 'linear'\nprint('é', C, k)\n")
    check_swept(code, ["C", "k"])
    with pytest.raises(ValidationError, match="'z'"):
        check_swept(code, ["z"])
    # Read once per sweep: each trial's analysis is what the trial's own text gives, and a
    # literal that is no plain constant (before or after) is read from the trial's text.
    cell = TrialCell("C = -1.0\nk: str = 'rbf'\nif C:\n    k = 'poly'\ncfg = {'a': 1}\n"
                     "m = SVC(C=C, kernel=k).fit(X, y)\nm\n")
    for values in ({"C": 0.25, "k": "linear"}, {"C": 3, "k": None}, {"C": float("inf")},
                   {"cfg": {"b": 2}}, {"k": True}):
        body = cell.body(values)
        assert body == substitute(cell.code, values)
        assert cell.names(values, body) == analyze(body), values


def test_the_live_view_escapes_user_strings(shell, store):
    from jupyter_mlops.dashboards.sweep import sweep_html
    from jupyter_mlops.tracking.sweep import SweepProgress, Trial
    from support import HOSTILE, assert_inert

    space = parse_space({"k": [HOSTILE, "b"]})
    progress = SweepProgress("0" * 32, HOSTILE, "acc", "maximize", "grid", space, 2,
                             [Trial(0, "1" * 32, {"k": HOSTILE}, "FINISHED", 0.5, 0.1)])
    progress.best = progress.trials[0]
    markup = sweep_html(progress)
    assert_inert(markup)
    assert "<svg" in markup and "jp-mlops-better-b" in markup


def test_sweep_a_function_each_call_a_child_run(store):
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    calls = []

    def train(C, penalty):
        calls.append(C)
        if C > 50:
            raise RuntimeError("diverged")
        return {"acc": LogisticRegression(C=C, max_iter=300).fit(X, y).score(X, y)}

    result = mlops.sweep(train, {"penalty": ["l2"]}, C="loguniform(1e-2, 1e2)", n_trials=6,
                         maximize="acc", method="random", seed=3, name="fn")
    assert len(calls) == 6 and len(result.trials) == 6
    frame = children(result.run_id)
    assert set(frame["status"]) <= {"FINISHED", "FAILED"}
    assert list(frame.sort_values("params.C")["params.C"]) == sorted(calls)
    finished = frame[frame["status"] == "FINISHED"]
    assert result.best_value == finished["metrics.acc"].max()
    assert mlops.get_run(result.run_id).params["best_C"] == result.best_params["C"]
    assert (frame[frame["status"] == "FAILED"]["params.C"] > 50).all()


def test_sweep_a_cell_source_in_a_namespace_autologs_its_model(store):
    namespace = {}
    exec(SETUP, namespace)
    cell = ("depth = 1\nmodel = DecisionTreeClassifier(max_depth=depth, random_state=0)\n"
            "model.fit(Xtr, ytr)\nscore = model.score(Xte, yte)\n")
    result = mlops.sweep(cell, depth=[1, 3], maximize="score", namespace=namespace)
    assert result.best_params == {"depth": 3} and result.status == "FINISHED"
    best = mlops.get_run(result.best_run_id)
    assert best.params["depth"] == 3 and best.metrics["score"] == result.best_value
    assert result.register("tree-from-source").version == 1
    with pytest.raises(ValidationError, match="does not bind 'C'"):
        mlops.sweep(cell, C=[1], maximize="score", namespace=namespace)


def test_the_param_that_moves_the_metric_ranks_first():
    from jupyter_mlops.tracking.sweep import Trial
    from jupyter_mlops.tracking.sweepimportance import param_importance

    trials = [Trial(i, "0" * 32, {"depth": d, "noise": n, "kind": k}, "FINISHED", v)
              for i, (d, n, k, v) in enumerate([(1, 5, "a", 0.1), (2, 1, "b", 0.2),
                                                 (3, 4, "a", 0.3), (4, 2, "b", 0.4),
                                                 (5, 3, "a", 0.5)])]
    scores = param_importance(trials, ["noise", "kind", "depth"])
    assert list(scores)[0] == "depth" and scores["depth"] == 1.0
    assert scores["noise"] < 1.0 and 0 <= scores["kind"] < 1.0
    assert param_importance(trials[:2], ["depth"]) == {}


def test_a_tpe_sweep_stopped_by_an_interrupt_resumes_with_its_finished_trials(store):
    calls = []

    def objective(x, kind):
        calls.append(x)
        if len(calls) == 3 and not resumed:
            raise KeyboardInterrupt
        return {"score": -((x - 2.0) ** 2) + (kind == "b")}

    resumed = False
    with pytest.raises(KeyboardInterrupt):
        mlops.sweep(objective, x="uniform(0, 5)", kind=["a", "b"], n_trials=5,
                    maximize="score", method="tpe", seed=0)
    (parent,) = [r for r in mlops.search_runs()["run_id"]
                 if "sweep.key" in mlops.get_run(r).tags]
    assert mlops.get_run(parent).status == "KILLED"
    assert sorted(children(parent)["status"]) == ["FINISHED", "FINISHED", "KILLED"]
    resumed = True
    result = mlops.sweep(objective, x="uniform(0, 5)", kind=["a", "b"], n_trials=5,
                         maximize="score", method="tpe", seed=0)
    assert result.resumed and result.run_id == parent and result.status == "FINISHED"
    frame = children(parent)
    assert (frame["status"] == "FINISHED").sum() == 5 and (frame["status"] == "KILLED").sum() == 1
    assert len(calls) == 3 + 3  # two kept, the killed one and two more run
    assert mlops.get_run(parent).params["best_x"] == result.best_params["x"]


def test_the_median_pruner_stops_trials_behind_the_others_and_the_sweep_goes_on(shell, store):
    # A loop's per-step metric (the loop capture) feeds Optuna's pruner.
    cell = """%%sweep lr=uniform(0, 1) -n 12 --method tpe --seed 3 --maximize score
lr = 0.5
for step in range(8):
    score = lr * step
"""
    outcome = run_cell(shell, cell)
    assert outcome.success, outcome.error_in_exec
    result = outcome.result
    pruned = [t for t in result.trials if t.status == "PRUNED"]
    assert pruned and len(result.trials) == 12 and result.status == "FINISHED"
    run = mlops.get_run(pruned[0].run_id)
    assert run.status == "KILLED" and run.tags["sweep.pruned"].isdigit()
    assert mlops.get_run(result.best_run_id).status == "FINISHED"
    # log_metric(step=) feeds it too; --pruner none (pruner="none") prunes nothing.
    def train(lr):
        for step in range(8):
            mlops.log_metric("score", lr * step, step=step)
        return lr * 7

    by_log = mlops.sweep(train, lr="uniform(0, 1)", n_trials=12, method="tpe", seed=3,
                         maximize="score", experiment="logged")
    assert any(t.status == "PRUNED" for t in by_log.trials)
    unpruned = mlops.sweep(train, lr="uniform(0, 1)", n_trials=8, method="tpe", seed=3,
                           maximize="score", experiment="unpruned", pruner="none")
    assert {t.status for t in unpruned.trials} == {"FINISHED"}
