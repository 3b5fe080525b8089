"""Every cell execution is captured, in order, with what it defined and used."""

import jupyter_mlops as mlops
from support import run_cell


def test_every_cell_is_recorded_in_order(shell):
    run_cell(shell, "x = 1", cell_id="c1")
    run_cell(shell, "y = x + 1", cell_id="c2")
    bad = run_cell(shell, "1 / 0", cell_id="c3")
    run_cell(shell, "   \n")  # empty cells run nothing and are not recorded
    history = mlops.cell_history()
    assert list(history["cell_id"]) == ["c1", "c2", "c3"]
    assert list(history["status"]) == ["ok", "ok", "error"]
    assert list(history["execution_count"]) == [1, 2, bad.execution_count]
    assert history["defined"][1] == ["y"] and history["used"][1] == ["x"]
    assert history["error"][2].startswith("ZeroDivisionError")
    assert (history["duration_s"] >= 0).all()
    assert history["session_id"].nunique() == 1


def test_nested_run_cell_is_one_execution(shell):
    run_cell(shell, "%%capture out\nprint('quiet')\nget_ipython().run_cell('inner = 2')")
    history = mlops.cell_history()
    assert len(history) == 1 and shell.user_ns["inner"] == 2


def test_out_of_order_and_stale_runs_are_marked(shell):
    run_cell(shell, "import numpy as np\ndata = np.arange(10.0)", cell_id="load")
    run_cell(shell, "scale = 2", cell_id="params")
    run_cell(shell, "%%track\ntotal = float((data * scale).sum())", cell_id="train")
    run_cell(shell, "scale = 3", cell_id="params")  # went back up and changed an input
    history = mlops.cell_history()
    assert list(history["out_of_order"]) == [False, False, False, True]
    stale = history.loc[2, "stale"]
    assert stale == f"scale redefined in [{history.loc[3, 'execution_count']}]"
    assert history.loc[2, "run_id"] == mlops.search_runs().loc[0, "run_id"]


def test_positions_come_from_the_saved_notebook(shell, tmp_path, monkeypatch):
    import nbformat

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell("a = 1", id="top"),
                      nbformat.v4.new_code_cell("b = 2", id="bottom")]
    path = tmp_path / "nb.ipynb"
    nbformat.write(notebook, path)
    monkeypatch.setenv("JPY_SESSION_NAME", str(path))
    # A new kernel session learns its notebook when it starts.
    shell.run_line_magic("unload_ext", "jupyter_mlops")
    shell.run_line_magic("load_ext", "jupyter_mlops")
    run_cell(shell, "b = 2", cell_id="bottom")
    run_cell(shell, "a = 1", cell_id="top")
    history = mlops.cell_history()
    assert list(history["position"]) == [1, 0]
    assert list(history["out_of_order"]) == [False, True]


def test_unload_stops_capture(shell):
    run_cell(shell, "a = 1")
    shell.run_line_magic("unload_ext", "jupyter_mlops")
    run_cell(shell, "b = 2")
    run_cell(shell, "%load_ext jupyter_mlops")
    history = mlops.cell_history("all")
    # b = 2 ran unloaded; the cell that loads the extension again is the first one logged.
    assert [s for s in history["source"]] == ["a = 1", "%load_ext jupyter_mlops"]


def test_reload_ext_keeps_a_single_set_of_hooks(shell):
    shell.run_line_magic("reload_ext", "jupyter_mlops")
    shell.run_line_magic("load_ext", "jupyter_mlops")
    run_cell(shell, "x = 1")
    assert len(mlops.cell_history("all")) == 1


def test_unloading_ends_the_capture_thread_and_closes_its_files(shell, store):
    """A kernel that reloads the extension many times keeps no capture thread and no
    connection of the unloaded ones."""
    import os
    import threading

    def open_store_files():
        count = 0
        for fd in os.listdir("/proc/self/fd"):
            try:
                count += os.readlink(f"/proc/self/fd/{fd}").startswith(str(store.path))
            except OSError:  # the listing's own descriptor, closed by now
                pass
        return count

    def capture_threads():
        return sum(t.name == "jupyter_mlops-capture" for t in threading.enumerate())

    shell.run_line_magic("reload_ext", "jupyter_mlops")
    run_cell(shell, "a = 1")
    mlops.tracking.capture.flush_capture()  # the writer's connection is open
    files, threads = open_store_files(), capture_threads()
    for i in range(3):
        shell.run_line_magic("reload_ext", "jupyter_mlops")
        run_cell(shell, f"b = {i}")
    mlops.tracking.capture.flush_capture()
    assert capture_threads() == threads
    assert open_store_files() == files
    assert list(mlops.cell_history("all")["source"])[-1] == "b = 2"
