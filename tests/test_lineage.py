"""Lineage on notebooks as people write them: each model registered from a real kernel is
linked to the executions that made it, and its replay rebuilds it (``verify=True``)."""

from __future__ import annotations

import pytest

import jupyter_mlops as mlops
from jupyter_mlops.store import Store
from jupyter_mlops.tracking import storage
from support import stream_text

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(300)]


def run_cells(kernel, *cells, ok=True):
    """Run ``(cell_id, source)`` pairs; every one must succeed unless ``ok`` is False."""
    replies = []
    for cell_id, source in cells:
        reply, outputs = kernel.execute(source, cell_id=cell_id)
        if ok:
            assert reply["status"] == "ok", (source, reply, outputs)
        replies.append((reply, outputs))
    return replies


def _store(tmp_path):
    return Store(tmp_path / ".mlops")


def verified(tmp_path, uri):
    """The replay of ``uri``, verified in a fresh interpreter."""
    store = Store(tmp_path / ".mlops")
    try:
        script = mlops.replay(uri, verify=True, store=store)
    finally:
        store.close()
    assert script.verification.ok, (script.verification.message, script.source,
                                    script.verification.details.get("stderr"))
    return script


def test_names_a_function_body_reads_come_with_the_function(kernel, tmp_path):
    """Data loaded through a function: the import its body reads is part of the slice."""
    run_cells(
        kernel,
        ("load", "%load_ext jupyter_mlops"),
        ("numpy", "import numpy as np"),
        ("sklearn", "from sklearn.linear_model import LinearRegression"),
        ("make", "def make_data(n):\n    X = np.linspace(0, 1, 2*n).reshape(n, 2)\n"
                 "    return X, X @ [1.0, 2.0]"),
        ("train", "%%track\nX, y = make_data(50)\nmodel = LinearRegression().fit(X, y)"),
        ("register", "%mlops register linear --var model"),
    )
    script = verified(tmp_path, "linear/1")
    assert "import numpy as np" in script.source
    assert [e.cell_id for e in script.executions] == ["numpy", "sklearn", "make", "train"]


def test_a_call_is_not_a_redefinition(kernel, tmp_path):
    """Plotting, peeking and module calls stay out of the slice; draws from a generator
    and in-place changes of the data stay in it; the run gets no stale mark."""
    run_cells(
        kernel,
        ("load", "%load_ext jupyter_mlops"),
        ("imports", "import numpy as np\nimport pandas as pd\nimport matplotlib\n"
                    "matplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n"
                    "from sklearn.linear_model import Ridge"),
        ("data", "df = pd.DataFrame({'a': np.linspace(0, 1, 80), 'b': np.zeros(80)})\n"
                 "df.head()"),
        ("rng", "rng = np.random.default_rng(3)"),
        ("noise", "noise = rng.normal(size=len(df))"),
        ("peek", "print(df.describe())\nprint(np.zeros(3))"),
        ("plot", "plt.figure()\nplt.plot(df['a'])\nplt.title('a')"),
        ("draw", "df['b'] = rng.normal(size=len(df))"),
        ("drop", "df.drop(columns=['a'], inplace=True)"),
        ("target", "y = df['b'] * 2 + noise"),
        ("train", "%%track -n ridge\nmodel = Ridge(alpha=0.1).fit(df, y)"),
        ("after", "model.predict(df[:3])\nplt.title('after')\nnp.ones(2)"),
        ("register", "%mlops register ridge --var model"),
    )
    script = verified(tmp_path, "ridge/1")
    assert [e.cell_id for e in script.executions] == [
        "imports", "data", "rng", "noise", "draw", "drop", "target", "train"]
    store = Store(tmp_path / ".mlops")
    try:
        history = mlops.cell_history("all", store=store)
    finally:
        store.close()
    (train,) = history[history["cell_id"] == "train"].itertuples()
    assert train.stale is None and train.possibly_stale is None
    (peek,) = history[history["cell_id"] == "peek"].itertuples()
    assert peek.defined == [] and peek.modified == []
    (noise,) = history[history["cell_id"] == "noise"].itertuples()
    assert noise.defined == ["noise"] and noise.modified == ["rng"]


