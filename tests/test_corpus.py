"""Notebooks written the way public notebooks are, run through ``run_notebook``: imports and
``%load_ext`` in the first cell, data loaded through functions and helper modules, cells that
fail, cells run again, MLflow calls left in. Every model they register must come with the
lineage written in the notebook's metadata and replay with ``verify=True``."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import nbformat
import pytest

import jupyter_mlops as mlops
from jupyter_mlops.store import Store
from jupyter_mlops.tracking.runner import run_notebook
from jupyter_mlops.tracking import storage

CORPUS = Path(__file__).parent / "corpus"
NOTEBOOKS = sorted(p.stem for p in CORPUS.glob("*.ipynb"))

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(900)]


def test_the_corpus_is_large_enough():
    assert len(NOTEBOOKS) >= 8


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_every_model_of_the_notebook_replays(name, tmp_path):
    folder = tmp_path / "project"
    shutil.copytree(CORPUS, folder, ignore=shutil.ignore_patterns(
        "__pycache__", ".mlops", "mlruns", "catboost_info"))
    path = folder / f"{name}.ipynb"
    notebook = nbformat.read(path, as_version=4)
    expected = notebook.metadata["corpus"]
    index = {cell.get("id"): i for i, cell in enumerate(notebook.cells)}
    order = [index[cell_id] for cell_id in expected.get("order", [])] or None
    mlruns = tmp_path / "mlruns"
    outcomes = run_notebook(path, order=order, timeout=300, env={
        "JUPYTER_MLOPS_STORE": str(folder / ".mlops"),
        "MLFLOW_TRACKING_URI": mlruns.as_uri(), "MLFLOW_ALLOW_FILE_STORE": "true",
    })
    unexpected = [(o.cell_id, o.error) for o in outcomes if o.error and not o.expected_error]
    assert not unexpected
    ran = len(order) if order else sum(c.cell_type == "code" for c in notebook.cells)
    assert len(outcomes) == ran
    assert all(o.status == "error" for o in outcomes if o.expected_error)

    store = Store(folder / ".mlops")
    try:
        registered = {n for (n,) in store.query("SELECT name FROM models")}
        assert registered == set(expected["models"])
        mlflow_runs_before = _mlflow_runs(mlruns)
        timings = {}
        for model, lineage in expected["models"].items():
            version = mlops.get_model_version(model, store=store)
            (cell,) = storage.cells(store, "id = ?", (version.cell,))
            assert cell.cell_id == lineage["cell"], model
            script = mlops.replay(model, verify=True, store=store)
            assert script.verification.ok, (model, script.verification.message,
                                            script.verification.details.get("stderr"),
                                            script.source)
            if "slice" in lineage:
                assert [e.cell_id for e in script.executions] == lineage["slice"], model
            timings[model] = (sum(e.duration_s or 0 for e in script.executions),
                              script.verification.details["seconds"])
        assert _mlflow_runs(mlruns) == mlflow_runs_before  # replays logged nothing there
    finally:
        store.close()
    _report(name, timings)


def _mlflow_runs(mlruns: Path) -> int:
    return sum(1 for meta in mlruns.glob("*/*/meta.yaml")) if mlruns.exists() else 0


def _report(name: str, timings: dict[str, tuple[float, float]]) -> None:
    """Cell time and verification time per model, appended to the file named by
    $JUPYTER_MLOPS_CORPUS_TIMINGS when it is set (the README's figures come from it)."""
    target = os.environ.get("JUPYTER_MLOPS_CORPUS_TIMINGS")
    if not target:
        return
    with open(target, "a", encoding="utf-8") as handle:
        for model, (cells, verify) in timings.items():
            handle.write(json.dumps({"notebook": name, "model": model, "cells_s": cells,
                                     "verify_s": verify}) + "\n")
