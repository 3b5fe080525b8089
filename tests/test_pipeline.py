"""Pipelines cut from a model's replay slice: steps, typed parameters, a signed cache, a run
that registers its model, verification, failures, and a pipeline fired by the scheduler."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support import write_notebook

import jupyter_mlops as mlops
from jupyter_mlops.cli import main
from jupyter_mlops.monitoring.scheduler import Scheduler
from jupyter_mlops.store import Store
from jupyter_mlops.tracking import storage
from jupyter_mlops.tracking.runner import run_notebook as execute

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(300)]

# Five cells the model depends on, a parameter cell, and a cell it does not depend on.
CELLS = (
    "%load_ext jupyter_mlops",
    "import pandas as pd\nfrom sklearn.linear_model import LogisticRegression\n"
    "from sklearn.model_selection import train_test_split\n"
    "from sklearn.pipeline import make_pipeline\nfrom sklearn.preprocessing import StandardScaler",
    "DATA = 'data.csv'\nTEST_SIZE = 0.25\nC = 1.0",
    "df = pd.read_csv(DATA)",
    "df['ab'] = df['a'] * df['b']",
    "unrelated = len(df) * 2",
    "X_train, X_test, y_train, y_test = train_test_split(\n"
    "    df.drop(columns=['y']), df['y'], test_size=TEST_SIZE, random_state=0)",
    "scaler = StandardScaler().fit(X_train)",
    "%%track -n train\nmodel = make_pipeline(scaler, LogisticRegression(C=C, max_iter=500))\n"
    "model.fit(X_train, y_train)\naccuracy = model.score(X_test, y_test)",
    "%mlops register demo --var model --alias champion",
)


def _data(path: Path, seed: int = 0, rows: int = 300):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, 4))
    frame = pd.DataFrame(X, columns=list("abcd"))
    frame["y"] = (X[:, 0] + X[:, 1] + 0.3 * rng.normal(size=rows) > 0).astype(int)
    frame.to_csv(path, index=False)
    return frame


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A notebook run headless in a real kernel: the slice of ``demo/1`` has five cells."""
    folder = tmp_path_factory.mktemp("pipeline")
    _data(folder / "data.csv")
    notebook = write_notebook(folder / "train.ipynb", *CELLS)
    outcomes = execute(notebook, env={"JUPYTER_MLOPS_STORE": str(folder / ".mlops")})
    assert all(o.status == "ok" for o in outcomes), [o.error for o in outcomes]
    store = Store(folder / ".mlops")
    yield folder, store, mlops.pipeline("demo@champion", store=store)
    store.close()


def _runs(store):
    return store.query("SELECT count(*) FROM runs")[0][0]


def test_the_slice_becomes_five_steps_with_typed_parameters_and_plain_python(trained):
    folder, store, built = trained
    plan = built.plan
    assert built.parameters == {"DATA": "data.csv", "TEST_SIZE": 0.25, "C": 1.0}
    assert {k: v["type"] for k, v in plan["parameters"].items()} == {
        "DATA": "str", "TEST_SIZE": "float", "C": "float"}
    steps = {s["module"]: s for s in plan["steps"]}
    assert list(steps) == ["s01_df", "s02_df", "s03_x_train", "s04_scaler", "s05_model"]
    assert steps["s01_df"]["params"] == ["DATA"] and steps["s01_df"]["sources"] == []
    assert steps["s02_df"]["inputs"] == ["df"] and steps["s02_df"]["outputs"] == ["df"]
    assert steps["s03_x_train"]["params"] == ["TEST_SIZE"]
    assert steps["s05_model"]["inputs"] == ["X_test", "X_train", "scaler", "y_test", "y_train"]
    assert steps["s05_model"]["params"] == ["C"] and plan["model"] == ["model"]
    assert plan["source_version"] == "demo/1"
    code = (built.folder / "steps" / "s05_model.py").read_text()
    assert "def run(X_test, X_train, scaler, y_test, y_train, *, C=1.0):" in code
    assert "from sklearn.linear_model import LogisticRegression" in code
    assert "import pandas" not in code and "%%track" not in code and "unrelated" not in code
    assert "return {'model': model}" in code


