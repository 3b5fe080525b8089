"""``%%track`` in IPython's own shell: autolog, failures, and transparency."""

import pytest

import jupyter_mlops as mlops
from jupyter_mlops.tracking import storage
from support import run_cell

SETUP = """
import numpy as np
from sklearn.datasets import load_iris
X, y = load_iris(return_X_y=True)
"""

TRAIN = """%%track -n baseline -e iris --tag team=a --tag stage=dev
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
C = 0.5
solver = "lbfgs"
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
model = LogisticRegression(C=C, solver=solver, max_iter=500).fit(X_train, y_train)
acc = model.score(X_test, y_test)
n_test = len(y_test)
acc
"""


def only_run():
    frame = mlops.search_runs()
    assert len(frame) == 1
    return mlops.get_run(frame.loc[0, "run_id"])


def test_autolog_params_metrics_model_and_inputs(shell, store):
    run_cell(shell, SETUP)
    result = run_cell(shell, TRAIN)
    assert result.success
    run = only_run()
    assert (run.name, run.experiment, run.status) == ("baseline", "iris", "FINISHED")
    assert run.tags == {"team": "a", "stage": "dev"}
    assert run.params["C"] == 0.5 and run.params["solver"] == "lbfgs"
    assert run.params["model.C"] == 0.5 and run.params["model.max_iter"] == 500
    assert run.metrics["acc"] == pytest.approx(shell.user_ns["acc"], abs=0)
    assert run.metrics["n_test"] == 38
    assert "X_train" not in run.params and "model" not in run.metrics
    (model,) = [a for a in run.artifacts if a.kind == "model"]
    assert model.name == "model/model.pkl"
    import pickle

    restored = pickle.loads(store.artifacts.read_verified(model.sha256))
    assert (restored.predict(shell.user_ns["X"]) == shell.user_ns["model"].predict(
        shell.user_ns["X"])).all()
    roles = {d.name: d.role for d in run.inputs}
    assert roles == {"X": "input", "y": "input", "X_train": "train", "y_train": "target"}
    assert run.execution_count == result.execution_count
    assert run.source.startswith("%%track")
    assert [c.execution_count for c in run.cells] == [result.execution_count]


def test_explicit_logs_win_over_autolog(shell):
    run_cell(shell, "import jupyter_mlops as mlops")
    run_cell(shell, "%%track\nlr = 0.1\nmlops.log_param('lr', 'explicit')\n"
                    "score = 3.0\nmlops.log_metric('score', 99.0)")
    run = only_run()
    assert run.params == {"lr": "explicit"}
    assert run.metrics == {"score": 99.0}


def test_no_autolog_logs_only_explicit_calls(shell):
    run_cell(shell, "import jupyter_mlops as mlops")
    run_cell(shell, "%%track --no-autolog\nC = 1\nacc = 0.5 + 0.1\nmlops.log_metric('kept', 1)")
    run = only_run()
    assert run.params == {} and run.metrics == {"kept": 1.0}


def test_figures_made_in_the_cell_are_saved(shell, store):
    run_cell(shell, "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt")
    run_cell(shell, "%%track\nfig, ax = plt.subplots()\nax.plot([1, 2, 3])\n"
                    "plt.figure('second')")
    run = only_run()
    names = sorted(a.name for a in run.artifacts if a.kind == "figure")
    assert names == ["figures/fig.png", "figures/second.png"]  # its variable; its label
    digest = next(a.sha256 for a in run.artifacts if a.name == "figures/second.png")
    assert store.artifacts.read_verified(digest).startswith(b"\x89PNG")


def test_a_tracked_cell_costs_two_write_transactions_on_the_kernel_thread(shell, store):
    # The run's start (session, run, input data) is one; figures, autolog and the end are
    # the other. The capture thread writes the cell rows on a connection of its own.
    run_cell(shell, SETUP + "import matplotlib\nmatplotlib.use('Agg')\n"
                            "import matplotlib.pyplot as plt\nplt.close('all')")
    statements: list[str] = []
    store.connection().set_trace_callback(statements.append)
    try:
        run_cell(shell, TRAIN + "plt.plot([1, 2, 3])\n")
    finally:
        store.connection().set_trace_callback(None)
    assert [s for s in statements if s.startswith("BEGIN")] == ["BEGIN IMMEDIATE"] * 2
    run = only_run()
    assert run.status == "FINISHED" and run.params["C"] == 0.5 and "acc" in run.metrics
    assert sorted(a.kind for a in run.artifacts) == ["figure", "model"]
    assert {d.name for d in run.inputs} >= {"X", "y"}