def test_what_a_failed_execution_bound_before_it_raised_is_replayed(kernel, tmp_path):
    """The import cell fails on a removed matplotlib style after importing numpy."""
    run_cells(kernel, ("load", "%load_ext jupyter_mlops"))
    ((reply, _),) = run_cells(
        kernel,
        ("imports", "import numpy as np\nimport matplotlib\nmatplotlib.use('Agg')\n"
                    "import matplotlib.pyplot as plt\nplt.style.use('no-such-style')\n"
                    "import pandas as pd"),
        ok=False)
    assert reply["status"] == "error"
    run_cells(
        kernel,
        ("sklearn", "from sklearn.linear_model import LinearRegression"),
        ("data", "X = np.linspace(0, 1, 60).reshape(30, 2)\ny = X @ [3.0, -1.0]"),
        ("train", "%%track\nmodel = LinearRegression().fit(X, y)"),
        ("register", "%mlops register failed-imports --var model"),
    )
    script = verified(tmp_path, "failed-imports/1")
    assert [e.cell_id for e in script.executions] == ["imports", "sklearn", "data", "train"]
    assert "# Its first 4 top-level statement(s) ran and are replayed" in script.source
    assert "# | plt.style.use('no-such-style')" in script.source
    assert "\nimport pandas as pd" not in script.source
    failed = script.executions[0]
    assert failed.status == "error" and failed.statements_run == 4
    assert failed.defined == ["np", "matplotlib", "plt"]


TRAIN_DATA = ("load", "%load_ext jupyter_mlops"), (
    "imports", "import numpy as np\nfrom sklearn.linear_model import Lasso, Ridge"), (
    "data", "rng = np.random.default_rng(5)\nX = rng.normal(size=(120, 4))\n"
            "y = X @ [1.0, 0.0, -2.0, 0.5] + rng.normal(scale=0.1, size=120)")


def test_register_var_takes_the_execution_that_bound_the_object(kernel, tmp_path):
    """The Lasso cell fits, then fails on its fourth line: the Lasso is registered with
    that cell's lineage, not with the earlier Ridge cell that bound the same name."""
    run_cells(kernel, *TRAIN_DATA,
              ("ridge", "%%track -n ridge\nmodel = Ridge(alpha=1.0).fit(X, y)"))
    ((reply, _),) = run_cells(kernel, (
        "lasso", "%%track -n lasso\nmodel = Lasso(alpha=0.01).fit(X, y)\n"
                 "score = model.score(X, y)\nprint(f'R2 {score:.3f}')\n"
                 "results['lasso'] = score"), ok=False)
    assert reply["ename"] == "NameError"
    ((reply, outputs),) = run_cells(kernel, (
        "register", "v = %mlops register lasso --var model\nprint(v.class_name, v.run_id)"))
    class_name, run_id = stream_text(outputs).split()
    assert class_name == "sklearn.linear_model._coordinate_descent.Lasso"
    store = _store(tmp_path)
    try:
        runs = mlops.search_runs(store=store)
    finally:
        store.close()
    assert run_id == runs.loc[runs["name"] == "lasso", "run_id"].item()
    script = verified(tmp_path, "lasso/1")
    assert [e.cell_id for e in script.executions] == ["imports", "data", "lasso"]
    assert script.executions[-1].statements_run == 3
    assert "Ridge(" not in script.source.split("# In[")[-1]


def test_an_unfitted_model_is_refused_with_the_reason(kernel, tmp_path):
    run_cells(kernel, *TRAIN_DATA)
    ((reply, _),) = run_cells(kernel, (
        "broken", "%%track -n broken\nmodel = Lasso(alpha=0.1)\n"
                  "X_bad = np.where(X > 1.5, np.nan, X)\nmodel.fit(X_bad, y)"), ok=False)
    assert reply["ename"] == "ValueError"
    ((reply, outputs),) = run_cells(kernel, ("register", "%mlops register broken --var model"),
                                    ok=False)
    message = stream_text(outputs, "stderr") + str(reply.get("evalue"))
    assert "Model 'model' (Lasso) is not fitted" in message, (reply, outputs)
    assert "failed (ValueError: Input X contains NaN" in message
    store = _store(tmp_path)
    try:
        assert store.query("SELECT count(*) FROM model_versions") == [(0,)]
    finally:
        store.close()


@pytest.fixture
def mlflow_kernel(tmp_path, monkeypatch):
    """A kernel whose MLflow store is the user's, in the notebook folder."""
    from support import Kernel

    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    started = Kernel(tmp_path / ".mlops", tmp_path)
    yield started
    started.shutdown()


