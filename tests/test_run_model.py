"""Which model is the run's: the one the cell keeps, or ``--model VAR``; other fits are
child runs, never extra models of the parent."""

import pytest

import jupyter_mlops as mlops
from support import run_cell

SETUP = """
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier
X, y = load_iris(return_X_y=True)
"""

LEARNING_CURVE = """%%track -n stronger
C = 10.0
model = LogisticRegression(C=C, max_iter=500).fit(X, y)
for n in (60, 100, 150):
    partial = LogisticRegression(C=C, max_iter=500).fit(X[:n], y[:n])
accuracy = model.score(X, y)
"""


def parent(name):
    runs = mlops.search_runs(filter=f"name = '{name}'")
    assert len(runs) == 1
    return mlops.get_run(runs.run_id[0])


def test_a_model_fitted_in_a_loop_is_a_child_not_a_second_model(shell):
    run_cell(shell, SETUP)
    assert run_cell(shell, LEARNING_CURVE).success
    run = parent("stronger")
    assert [a.name for a in run.artifacts if a.kind == "model"] == ["model/model.pkl"]
    assert not [key for key in run.params if key.startswith("partial.")]
    assert run.params["model.C"] == 10.0 and run.params["C"] == 10.0
    children = mlops.search_runs(filter=f"parent_run_id = '{run.run_id}'")
    assert sorted(children.name) == ["model: LogisticRegression",
                                     *["partial: LogisticRegression"] * 3]


def test_model_option_names_the_runs_model(shell, capsys):
    run_cell(shell, SETUP)
    cell = ("%%track -n chosen --model tree\n"
            "linear = LogisticRegression(max_iter=500).fit(X, y)\n"
            "tree = DecisionTreeClassifier(max_depth=2).fit(X, y)\n"
            "other = LogisticRegression(C=2.0, max_iter=500).fit(X, y)\n")
    assert run_cell(shell, cell).success
    run = parent("chosen")
    assert [a.name for a in run.artifacts if a.kind == "model"] == ["model/tree.pkl"]
    assert {key.split(".")[0] for key in run.params} == {"tree"}
    assert len(mlops.search_runs(filter=f"parent_run_id = '{run.run_id}'")) == 3

    capsys.readouterr()
    assert run_cell(shell, "%%track -n missing --model nothing\n"
                           "tree = DecisionTreeClassifier(max_depth=2).fit(X, y)").success
    err = capsys.readouterr().err
    assert "--model nothing: nothing is not defined when the cell ended" in err
    assert [a.name for a in parent("missing").artifacts if a.kind == "model"] == [
        "model/tree.pkl"]


def test_model_option_takes_a_variable_name():
    from IPython.core.error import UsageError

    from jupyter_mlops.magics.track import parse_track_line

    assert parse_track_line("-n a --model clf -q").model == "clf"
    with pytest.raises(UsageError, match="--model takes the name of a variable"):
        parse_track_line("--model 'a b'")
