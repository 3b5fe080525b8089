"""Notebook paths follow Jupyter's renames: a file or folder renamed through the contents
API, and a notebook renamed after its (real) kernel started, as every Untitled.ipynb is."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

import jupyter_mlops as mlops
from jupyter_mlops.tracking import storage

pytestmark = pytest.mark.timeout(120)


def record_session(store, notebook, run_id=None) -> str:
    """A session row as a kernel writes it (this process as the kernel), owning ``run_id``."""
    session_id = uuid.uuid4().hex
    storage.start_session(store, session_id, str(notebook), "3")
    if run_id:
        with store.write() as conn:
            conn.execute("UPDATE runs SET session_id = ? WHERE run_id = ?", (session_id, run_id))
    return session_id


async def rename(jp_fetch, old: str, new: str) -> None:
    await jp_fetch("api", "contents", old, method="PATCH", body=json.dumps({"path": new}))


async def test_contents_renames_carry_sessions_and_runs(api, jp_fetch, jp_root_dir, seeded):
    (jp_root_dir / "Untitled.ipynb").write_text("{}")
    (jp_root_dir / "old dir").mkdir()
    (jp_root_dir / "old dir" / "a.ipynb").write_text("{}")
    (jp_root_dir / "old dir2").mkdir()
    (jp_root_dir / "old dir2" / "b.ipynb").write_text("{}")
    untitled = record_session(seeded.store, jp_root_dir / "Untitled.ipynb", seeded.runs["alpha"])
    inside = record_session(seeded.store, jp_root_dir / "old dir" / "a.ipynb")
    beside = record_session(seeded.store, jp_root_dir / "old dir2" / "b.ipynb")

    await rename(jp_fetch, "Untitled.ipynb", "trained_100%.ipynb")
    code, body = await api("sessions", params={"notebook": "trained_100%.ipynb"})
    assert [s["session_id"] for s in body["sessions"]] == [untitled]
    code, body = await api("sessions", params={"notebook": "Untitled.ipynb"})
    assert body["sessions"] == []
    code, run = await api("runs", seeded.runs["alpha"])
    assert run["notebook_path"] == "trained_100%.ipynb"
    assert run["notebook_name"] == "trained_100%.ipynb"

    await rename(jp_fetch, "old dir", "new dir")
    code, body = await api("sessions")
    paths = {s["session_id"]: s["notebook_path"] for s in body["sessions"]}
    assert paths[inside] == "new dir/a.ipynb"
    assert paths[beside] == "old dir2/b.ipynb"  # a folder whose name only starts the same


async def test_a_notebook_renamed_after_its_kernel_started(api, jp_fetch, jp_serverapp, seeded):
    """As JupyterLab does: a session for Untitled.ipynb starts the kernel (which records
    that path), the kernel loads the extension and tracks a cell, then the session's path
    changes on the first save."""
    from jupyter_mlops.tracking.runner import execute_request

    response = await jp_fetch("api", "sessions", method="POST", body=json.dumps({
        "path": "Untitled.ipynb", "name": "Untitled.ipynb", "type": "notebook",
        "kernel": {"name": "python3"}}))
    session = json.loads(response.body)
    kernel_id = session["kernel"]["id"]
    client = jp_serverapp.kernel_manager.get_kernel(kernel_id).client()
    client.start_channels()
    try:
        await client.wait_for_ready(timeout=60)
        for cell_id, code in [("load", "%load_ext jupyter_mlops"),
                              ("train", "%%track -n renamed-run\nlr = 0.5")]:
            msg_id = execute_request(client, code, cell_id)
            while True:  # until the kernel is idle again after this cell
                message = await client.get_iopub_msg(timeout=60)
                if (message["parent_header"].get("msg_id") == msg_id
                        and message["content"].get("execution_state") == "idle"):
                    break
    finally:
        client.stop_channels()
    run_id = None
    for _ in range(200):  # the kernel writes its rows on a thread of its own
        runs = mlops.search_runs()
        found = runs.loc[runs["name"] == "renamed-run", "run_id"]
        if len(found):
            run_id = found.iloc[0]
            break
        await asyncio.sleep(0.05)
    assert run_id is not None
    code, run = await api("runs", run_id)
    assert run["notebook_path"] == "Untitled.ipynb"
    assert run["kernel_id"] == kernel_id

    await jp_fetch("api", "sessions", session["id"], method="PATCH",
                   body=json.dumps({"path": "Trained.ipynb", "name": "Trained.ipynb"}))
    code, body = await api("sessions", params={"notebook": "Trained.ipynb",
                                               "kernel": kernel_id})
    (found,) = [s for s in body["sessions"] if s["current"]]
    assert found["notebook_path"] == "Trained.ipynb"
    assert found["session_id"] == run["session_id"]
    code, run = await api("runs", run_id)
    assert run["notebook_path"] == "Trained.ipynb"
    for _ in range(200):  # the cells' rows come on the kernel's writer thread, after the run
        code, cells = await api("cells", params={"session": run["session_id"]})
        if len(cells["cells"]) >= 2:
            break
        await asyncio.sleep(0.05)
    assert cells["notebook_path"] == "Trained.ipynb"
    assert [c["cell_id"] for c in cells["cells"]] == ["load", "train"]
    await jp_fetch("api", "sessions", session["id"], method="DELETE")


async def test_version_says_whether_a_kernel_store_is_this_one(api, seeded, tmp_path):
    code, body = await api("version", params={"kernel_store": str(seeded.store.path)})
    assert body["kernel_store"] == {"same": True, "path": str(seeded.store.path)}
    elsewhere = str(tmp_path / "elsewhere" / ".mlops")
    code, body = await api("version", params={"kernel_store": elsewhere})
    assert body["kernel_store"] == {"same": False, "path": elsewhere}
    code, body = await api("version")
    assert "kernel_store" not in body