def test_runs_cache_register_and_verify(trained):
    folder, store, built = trained
    first = built.run()
    assert first.status == "FINISHED", first.error
    assert len(first.ran) == 5 and first.version == 2
    version = mlops.get_model_version("demo/2", store=store)
    assert version.run_id == first.run_id  # lineage: the version's run is the pipeline run
    run = storage.get_run(store, first.run_id)
    assert run.experiment == "pipelines" and run.tags["jupyter_mlops.pipeline"] == "demo"
    assert run.params == {"DATA": "data.csv", "TEST_SIZE": 0.25, "C": 1.0}
    verified = built.verify()
    assert verified.ok, verified.message
    assert "predicts the same as demo/1" in verified.message

    again = built.run()
    assert again.ran == [] and len(again.cached) == 5 and again.version == 2
    assert "no new version" in again.note

    changed = built.run(C=0.05)
    assert changed.ran == ["s05_model"] and changed.version == 3
    assert not built.verify(changed.run_id).ok  # another C: another model

    # A parameter as the command line gives it, read as its default's type.
    assert main(["pipeline", "run", "demo", "-p", "C=0.05", "--store", str(store.path)]) == 0
    assert main(["pipeline", "run", "demo", "-p", "C=x", "--store", str(store.path)]) == 2
    assert built.run(TEST_SIZE=0.3).ran == ["s03_x_train", "s04_scaler", "s05_model"]


def test_bad_parameters_are_refused_before_anything_runs(trained):
    folder, store, built = trained
    before = _runs(store)
    with pytest.raises(mlops.ValidationError, match="no parameter max_depth; its parameters: "
                                                    "C, DATA, TEST_SIZE"):
        built.run(max_depth=3)
    with pytest.raises(mlops.ValidationError, match="C takes a float"):
        built.run(C="strong")
    assert _runs(store) == before


def test_changed_data_re_runs_what_reads_it_and_a_failing_step_is_named(trained):
    folder, store, built = trained
    assert built.run().ran == []
    _data(folder / "data.csv", seed=1)  # the step reading the file: its key changes
    assert built.run().ran == ["s01_df", "s02_df", "s03_x_train", "s04_scaler", "s05_model"]

    step = built.folder / "steps" / "s04_scaler.py"
    step.write_text(step.read_text().replace("StandardScaler().fit(X_train)",
                                             "StandardScaler().fit(X_train[[]])"))
    with pytest.raises(mlops.ValidationError, match="steps/s04_scaler.py changed since"):
        built.run()
    built.trust()
    failed = built.run()
    assert failed.status == "FAILED" and failed.ran == []
    assert failed.error.startswith("Step s04_scaler (In[") and "ValueError" in failed.error
    assert [s["status"] for s in failed.steps] == ["cached"] * 3 + ["failed"]
    run = storage.get_run(store, failed.run_id)
    assert run.status == "FAILED" and "s04_scaler" in run.error
    mlops.pipeline("demo@champion", store=store)  # cut again: the edit is gone
    _data(folder / "data.csv")
    assert built.run().ran == []  # the first run's entries still serve


def test_the_cache_serves_only_what_this_user_signed(trained):
    folder, store, built = trained
    last = built.run()
    assert last.ran == []
    key = last.steps[-1]["key"]  # the model's step: as if someone else had written it
    (built.cache / "steps" / f"{key}.sig").write_text("0" * 64)
    assert built.run().ran == ["s05_model"]


def test_the_written_runner_needs_nothing_of_this_package(trained, tmp_path):
    folder, store, built = trained
    blocker = tmp_path / "blocked" / "jupyter_mlops"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('not here')\n")
    # A copy of the cache: with C changed, the model's step runs, here without the package.
    shutil.copytree(built.cache, tmp_path / "cache")
    done = subprocess.run([sys.executable, str(built.folder / "run.py"), "-p", "C=0.5",
                           "--cache", str(tmp_path / "cache"), "--report",
                           str(tmp_path / "report.json")],
                          cwd=folder, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(blocker.parent)))
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert [s["status"] for s in report["steps"]] == ["cached"] * 4 + ["ran"]
    assert report["parameters"]["C"] == 0.5


def test_a_trigger_runs_the_pipeline_gates_and_promotes(trained):
    folder, store, built = trained
    holdout = _data(folder / "holdout.csv", seed=5, rows=200)
    holdout.insert(4, "ab", holdout["a"] * holdout["b"])
    holdout.to_csv(folder / "holdout.csv", index=False)
    trigger = mlops.schedule("nightly", pipeline="demo", every="1d", parameters={"C": 2.0},
                             model="demo@champion", store=store,
                             gate={"data": folder / "holdout.csv", "target": "y",
                                   "thresholds": {"accuracy": 0.5}})
    (firing,) = Scheduler(store).tick(now=trigger.created + 86400 + 1, wait=True)
    status, run_id, version, promoted, message = store.query(
        "SELECT status, run_id, version, promoted, message FROM firings WHERE firing_id = ?",
        (firing.firing_id,))[0]
    assert status == "finished", message
    assert "lineage pass" in message and "replay skipped" in message, message
    assert promoted == 1 and mlops.get_model_version("demo@champion", store=store).version \
        == version
    assert storage.get_run(store, run_id).tags["jupyter_mlops.trigger"] == "nightly"
