"""Replay: the slice of the real history that rebuilds a model, verified in a fresh process."""

import pytest

import jupyter_mlops as mlops
from jupyter_mlops.entities import CellExecution
from jupyter_mlops.registry.script import backward_slice, plain_python
from jupyter_mlops.store import Store


def _cell(i, defined, used, status="ok"):
    return CellExecution(i, "s", i, None, f"# {i}", defined, used, 0.0, 0.0, status, None, None)


def test_slice_takes_the_latest_definition_before_the_use():
    history = [
        _cell(1, ["np"], []),
        _cell(2, ["data"], ["np"]),
        _cell(3, ["scale"], []),
        _cell(4, ["scale"], []),           # redefined before training: this one counts
        _cell(5, ["unrelated"], ["np"]),
        _cell(6, ["data"], ["data"]),      # in-place change of data: kept, and so is 2
        _cell(7, ["oops"], ["data"], status="error"),
        _cell(8, ["model"], ["data", "scale"]),
    ]
    assert [c.id for c in backward_slice(history, 7)] == [1, 2, 4, 6, 8]


def test_magics_become_plain_python():
    source = ("%%track -n x\n%matplotlib inline\n%time y = f(1)\n!pip install foo\n"
              "for i in range(2):\n    %timeit -n 3 g(i)\nz = 1")
    out = plain_python(source)
    assert out.splitlines() == [
        "pass  # dropped (no effect): %matplotlib inline",
        "y = f(1)",
        "pass  # dropped (shell command): !pip install foo",
        "for i in range(2):",
        "    g(i)",
        "z = 1",
    ]
    compile(out, "cell", "exec")
    assert plain_python("%%bash\necho hi").startswith("# (dropped: %%bash cell")
    assert plain_python("%%capture out\nprint(1)") == "# %%capture out\nprint(1)"


SESSION = [
    ("imports", "import numpy as np\nfrom sklearn.linear_model import LogisticRegression"),
    ("data", "rng = np.random.default_rng(7)\nX = rng.normal(size=(300, 5))\n"
             "y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)"),
    ("counter", "n_fits = 0"),
    ("bump", "n_fits = n_fits + 1"),
    ("params", "C = 0.05"),
    ("train", "%%track -n replayed\nmodel = LogisticRegression(C=C * n_fits).fit(X, y)\n"
              "acc = model.score(X, y)"),
]


@pytest.mark.kernel
@pytest.mark.timeout(240)
def test_replay_verifies_after_an_out_of_order_redefined_session(kernel, tmp_path):
    cells = dict(SESSION)
    kernel.execute("%load_ext jupyter_mlops", cell_id="load")
    for cell_id in ["imports", "data", "params", "counter", "bump", "bump", "bump", "train"]:
        reply, _ = kernel.execute(cells[cell_id], cell_id=cell_id)
        assert reply["status"] == "ok", reply
    # After training: redefine what the model used, and train something else.
    kernel.execute("C = 100.0\nX = X[:10]", cell_id="params")
    reply, outputs = kernel.execute(
        "v = %mlops register replayed\nprint(v.version, v.variable)", cell_id="register")
    assert reply["status"] == "ok", outputs

    store = Store(tmp_path / ".mlops")
    script = mlops.replay("replayed/1", store=store)
    counts = [e.execution_count for e in script.executions]
    assert len(counts) == 8 and counts == sorted(counts)  # 3 runs of "bump" all kept
    assert script.source.count("n_fits = n_fits + 1") == 3
    assert "C = 100.0" not in script.source and "%%track" not in script.source
    verified = mlops.replay("replayed/1", verify=True, store=store).verification
    assert verified.ok, verified.message
    assert "300 rows of X" in verified.message

    # A model whose data came from unseeded randomness cannot be rebuilt: say where.
    kernel.execute("X2 = np.random.normal(size=(100, 3))\ny2 = (X2[:, 0] > 0).astype(int)",
                   cell_id="noseed")
    kernel.execute("%%track -n unseeded\nm2 = LogisticRegression().fit(X2, y2)", cell_id="t2")
    kernel.execute("%mlops register unseeded", cell_id="r2")
    failed = mlops.replay("unseeded/1", verify=True, store=store).verification
    assert not failed.ok and "differs" in failed.message
    store.close()


def test_a_failed_execution_is_replayed_up_to_the_statement_that_raised():
    from jupyter_mlops.registry.script import _replayed_part

    source = "%%track\n%cd data\na = 1\n@decorate\ndef f():\n    pass\nb = f()\nc = 3"
    failed = CellExecution(1, "s", 1, None, source, ["a", "f"], [], 0.0, 0.0, "error",
                           "NameError: name 'decorate' is not defined", None,
                           statements_run=2)
    lines = _replayed_part(failed).splitlines()
    assert lines[0] == "# This execution raised NameError: name 'decorate' is not defined"
    assert lines[2:] == ["__import__('os').chdir('data')", "a = 1", "# | @decorate",
                         "# | def f():", "# |     pass", "# | b = f()", "# | c = 3"]
    assert [c.id for c in backward_slice(
        [_cell(0, ["x"], []), failed, _cell(2, ["m"], ["a"])], 2)] == [1, 2]
    nothing_ran = CellExecution(1, "s", 1, None, "1/0", [], [], 0.0, 0.0, "error", "E", None,
                                statements_run=0)
    assert [c.id for c in backward_slice([nothing_ran, _cell(2, [], ["x"])], 1)] == [2]
