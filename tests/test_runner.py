"""``run_notebook``: a notebook run headless in a real kernel, as JupyterLab runs it."""

from __future__ import annotations

import nbformat
import pytest

from jupyter_mlops.store import Store
from jupyter_mlops.tracking.runner import run_notebook
from jupyter_mlops.tracking import storage

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(180)]


def _notebook(path, *sources, tags=None):
    cells = [nbformat.v4.new_code_cell(source) for source in sources]
    for index, cell_tags in (tags or {}).items():
        cells[index].metadata["tags"] = cell_tags
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    return [cell.id for cell in cells]


def test_cells_run_in_order_with_their_ids_in_the_execution_log(tmp_path):
    path = tmp_path / "train.ipynb"
    ids = _notebook(
        path,
        "%load_ext jupyter_mlops",
        "%%track -n fit\nC = 0.5\nscore = C * 2",
        "1 / 0",
        "after = 1",
        tags={2: ["raises-exception"]},
    )
    store_path = tmp_path / ".mlops"
    outcomes = run_notebook(path, env={"JUPYTER_MLOPS_STORE": str(store_path)})

    assert [o.status for o in outcomes] == ["ok", "ok", "error", "ok"]
    assert [o.execution_count for o in outcomes] == [1, 2, 3, 4]
    assert outcomes[2].expected_error and outcomes[2].error.startswith("ZeroDivisionError")
    store = Store(store_path)
    try:
        cells = storage.cells(store)
        assert [c.cell_id for c in cells] == ids  # the %load_ext cell included
        (run,) = [storage.get_run(store, i) for (i,) in store.query("SELECT run_id FROM runs")]
        assert run.name == "fit" and run.params == {"C": 0.5} and run.metrics == {"score": 1.0}
    finally:
        store.close()


def test_an_unexpected_error_stops_the_run(tmp_path):
    path = tmp_path / "broken.ipynb"
    _notebook(path, "x = 1", "raise ValueError('boom')", "y = 2")
    outcomes = run_notebook(path, env={"JUPYTER_MLOPS_STORE": str(tmp_path / ".mlops")})
    assert [o.status for o in outcomes] == ["ok", "error"]
    assert outcomes[1].error == "ValueError: boom" and not outcomes[1].expected_error


def test_the_kernel_listens_on_private_ipc_sockets_not_tcp(tmp_path):
    path = tmp_path / "where.ipynb"
    _notebook(path, "from ipykernel.kernelapp import IPKernelApp\n"
                    "app = IPKernelApp.instance()\n"
                    "import os, stat\n"
                    "folder = os.path.dirname(app.ip)\n"
                    "print(app.transport, oct(os.stat(folder).st_mode & 0o077))")
    (outcome,) = run_notebook(path, env={"JUPYTER_MLOPS_STORE": str(tmp_path / ".mlops")})
    (stream,) = [m for m in outcome.outputs if m["msg_type"] == "stream"]
    assert stream["content"]["text"].split() == ["ipc", "0o0"]


def test_load_ext_names_the_store_and_why(tmp_path):
    named = tmp_path / "named" / ".mlops"
    work = tmp_path / "project"
    (work / ".mlops").mkdir(parents=True, mode=0o700)
    (work / "sub").mkdir()
    path = work / "sub" / "where.ipynb"
    _notebook(path, "%load_ext jupyter_mlops")

    def said(env):
        (outcome,) = run_notebook(path, env=env)
        return "".join(m["content"]["text"] for m in outcome.outputs
                       if m["msg_type"] == "stream").strip()

    assert said({"JUPYTER_MLOPS_STORE": str(named)}) == (
        f"jupyter_mlops: recording to {named} (set by $JUPYTER_MLOPS_STORE)")
    without = {"JUPYTER_MLOPS_STORE": ""}
    assert said(without) == (
        f"jupyter_mlops: recording to {work / '.mlops'} (found in a folder above the working one)")
    (work / ".mlops").chmod(0o777)
    line = said(without)
    assert line.startswith("jupyter_mlops: could not record this cell (StoreOwnershipError: "
                           f"The store folder {work / '.mlops'}")
    assert "chmod go-w" in line and "\n" not in line


def test_jupyter_mlops_execute_counts_cells_as_jupyter_does(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "counted.ipynb"
    _notebook(path, "%load_ext jupyter_mlops", "a = 1", "1 / 0", "b = 2",
              tags={2: ["raises-exception"]})
    notebook = nbformat.read(path, as_version=4)
    notebook.cells.insert(0, nbformat.v4.new_markdown_cell("# Counted"))
    nbformat.write(notebook, path)
    done = subprocess.run(
        [sys.executable, "-m", "jupyter_mlops.cli", "execute", str(path),
         "--store", str(tmp_path / ".mlops")],
        capture_output=True, text=True, timeout=120, check=True)
    lines = done.stdout.splitlines()
    assert "4 code cell(s) ran, 0 failed" in lines
    assert ("  [3] (cell 4 of the notebook): ZeroDivisionError: division by zero "
            "(expected: tagged raises-exception)") in lines
    assert "4 cell execution(s), in the order they ran:" in lines  # %load_ext's cell too
    assert "TCP" not in done.stderr


def test_jupyter_mlops_execute_lists_child_runs_under_their_parent(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "curve.ipynb"
    _notebook(path, "%load_ext jupyter_mlops",
              "%%track -n curve\nfrom sklearn.datasets import load_iris\n"
              "from sklearn.tree import DecisionTreeClassifier\n"
              "X, y = load_iris(return_X_y=True)\n"
              "model = DecisionTreeClassifier(max_depth=3).fit(X, y)\n"
              "for n in (50, 100):\n"
              "    partial = DecisionTreeClassifier(max_depth=3).fit(X[:n], y[:n])")
    done = subprocess.run(
        [sys.executable, "-m", "jupyter_mlops.cli", "execute", str(path),
         "--store", str(tmp_path / ".mlops")],
        capture_output=True, text=True, timeout=120, check=True)
    lines = done.stdout.splitlines()
    assert f"1 run(s) in {tmp_path / '.mlops'}, with 3 child run(s) under them" in lines
    assert ("    children model: DecisionTreeClassifier, partial: DecisionTreeClassifier ×2"
            in lines)
    assert not [line for line in lines if line.startswith("  run ") and "partial" in line]