def test_a_write_that_fails_inside_a_batch_is_undone_alone(store):
    with mlops.start_run("batched") as run:
        with store.batch():
            storage.log_params(store, run.run_id, {"kept": "1"})
            with pytest.raises(Exception):
                storage.log_params(store, run.run_id, {"lost": "2", "kept": "changed"})
            storage.log_params(store, run.run_id, {"also": "3"})
    assert mlops.get_run(run.run_id).params == {"kept": 1, "also": 3}


def test_exception_fails_the_run_and_still_reaches_the_user(shell):
    result = run_cell(shell, "%%track\nx = 1\nraise ValueError('bad data')")
    assert isinstance(result.error_in_exec, ValueError)
    run = only_run()
    assert run.status == "FAILED" and run.error_type == "ValueError"
    assert run.error == "bad data" and "raise ValueError('bad data')" in run.traceback
    assert run.params == {"x": 1}  # known from the source when the run started
    assert run.cells[0].status == "error"


def test_literal_params_are_logged_when_the_run_starts(shell):
    shell.user_ns["mlops"] = mlops
    run_cell(shell, """%%track -n early
C = 0.5
layers = [64, 32]
seen = dict(mlops.get_run(mlops.active_run().run_id).params)
tol = 1e-3
tol = 1e-4
if C > 0:
    depth = 3
for i in range(2):
    pass
raise ValueError("debugging this one")
""")
    run = only_run()
    assert run.status == "FAILED"
    # Bound once at the top level: there from the first second, and kept by the failed run.
    expected = {"C": 0.5, "layers": [64, 32]}
    assert shell.user_ns["seen"] == expected == run.params
    # Bound twice (tol) or inside a branch (depth): only the cell's end knows their values.
    run_cell(shell, "%%track -n finished\ntol = 1e-3\ntol = 1e-4\nif True:\n    depth = 3")
    finished = mlops.get_run(mlops.search_runs(filter="name = 'finished'").run_id[0])
    assert finished.params == {"tol": 1e-4, "depth": 3}


def test_a_param_changed_out_of_sight_keeps_its_logged_value_and_is_tagged(shell, capsys):
    """Params are write-once: the value the source gave at the start stays; a tag and one
    line say that the cell changed it later (here through ``global`` in a function)."""
    run_cell(shell, "%%track -n hidden\nC = 0.5\ndepth = 2\ndef widen():\n"
                    "    global C\n    C = 2.0\nwiden()")
    run = only_run()
    assert run.params == {"C": 0.5, "depth": 2} and shell.user_ns["C"] == 2.0
    assert run.tags == {"params_rebound": "C"}
    assert "C changed after the run logged it" in capsys.readouterr().err


def test_a_cell_that_logs_params_itself_keeps_its_literals_for_the_end(shell):
    shell.user_ns["mlops"] = mlops
    result = run_cell(shell, '%%track\nC = 0.5\nmlops.log_param("C", 2.0)')
    assert result.error_in_exec is None
    assert only_run().params == {"C": 2.0}


def test_keyboard_interrupt_kills_the_run(shell):
    result = run_cell(shell, "%%track\nraise KeyboardInterrupt")
    assert isinstance(result.error_in_exec, KeyboardInterrupt)
    run = only_run()
    assert run.status == "KILLED" and run.cells[0].status == "interrupted"


def test_system_exit_fails_the_run(shell):
    result = run_cell(shell, "%%track\nraise SystemExit(3)")
    assert isinstance(result.error_in_exec, SystemExit)
    assert only_run().status == "FAILED"


def test_syntax_error_fails_the_run_and_leaves_nothing_running(shell):
    result = run_cell(shell, "%%track\nx = = 1")
    assert isinstance(result.error_before_exec, SyntaxError)
    run = only_run()
    assert run.status == "FAILED" and run.error_type == "SyntaxError"
    assert mlops.active_run() is None


def test_bad_arguments_are_a_usage_error_and_run_nothing(shell, capsys):
    result = run_cell(shell, "%%track --tag oops\nran = True")
    assert "ran" not in shell.user_ns
    assert result.error_before_exec is not None
    assert "KEY=VALUE" in str(result.error_before_exec)
    assert mlops.search_runs().empty


def test_nested_track_is_refused(shell):
    result = run_cell(shell, "%%track\nres = get_ipython().run_cell('%%track\\ninner = 1')")
    inner = shell.user_ns["res"]
    assert "nested %%track is not supported" in str(inner.error_before_exec)
    assert "inner" not in shell.user_ns
    assert result.success and only_run().status == "FINISHED"


def test_transparency_output_underscore_out_globals_del_and_magics(shell, capsys):
    run_cell(shell, "a = 1\nb = 2\ndef bump():\n    global counter\n    counter = 10")
    result = run_cell(shell, "%%track\nprint('hello')\n%time c = a + b\ndel b\nbump()\nc * 2")
    assert result.result == 6
    assert shell.user_ns["_"] == 6
    assert shell.user_ns["Out"][result.execution_count] == 6
    assert "b" not in shell.user_ns and shell.user_ns["counter"] == 10
    assert "hello" in capsys.readouterr().out
    quiet = run_cell(shell, "%%track\nc * 3;")
    assert quiet.success and quiet.result is None  # ';' suppresses display as usual
    assert shell.user_ns["_"] == 6


