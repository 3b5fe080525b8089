"""Parameterized notebook runs: papermill's parameters cell, literal rebinding, one parent run."""

import json

import nbformat
import pytest
from support import write_notebook

import jupyter_mlops as mlops
from jupyter_mlops.cli import main
from jupyter_mlops.store import Store
from jupyter_mlops.tracking import storage
from jupyter_mlops.tracking.notebook_runs import parameterize, parse_value

pytestmark = pytest.mark.timeout(300)

TRAIN = ("%%track -n fit\n"
         "from sklearn.datasets import load_iris\n"
         "from sklearn.linear_model import LogisticRegression\n"
         "X, y = load_iris(return_X_y=True)\n"
         "model = LogisticRegression(C=C, max_iter=max_iter).fit(X, y)\n"
         "accuracy = model.score(X, y)")


def test_a_parameters_cell_gets_the_injected_cell_after_it_and_the_cells_run_as_children(
        tmp_path):
    path = write_notebook(tmp_path / "train.ipynb", "%load_ext jupyter_mlops",
                     ("C = 1.0\nmax_iter = 200", ["parameters"]), TRAIN)
    store = Store(tmp_path / ".mlops")
    result = mlops.run_notebook(path, {"C": 0.05}, store=store,
                                output=tmp_path / "out.ipynb")
    assert result.status == "FINISHED" and result.error is None
    assert result.injected == "parameters cell"
    parent = storage.get_run(store, result.run_id)
    assert parent.status == "FINISHED" and parent.params == {"C": 0.05}
    (child_id,) = [r for (r,) in store.query(
        "SELECT run_id FROM runs WHERE parent_run_id = ?", (result.run_id,))]
    child = storage.get_run(store, child_id)
    assert child.name == "fit" and child.status == "FINISHED"
    assert child.tags["jupyter_mlops.notebook_run"] == result.run_id
    assert float(child.params["model.C"]) == 0.05  # the injected value, not the default
    # The executed notebook: kept with the parent run and written where asked, papermill's way.
    executed = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    injected = executed.cells[2]
    assert injected.metadata["tags"] == ["injected-parameters"]
    assert injected.source == "# Parameters\nC = 0.05\n"
    assert all(c.execution_count for c in executed.cells)
    (kept,) = [a for a in parent.artifacts if a.name == "train.ipynb"]
    assert json.loads(store.artifacts.path_for(kept.sha256).read_bytes()) == json.loads(
        (tmp_path / "out.ipynb").read_bytes())
    # The notebook on disk is untouched.
    assert len(nbformat.read(path, as_version=4).cells) == 3
    store.close()


def test_without_a_parameters_cell_the_literal_assignments_are_rebound(tmp_path):
    path = write_notebook(tmp_path / "ridge.ipynb", "%load_ext jupyter_mlops",
                     "%%track -n ridge\nfrom sklearn.datasets import load_diabetes\n"
                     "from sklearn.linear_model import Ridge\n"
                     "alpha = 1.0  # the default\n"
                     "X, y = load_diabetes(return_X_y=True)\n"
                     "model = Ridge(alpha=alpha).fit(X, y)")
    store = Store(tmp_path / ".mlops")
    result = mlops.run_notebook(path, {"alpha": 0.25}, store=store)
    assert result.status == "FINISHED", result.error
    assert result.injected == "literal assignments"
    (child_id,) = [r for (r,) in store.query(
        "SELECT run_id FROM runs WHERE parent_run_id = ?", (result.run_id,))]
    child = storage.get_run(store, child_id)
    assert child.params["alpha"] == 0.25
    assert "alpha = 0.25  # the default" in child.source  # the cell as it ran, for replay
    store.close()


def test_a_notebook_that_switches_stores_logs_its_runs_there_without_a_parent(tmp_path):
    other = tmp_path / "other" / ".mlops"
    path = write_notebook(tmp_path / "switch.ipynb", "%load_ext jupyter_mlops",
                          f"import jupyter_mlops as mlops\nmlops.set_store({str(other)!r})",
                          "%%track -n elsewhere\nx = 1")
    store = Store(tmp_path / ".mlops")
    result = mlops.run_notebook(path, store=store)
    assert result.status == "FINISHED", result.error
    there = Store(other)
    ((name, parent, tags),) = there.query("SELECT r.name, r.parent_run_id, "
                                          "(SELECT COUNT(*) FROM tags t WHERE t.run_id = "
                                          "r.run_id AND t.key LIKE 'jupyter_mlops.notebook%') "
                                          "FROM runs r")
    assert (name, parent, tags) == ("elsewhere", None, 0)
    assert store.query("SELECT COUNT(*) FROM runs WHERE parent_run_id = ?",
                       (result.run_id,)) == [(0,)]
    there.close()
    store.close()


