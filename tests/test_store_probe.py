"""The comm the sidebar opens to ask a kernel which store it writes to, in a real kernel."""

import os
import time
import uuid
from pathlib import Path

import pytest

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(120)]


def probe(kernel, timeout: float = 30) -> tuple[str, dict]:
    """Open the ``jupyter_mlops`` comm as the sidebar does: ("msg", data) for an answer,
    ("close", {}) when the kernel has no such target."""
    client = kernel.client
    comm_id = uuid.uuid4().hex
    message = client.session.msg("comm_open", {"comm_id": comm_id,
                                               "target_name": "jupyter_mlops", "data": {}})
    client.shell_channel.send(message)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reply = client.get_iopub_msg(timeout=deadline - time.monotonic())
        content = reply["content"]
        if content.get("comm_id") != comm_id:
            continue
        if reply["msg_type"] == "comm_msg":
            return "msg", content["data"]
        if reply["msg_type"] == "comm_close":
            return "close", {}
    raise AssertionError("the kernel did not answer the probe")


def test_the_kernel_names_its_store_and_session(kernel, tmp_path):
    # Before %load_ext the kernel records nothing, and says so by closing the comm.
    assert probe(kernel) == ("close", {})
    reply, _ = kernel.execute("%load_ext jupyter_mlops", cell_id="load")
    assert reply["status"] == "ok"
    kind, data = probe(kernel)
    assert kind == "msg"
    assert Path(data["store"]) == tmp_path / ".mlops"
    assert data["why"]  # why that store: named, found, or set in the process
    reply, outputs = kernel.execute(
        "from jupyter_mlops.tracking.capture import current_session_id\n"
        "print(current_session_id())", cell_id="sid")
    printed = "".join(m["content"].get("text", "") for m in outputs
                      if m["msg_type"] == "stream")
    assert data["session_id"] == printed.strip()

    # A store chosen in the notebook is the one it names from then on.
    other = tmp_path / "elsewhere" / ".mlops"
    kernel.execute(f"%mlops store {os.fspath(other)}", cell_id="store")
    assert Path(probe(kernel)[1]["store"]) == other

    kernel.execute("%unload_ext jupyter_mlops", cell_id="unload")
    assert probe(kernel) == ("close", {})