def test_verification_repeats_no_side_effect_on_the_users_files(mlflow_kernel, tmp_path):
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    run_cells(
        mlflow_kernel,
        ("load", "%load_ext jupyter_mlops"),
        ("imports", "import os\nimport pickle\nimport mlflow\nimport numpy as np\n"
                    "from sklearn.linear_model import LinearRegression\n"
                    "mlflow.set_experiment('duration')"),
        ("data", "X = np.linspace(0, 1, 40).reshape(20, 2)\ny = X @ [1.5, -2.0]\n"
                 "os.makedirs('data', exist_ok=True)\nnp.savetxt('data/X.csv', X)"),
        ("train", "%%track -n lr\nwith mlflow.start_run():\n"
                  "    model = LinearRegression().fit(X, y)\n"
                  "    mlflow.log_metric('r2', model.score(X, y))\n"
                  "os.makedirs('models', exist_ok=True)\n"
                  "with open('models/lin_reg.bin', 'wb') as f_out:\n"
                  "    pickle.dump(model, f_out)"),
        ("register", "%mlops register duration --var model"),
        ("elsewhere", f"%%track -n elsewhere\nmodel2 = LinearRegression().fit(X, y)\n"
                      f"with open({str(outside / 'log.txt')!r}, 'w') as log:\n"
                      "    log.write('fitted')"),
        ("register2", "%mlops register elsewhere --var model2"),
    )
    written = [tmp_path / "models" / "lin_reg.bin", tmp_path / "data" / "X.csv",
               outside / "log.txt"]
    before = [(p.stat().st_mtime_ns, p.read_bytes()) for p in written]

    script = verified(tmp_path, "duration/1")
    assert "# side effect: logs to a tracker (mlflow.start_run)\nwith mlflow.start_run():" \
        in script.source
    assert "# side effect: writes files (open)\nwith open('models/lin_reg.bin'" in script.source
    assert "# side effect: writes files (np.savetxt)\nnp.savetxt(" in script.source

    store = _store(tmp_path)
    try:
        refused = mlops.replay("elsewhere/1", verify=True, store=store).verification
    finally:
        store.close()
    assert not refused.ok
    assert "writes only inside its scratch folder" in refused.message
    assert str(outside / "log.txt") in refused.message

    assert [(p.stat().st_mtime_ns, p.read_bytes()) for p in written] == before
    ((_, outputs),) = run_cells(mlflow_kernel, (
        "count", "print(len(mlflow.search_runs(experiment_names=['duration'])))"))
    assert stream_text(outputs).strip() == "1"  # the notebook's run; none from the replays


def _saved_notebook(path, *sources):
    import nbformat

    cells = [nbformat.v4.new_code_cell(source) for source in sources]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    return nbformat.read(path, as_version=4), [cell.id for cell in cells]


