"""``interact``: controls over a function's params or a cell's literals, each Run a run."""

import pytest

import jupyter_mlops as mlops
from jupyter_mlops.dashboards.interact import mimebundle, runs_html
from jupyter_mlops.errors import ValidationError
from support import HOSTILE, assert_inert


def data():
    from sklearn.datasets import load_iris
    from sklearn.model_selection import train_test_split

    X, y = load_iris(return_X_y=True)
    return train_test_split(X, y, random_state=0)


def test_each_click_of_run_is_a_run_with_the_controls_values(store):
    from sklearn.svm import SVC

    Xtr, Xte, ytr, yte = data()

    def train(C=1.0, kernel="rbf", shrinking=True):
        if C > 9:
            raise ValueError("C is too large here")
        return SVC(C=C, kernel=kernel, shrinking=shrinking).fit(Xtr, ytr).score(Xte, yte)

    panel = mlops.interact(train, C="loguniform(0.01, 10)", kernel=["rbf", "linear"],
                           shrinking=True, metric="acc", experiment="knobs")
    box = panel.to_widget()
    controls = box.controls
    assert type(controls["C"]).__name__ == "FloatLogSlider" and controls["C"].value == 1.0
    assert [label for label, _ in controls["kernel"].options] == ["rbf", "linear"]
    assert type(controls["shrinking"]).__name__ == "Dropdown"
    controls["C"].value, controls["kernel"].value = 0.1, "linear"
    box.button.click()
    controls["C"].value = 9.5
    box.button.click()
    runs = mlops.search_runs(experiment="knobs").sort_values("start_time")
    assert list(runs["status"]) == ["FINISHED", "FAILED"]
    first = mlops.get_run(runs["run_id"].iloc[0])
    assert first.params == {"C": 0.1, "kernel": "linear", "shrinking": True}
    assert first.metrics["acc"] == panel.runs[0].metrics["acc"] > 0.5
    assert "ValueError" in box.status.value
    assert "FAILED" in box.board.value and "<svg" in box.board.value
    assert len(panel.frame()) == 2


def test_a_cell_source_gets_its_literals_as_the_controls_start(store):
    namespace = {}
    exec("from sklearn.tree import DecisionTreeClassifier\n", namespace)
    Xtr, Xte, ytr, yte = data()
    namespace.update(Xtr=Xtr, Xte=Xte, ytr=ytr, yte=yte)
    cell = ("depth = 3\nmodel = DecisionTreeClassifier(max_depth=depth, random_state=0)"
            ".fit(Xtr, ytr)\nscore = model.score(Xte, yte)\n")
    panel = mlops.interact(cell, depth=(1, 8), namespace=namespace)
    box = panel.to_widget()
    assert type(box.controls["depth"]).__name__ == "IntSlider"
    assert box.controls["depth"].value == 3
    box.controls["depth"].value = 1
    box.button.click()
    (run,) = panel.runs
    stored = mlops.get_run(run.run_id)
    assert stored.params["depth"] == 1 and "score" in stored.metrics
    assert any(a.kind == "model" for a in stored.artifacts)
    with pytest.raises(ValidationError, match="does not bind 'C'"):
        mlops.interact(cell, C=(0.1, 1.0), namespace=namespace)
    with pytest.raises(ValidationError, match="at least one control"):
        mlops.interact(cell, namespace=namespace)


def test_the_static_view_outside_a_kernel_escapes_user_strings(store):
    panel = mlops.interact(lambda k: len(k), k=[HOSTILE, "b"], metric="n")
    panel.run(k=HOSTILE)
    bundle = mimebundle(panel)
    assert "application/vnd.jupyter.widget-view+json" not in bundle  # no kernel here
    assert_inert(bundle["text/html"])
    assert_inert(runs_html(panel))
