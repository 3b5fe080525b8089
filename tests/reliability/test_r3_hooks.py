"""R3: failures of our own hooks never reach the user's output as 'Error in callback'."""

import pytest

import jupyter_mlops as mlops
from jupyter_mlops.errors import StoreFullError
from jupyter_mlops.tracking import storage

pytestmark = pytest.mark.reliability


def _run(ip, source):
    return ip.run_cell(source, store_history=True)


@pytest.mark.parametrize("method", ["start_cell", "finish_cell", "create_run", "finish_run",
                                    "log_params", "add_datasets"])
def test_store_failures_in_hooks_print_one_line_and_the_cell_runs(shell, store, capsys,
                                                                  monkeypatch, method):
    def broken(*args, **kwargs):
        raise StoreFullError("disk full (test)")

    monkeypatch.setattr(storage, method, broken)
    _run(shell, "import numpy as np\ndata = np.arange(3.0)")
    result = _run(shell, "%%track\nC = 1\ntotal = float(data.sum()) * C\ntotal")
    assert result.success and result.result == 3.0
    # Cell rows are written off the cell's path: their failures are told at a later cell.
    mlops.tracking.capture.flush_capture()
    assert _run(shell, "next_cell = 1").success
    captured = capsys.readouterr()
    assert "Error in callback" not in captured.out + captured.err
    assert "Traceback" not in captured.err
    assert "jupyter_mlops:" in captured.err
    assert all(line.startswith("jupyter_mlops:") for line in captured.err.strip().splitlines())
    monkeypatch.undo()
    assert mlops.active_run() is None


def test_a_closed_store_is_reopened(shell, store, capsys):
    store.close()
    result = _run(shell, "%%track\nx = 41 + 1")
    assert result.success
    assert capsys.readouterr().err == ""
    assert mlops.search_runs().loc[0, "status"] == "FINISHED"