def test_headless_runs_recover_cell_ids_from_the_saved_notebook(tmp_path, monkeypatch):
    """nbclient (as papermill and nbconvert) sends no cell ids; the kernel knows its notebook."""
    from nbclient import NotebookClient

    path = tmp_path / "headless.ipynb"
    notebook, ids = _saved_notebook(path, "%load_ext jupyter_mlops", "x = 1",
                                    "%%track -n headless\ny = x + 1", "z = y * 2")
    monkeypatch.setenv("JPY_SESSION_NAME", str(path))
    monkeypatch.setenv("JUPYTER_MLOPS_STORE", str(tmp_path / ".mlops"))
    NotebookClient(notebook, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    store = _store(tmp_path)
    try:
        history = mlops.cell_history("all", store=store)
        run = storage.get_run(store, store.query("SELECT run_id FROM runs")[0][0])
    finally:
        store.close()
    assert list(history["cell_id"]) == ids
    assert list(history["position"]) == [0, 1, 2, 3]
    assert run.cell_id == ids[2]


def test_a_cell_run_again_without_its_id_is_out_of_order(tmp_path, monkeypatch):
    from support import Kernel

    path = tmp_path / "again.ipynb"
    _, ids = _saved_notebook(path, "%load_ext jupyter_mlops", "a = 1", "b = a + 1", "a = 1")
    monkeypatch.setenv("JUPYTER_MLOPS_NOTEBOOK", str(path))
    kernel = Kernel(tmp_path / ".mlops", tmp_path)
    try:
        for source in ["%load_ext jupyter_mlops", "a = 1", "b = a + 1", "a = 1", "b = a + 1"]:
            reply, _ = kernel.execute(source)
            assert reply["status"] == "ok"
    finally:
        kernel.shutdown()
    store = _store(tmp_path)
    try:
        history = mlops.cell_history("all", store=store)
    finally:
        store.close()
    # Two cells hold "a = 1": the first run takes the upper one, the second the lower one.
    assert list(history["cell_id"]) == [ids[0], ids[1], ids[2], ids[3], ids[2]]
    assert list(history["out_of_order"]) == [False, False, False, False, True]


def test_register_without_var_says_which_run_and_cell_it_took(kernel, tmp_path):
    run_cells(kernel, *TRAIN_DATA,
              ("ridge", "%%track -n first\nmodel = Ridge(alpha=1.0).fit(X, y)"))
    # It fails before it fits: no model of it was saved (one fitted would be, in a child run).
    run_cells(kernel, ("lasso", "%%track -n second\nmodel = Lasso(alpha=0.01).fit(X_scaled, y)"),
              ok=False)
    ((_, outputs),) = run_cells(kernel, ("register", "%mlops register taken"))
    store = _store(tmp_path)
    try:
        first, second = (store.query("SELECT run_id, execution_count FROM runs WHERE name = ?",
                                     (name,))[0] for name in ("first", "second"))
    finally:
        store.close()
    assert stream_text(outputs).strip() == (
        f"Registering the model saved by run {first[0][:8]} 'first' (In[{first[1]}], cell "
        f"ridge), the latest finished run that saved one. The latest run, run "
        f"{second[0][:8]} 'second' (In[{second[1]}], cell lasso), is FAILED; to register a "
        "model it holds, name it: --var VAR.")


def test_the_same_bytes_registered_again_with_lineage_gain_it(kernel, tmp_path):
    """Registered before the extension was loaded (no history), then again once the cell
    that fits it has run under it: the version gains that lineage."""
    fit = ("fit", "model = Ridge(alpha=0.5).fit(X, y)")
    run_cells(kernel, *TRAIN_DATA[1:], fit,
              ("early", "import jupyter_mlops as mlops\nfirst = mlops.register_model(model, "
                        "'late')\nprint(first.version, first.cell)"))
    run_cells(kernel, TRAIN_DATA[0], *TRAIN_DATA[1:], fit,
              ("register", "%mlops register late --var model"))
    store = _store(tmp_path)
    try:
        version = mlops.get_model_version("late", store=store)
        (cell,) = storage.cells(store, "id = ?", (version.cell,))
    finally:
        store.close()
    assert version.version == 1 and version.variable == "model"
    assert cell.cell_id == "fit" and cell.execution_count > 4
    script = verified(tmp_path, "late/1")
    assert [e.cell_id for e in script.executions] == ["imports", "data", "fit"]


def test_provenance_says_which_model_a_saved_file_holds(kernel, tmp_path):
    """The cell that pickles the model is run again after a Lasso replaced the Ridge."""
    save = ("save", "import os, pickle\nos.makedirs('models', exist_ok=True)\n"
                    "with open('models/lin_reg.bin', 'wb') as f_out:\n"
                    "    pickle.dump(model, f_out)")
    run_cells(kernel, *TRAIN_DATA,
              ("ridge", "%%track -n ridge\nmodel = Ridge(alpha=1.0).fit(X, y)"), save,
              ("lasso", "%%track -n lasso\nmodel = Lasso(alpha=0.01).fit(X, y)"),
              ("register", "%mlops register lasso --var model"), save)
    ((_, outputs),) = run_cells(kernel, ("where", "%mlops provenance models/lin_reg.bin"))
    text = "".join(m["content"]["data"]["text/plain"] for m in outputs
                   if m["msg_type"] == "execute_result")
    store = _store(tmp_path)
    try:
        found = mlops.provenance(tmp_path / "models" / "lin_reg.bin", store=store)
        (lasso,) = store.query("SELECT run_id FROM runs WHERE name = 'lasso'")
        history = mlops.cell_history("all", store=store)
    finally:
        store.close()
    assert found.writer.cell_id == "save" and found.writer.execution_count == 8
    assert [w.execution_count for w in found.writes] == [5, 8] and not found.changed_since
    (source,) = found.inputs
    assert source.name == "model" and source.execution.cell_id == "lasso"
    assert source.run["run_id"] == lasso[0] and source.versions == ["lasso/1"]
    assert [d[:2] for d in source.run["datasets"]] == [("y", "target"), ("X", "train")]
    lines = text.splitlines()
    assert lines[0].startswith("models/lin_reg.bin (sha256 ")
    assert lines[0].endswith("was written by In[8] (cell save).")
    assert lines[1] == "  Also written by In[5] (cell save)."
    assert lines[3].startswith(f"    model: bound by In[6] (cell lasso), run {lasso[0][:8]} "
                               "'lasso' (FINISHED); data y (target) ")
    assert lines[3].endswith("; registered as lasso/1")
    saves = history[history["cell_id"] == "save"]
    assert [f for files in saves["files"] for f in files] == [
        str(tmp_path / "models" / "lin_reg.bin")] * 2
