"""``sessions`` and ``cells?session=``: a kernel's executions in order, marked."""

from __future__ import annotations

import os

import nbformat
import pytest

from jupyter_mlops.server import queries


def run_cell(shell, source: str, cell_id: str):
    """As a notebook runs a cell: stored in history, with its cell id."""
    return shell.run_cell(source, store_history=True, cell_id=cell_id)


@pytest.fixture
def executed(shell, jp_root_dir, monkeypatch):
    """Cells run as a notebook under the server root would: c1, c2 (tracked), c3 (fails),
    then c1 again, edited, which is out of order and redefines what c2 read."""
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source, id=cell_id) for cell_id, source in
                      [("c1", "a = 1"), ("c2", "%%track -n tracked -e nb\nb = a + 1"),
                       ("c3", "1 / 0")]]
    path = jp_root_dir / "sub dir" / "analysis.ipynb"
    path.parent.mkdir()
    nbformat.write(notebook, path)
    monkeypatch.setenv("JUPYTER_MLOPS_NOTEBOOK", str(path))
    run_cell(shell, "a = 1", "c1")
    run_cell(shell, "%%track -n tracked -e nb\nb = a + 1", "c2")
    run_cell(shell, "1 / 0", "c3")
    run_cell(shell, "a = 2", "c1")
    from jupyter_mlops.tracking.capture import current_session_id, flush_capture

    flush_capture()  # cell rows are written by a thread of the kernel's own
    return current_session_id()


async def test_sessions_lists_the_kernel_with_its_notebook(api, executed):
    code, body = await api("sessions")
    assert code == 200
    assert body["total"] == 1
    (session,) = body["sessions"]
    assert session["session_id"] == executed
    assert session["notebook_path"] == "sub dir/analysis.ipynb"
    assert session["notebook_name"] == "analysis.ipynb"
    assert session["cells"] == 4
    assert session["alive"] is True


async def test_sessions_filtered_by_notebook(api, executed):
    code, body = await api("sessions", params={"notebook": "sub dir/analysis.ipynb"})
    assert [s["session_id"] for s in body["sessions"]] == [executed]
    code, body = await api("sessions", params={"notebook": "other.ipynb"})
    assert body["sessions"] == [] and body["total"] == 0


async def test_sessions_with_an_unknown_kernel_fall_back_to_the_notebook(api, executed):
    code, body = await api("sessions", params={
        "notebook": "sub dir/analysis.ipynb", "kernel": "0f0f0f0f-0000-4000-8000-000000000000"})
    assert code == 200
    assert [s["session_id"] for s in body["sessions"]] == [executed]
    assert body["sessions"][0]["current"] is False


async def test_bad_kernel_id_is_400(api, executed):
    code, body = await api("sessions", params={"kernel": "../../etc"})
    assert code == 400


def test_session_of_the_kernel_process_comes_first(executed, store):
    page = queries.list_sessions(store, lambda p: p, pid=os.getpid())
    assert page["sessions"][0]["session_id"] == executed
    assert page["sessions"][0]["current"] is True


async def test_cells_in_order_with_marks(api, executed, seeded):
    code, body = await api("cells", params={"session": executed})
    assert code == 200
    assert body["notebook_path"] == "sub dir/analysis.ipynb"
    cells = body["cells"]
    assert [c["cell_id"] for c in cells] == ["c1", "c2", "c3", "c1"]
    assert [c["status"] for c in cells] == ["ok", "ok", "error", "ok"]
    assert [c["out_of_order"] for c in cells] == [False, False, False, True]
    assert [c["position"] for c in cells] == [0, 1, 2, 0]
    assert cells[1]["run_id"] is not None
    assert "a redefined in" in cells[1]["stale"]
    assert "ZeroDivisionError" in cells[2]["error"]
    assert [c["execution_count"] for c in cells] == sorted(c["execution_count"] for c in cells)


async def test_cells_limit_keeps_the_latest(api, executed):
    code, body = await api("cells", params={"session": executed, "limit": 2})
    assert body["total"] == 4
    assert [c["cell_id"] for c in body["cells"]] == ["c3", "c1"]
    assert body["cells"][1]["out_of_order"] is True


@pytest.mark.parametrize(("params", "status"), [
    ({}, 400),
    ({"session": "all"}, 400),
    ({"session": "../x"}, 400),
    ({"session": "0" * 32}, 404),
    ({"session": "0" * 32, "limit": "0"}, 400),
])
async def test_cells_bad_or_unknown_session(api, executed, params, status):
    code, body = await api("cells", params=params)
    assert code == status
    assert body["message"]