def test_a_failing_cell_fails_the_run_with_the_cell_named_and_the_cli_exits_1(tmp_path):
    path = write_notebook(tmp_path / "fails.ipynb", "%load_ext jupyter_mlops",
                     ("limit = 10", ["parameters"]),
                     "%%track -n check\nif limit < 0:\n    raise ValueError('limit < 0')",
                     "after = 1")
    (tmp_path / "params.yaml").write_text("limit: 3\n")
    store_path = tmp_path / ".mlops"
    assert main(["run", str(path), "-f", str(tmp_path / "params.yaml"), "-p", "limit=-1",
                 "-o", str(tmp_path / "out.ipynb"), "--store", str(store_path)]) == 1
    store = Store(store_path)
    (parent_id, status, error), = store.query(
        "SELECT run_id, status, error FROM runs WHERE parent_run_id IS NULL")
    assert status == "FAILED"
    assert error == "cell 3 of fails.ipynb (id {}, [4]) raised ValueError: limit < 0".format(
        nbformat.read(tmp_path / "out.ipynb", as_version=4).cells[3].id)
    assert storage.get_run(store, parent_id).params == {"limit": -1}  # -p over -f
    (child_status,), = store.query("SELECT status FROM runs WHERE parent_run_id = ?",
                                   (parent_id,))
    assert child_status == "FAILED"
    executed = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    assert executed.cells[3].outputs[0]["ename"] == "ValueError"
    assert executed.cells[4].execution_count is None  # not run after the failure
    store.close()


def test_rebinding_leaves_magics_comments_and_computed_values_alone():
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("%matplotlib inline\nC = 1.0  # keep me\nn: int = 5\n"
                                  "gamma = C * 2\nlabels = ['a',\n          'b']"),
        nbformat.v4.new_code_cell("%%bash\nC = 3"),
        nbformat.v4.new_code_cell("def f():\n    C = 9\n    return C"),
    ])
    prepared, how = parameterize(notebook, {"C": 0.5, "n": 7, "labels": ["x"]})
    assert how == "literal assignments"
    assert prepared.cells[0].source == ("%matplotlib inline\nC = 0.5  # keep me\nn: int = 7\n"
                                        "gamma = C * 2\nlabels = ['x']")
    assert prepared.cells[1].source == "%%bash\nC = 3"
    assert prepared.cells[2].source == notebook.cells[2].source  # not top-level
    assert notebook.cells[0].source.startswith("%matplotlib inline\nC = 1.0")  # a copy


def test_bad_parameters_get_one_line_that_says_what_to_do(tmp_path):
    path = write_notebook(tmp_path / "nb.ipynb", "x = 1")
    store = Store(tmp_path / ".mlops")
    with pytest.raises(mlops.ValidationError, match="No cell binds y to a literal.*'parameters'"):
        mlops.run_notebook(path, {"y": 2}, store=store)
    with pytest.raises(mlops.ValidationError, match="not a Python identifier"):
        mlops.run_notebook(path, {"not valid": 2}, store=store)
    with pytest.raises(mlops.ValidationError, match="cannot be written into a notebook"):
        mlops.run_notebook(path, {"x": object()}, store=store)
    with pytest.raises(mlops.ValidationError, match="NaN and infinities cannot be written"):
        mlops.run_notebook(path, {"x": float("nan")}, store=store)
    with pytest.raises(mlops.ValidationError, match="No notebook at"):
        mlops.run_notebook(tmp_path / "missing.ipynb", store=store)
    assert store.query("SELECT count(*) FROM runs")[0][0] == 0  # nothing started
    store.close()
    assert main(["run", str(path), "-p", "x", "--store", str(tmp_path / ".mlops")]) == 2


@pytest.mark.parametrize("text, value", [("0.5", 0.5), ("3", 3), ("True", True),
                                         ("None", None), ("1e-3", 0.001), ("abc", "abc")])
def test_command_line_values_are_read_as_papermill_reads_them(text, value):
    assert parse_value(text) == value and type(parse_value(text)) is type(value)
