"""A notebook run by papermill with parameters: papermill sends no cell ids and tells the
kernel no notebook path, yet the execution log places every cell (the injected parameters
cell included), the run carries its cell, and the model it registers replays."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

import jupyter_mlops as mlops
from jupyter_mlops.store import Store
from jupyter_mlops.tracking import storage

pytest.importorskip("papermill")

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(600)]

SOURCES = {
    "setup": "%load_ext jupyter_mlops\nimport numpy as np\n"
             "from sklearn.linear_model import Ridge",
    "parameters": "alpha = 1.0\nn = 40",
    "data": "def make_data(n, seed=0):\n    rng = np.random.default_rng(seed)\n"
            "    X = rng.normal(size=(n, 3))\n    return X, X @ [1.0, -2.0, 0.5] + rng.normal(size=n)",
    "train": "%%track -n ridge\nX, y = make_data(n)\nmodel = Ridge(alpha=alpha).fit(X, y)\n"
             "score = model.score(X, y)",
    "register": "%mlops register papermilled --var model",
}


def _notebook(folder: Path) -> Path:
    cells = []
    for name, source in SOURCES.items():
        cell = nbformat.v4.new_code_cell(source)
        cell.id = name
        if name == "parameters":
            cell.metadata["tags"] = ["parameters"]
        cells.append(cell)
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    path = folder / "train.ipynb"
    nbformat.write(notebook, path)
    return path


def _check(folder: Path, output: Path) -> None:
    executed = nbformat.read(output, as_version=4)
    (injected,) = [c for c in executed.cells
                   if "injected-parameters" in c.metadata.get("tags", [])]
    store = Store(folder / ".mlops")
    try:
        history = mlops.cell_history("all", store=store)
        (run_id,) = [r for (r,) in store.query("SELECT run_id FROM runs WHERE name = 'ridge'")]
        run = storage.get_run(store, run_id)
        version = mlops.get_model_version("papermilled", store=store)
        (made_by,) = storage.cells(store, "id = ?", (version.cell,))
        script = mlops.replay("papermilled", verify=True, store=store)
        sessions = [n for (n,) in store.query("SELECT notebook FROM sessions")]
    finally:
        store.close()
    assert list(history["cell_id"]) == ["setup", "parameters", injected.id, "data", "train",
                                        "register"]
    assert list(history["position"]) == [0, 1, 2, 3, 4, 5]
    # The output notebook, saved before the kernel starts, is the one found.
    assert sessions == [str(output.resolve())]
    assert run.cell_id == "train" and run.status == "FINISHED"
    assert run.params["model.alpha"] == 0.25
    assert made_by.cell_id == "train" and version.run_id == run_id
    assert script.verification.ok, (script.verification.message, script.source,
                                     script.verification.details.get("stderr"))
    # The slice takes the injected values, not the notebook's defaults.
    assert [e.cell_id for e in script.executions] == ["setup", injected.id, "data", "train"]
    assert "alpha = 0.25" in script.source


def _env(folder: Path) -> dict[str, str]:
    env = dict(os.environ, JUPYTER_MLOPS_STORE=str(folder / ".mlops"))
    for var in ("JPY_SESSION_NAME", "JUPYTER_MLOPS_NOTEBOOK"):
        env.pop(var, None)
    return env


def test_papermill_api_run_in_the_notebook_folder(tmp_path, monkeypatch):
    """``execute_notebook(..., cwd=folder)``: the kernel finds the notebook in its folder."""
    import papermill

    folder = tmp_path / "project"
    folder.mkdir()
    path = _notebook(folder)
    output = folder / "train-out.ipynb"
    for var, value in _env(folder).items():
        monkeypatch.setenv(var, value)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    monkeypatch.delenv("JUPYTER_MLOPS_NOTEBOOK", raising=False)
    papermill.execute_notebook(str(path), str(output), parameters={"alpha": 0.25, "n": 60},
                               cwd=str(folder), kernel_name="python3", progress_bar=False)
    _check(folder, output)


def test_papermill_command_line_from_another_folder(tmp_path):
    """``papermill in.ipynb out.ipynb -p ...`` run from elsewhere: the kernel reads the
    notebook paths from the command that started it."""
    folder = tmp_path / "project"
    folder.mkdir()
    path = _notebook(folder)
    output = tmp_path / "runs" / "out.ipynb"
    output.parent.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    papermill = Path(sys.executable).with_name("papermill")
    done = subprocess.run(
        [str(papermill), str(path.relative_to(tmp_path)), str(output.relative_to(tmp_path)),
         "-p", "alpha", "0.25", "-p", "n", "60", "-k", "python3", "--no-progress-bar"],
        cwd=tmp_path, env=_env(folder), capture_output=True, text=True, timeout=500)
    assert done.returncode == 0, done.stderr[-3000:]
    _check(folder, output)


def test_a_notebook_that_merely_sits_in_the_folder_is_not_taken(tmp_path, monkeypatch):
    """A kernel run without cell ids beside a notebook that never loads the extension (and
    holds the same source) gets no ids from it."""
    from support import Kernel

    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")]),
                   tmp_path / "other.ipynb")
    monkeypatch.delenv("JUPYTER_MLOPS_NOTEBOOK", raising=False)
    kernel = Kernel(tmp_path / ".mlops", tmp_path)
    try:
        for source in ("%load_ext jupyter_mlops", "x = 1"):
            assert kernel.execute(source)[0]["status"] == "ok"
        flush = "from jupyter_mlops.tracking.capture import flush_capture\nflush_capture()"
        assert kernel.execute(flush)[0]["status"] == "ok"
    finally:
        kernel.shutdown()
    store = Store(tmp_path / ".mlops")
    try:
        history = mlops.cell_history("all", store=store)
    finally:
        store.close()
    assert list(history["cell_id"])[:2] == [None, None]