def test_top_level_await_works_in_a_tracked_cell(shell):
    result = run_cell(shell, "%%track\nimport asyncio\nawait asyncio.sleep(0)\nvalue = 42")
    assert result.success and shell.user_ns["value"] == 42
    assert only_run().status == "FINISHED"


def test_cell_magic_after_track_line(shell, capsys):
    result = run_cell(shell, "%%track\n%%capture captured\nprint('inside')\nz = 5")
    assert result.success and shell.user_ns["z"] == 5
    assert "inside" in shell.user_ns["captured"].stdout


def test_unwritable_store_warns_once_and_the_cell_still_runs(shell, tmp_path, capsys):
    blocker = tmp_path / "file-not-folder"
    blocker.write_text("x")
    mlops.reset_store()
    shell.user_ns["target"] = str(blocker / "store")
    import os

    os.environ["JUPYTER_MLOPS_STORE"] = str(blocker / "store")
    result = run_cell(shell, "%%track\nanswer = 41 + 1\nanswer")
    assert result.result == 42 and shell.user_ns["answer"] == 42
    err = capsys.readouterr().err
    assert err.count("jupyter_mlops:") == 1 and "The cell itself ran normally" in err
    assert "Error in callback" not in err


def test_help_is_generated(shell):
    from IPython.core.magic import Magics  # noqa: F401

    doc = shell.find_cell_magic("track").__doc__
    assert "--no-autolog" in doc and "-e EXPERIMENT" in doc or "--experiment" in doc


def test_a_direct_call_of_the_magic_reraises_after_ending_the_run(shell):
    # As %%time does: the run records the failure, and the error still reaches the caller.
    with pytest.raises(ValueError, match="direct boom"):
        shell.run_cell_magic("track", "-n direct", "lr = 0.5\nraise ValueError('direct boom')")
    runs = mlops.search_runs()
    assert list(runs["name"]) == ["direct"]
    assert list(runs["status"]) == ["FAILED"]
    run = mlops.get_run(runs["run_id"].iloc[0])
    assert run.error_type == "ValueError" and "direct boom" in run.error


def test_a_direct_call_of_the_magic_returns_the_last_value_and_logs(shell):
    value = shell.run_cell_magic("track", "-n ok", "alpha = 3\nscore = alpha * 0.25\nscore")
    assert value == 0.75
    assert shell.user_ns["score"] == 0.75
    run = mlops.get_run(mlops.search_runs()["run_id"].iloc[0])
    assert run.status == "FINISHED"
    assert run.params == {"alpha": 3} and run.metrics == {"score": 0.75}


def test_figures_closed_or_shown_in_the_cell_are_saved_named_after_what_they_show(
        shell, store, tmp_path):
    run_cell(shell, "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt")
    shell.user_ns["saved_to"] = str(tmp_path / "loss.png")
    result = run_cell(shell, """%%track
fig, ax = plt.subplots()
ax.plot([1, 2, 3])
ax.set_title("Validation loss / epoch")
fig.savefig(saved_to)
plt.close(fig)
grid = plt.figure()
grid.suptitle("Residuals")
plt.close("all")
untitled, axes = plt.subplots()
plt.subplots()[1].plot([3, 2])
plt.subplots()[1].plot([1, 1])
""")
    assert result.success
    run = only_run()
    names = sorted(a.name for a in run.artifacts if a.kind == "figure")
    assert names == ["figures/Residuals.png", "figures/Validation loss _ epoch.png",
                     "figures/figure_2.png", "figures/figure_3.png", "figures/untitled.png"]
    for artifact in run.artifacts:
        assert store.artifacts.read_verified(artifact.sha256).startswith(b"\x89PNG")
    import matplotlib

    assert matplotlib.rcParams["figure.hooks"] == []  # taken out when the cell ended


def test_a_figure_shown_by_the_inline_backend_is_saved(shell):
    pytest.importorskip("matplotlib_inline")
    run_cell(shell, "%matplotlib inline\nimport matplotlib.pyplot as plt\nplt.close('all')")
    result = run_cell(shell, "%%track\nplt.plot([1, 2])\nplt.title('shown')\nplt.show()\n"
                             "still_open = len(plt.get_fignums())")
    assert result.success and shell.user_ns["still_open"] == 0  # show() closed it
    names = [a.name for a in only_run().artifacts if a.kind == "figure"]
    assert names == ["figures/shown.png"]
