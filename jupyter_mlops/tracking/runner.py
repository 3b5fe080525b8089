"""Run a notebook headless in a real kernel, the way JupyterLab does.

Unlike a plain ``client.execute``, each request carries the cell's id in its metadata
(``cellId``, as JupyterLab sends it) and the kernel is told which notebook it runs
(``JPY_SESSION_NAME``, as jupyter_server sets it), so the captured history can place
every execution in the notebook.

The kernel listens on IPC sockets in a folder only this user can enter, not on TCP ports
that anyone on a shared machine could connect to (which is also what the kernel's
"running over TCP without encryption" warning is about).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class CellOutcome:
    index: int
    cell_id: str | None
    status: str
    execution_count: int | None
    outputs: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    expected_error: bool = False


def execute_request(client: Any, code: str, cell_id: str | None = None,
                    store_history: bool = True) -> str:
    """Send one execute_request carrying ``cellId``; returns its msg_id."""
    content = {"code": code, "silent": False, "store_history": store_history,
               "user_expressions": {}, "allow_stdin": False, "stop_on_error": True}
    message = client.session.msg("execute_request", content,
                                 metadata={"cellId": cell_id} if cell_id else {})
    client.shell_channel.send(message)
    return message["header"]["msg_id"]


def collect(client: Any, msg_id: str, timeout: float) -> tuple[dict, list[dict]]:
    """The execute_reply content and the iopub messages of one request."""
    outputs: list[dict] = []
    while True:
        message = client.get_iopub_msg(timeout=timeout)
        if message["parent_header"].get("msg_id") != msg_id:
            continue
        kind = message["msg_type"]
        if kind == "status" and message["content"]["execution_state"] == "idle":
            break
        if kind in ("stream", "execute_result", "display_data", "error"):
            outputs.append(message)
    while True:
        reply = client.get_shell_msg(timeout=timeout)
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply["content"], outputs


def run_notebook(path: str | os.PathLike[str], *, env: dict[str, str] | None = None,
                 timeout: float = 600, stop_on_error: bool = True,
                 order: Sequence[int] | None = None, notebook: Any = None) -> list[CellOutcome]:
    """Execute every code cell of ``path`` in order in a fresh kernel.

    ``order`` runs the cells a user ran, as they ran them instead: indices into the
    notebook's cells, a cell repeated when it was run again, earlier ones after later ones.
    ``notebook`` runs these cells (a parameterized copy) as the notebook at ``path``.
    """
    import nbformat
    from jupyter_client import KernelManager

    notebook_path = Path(path).resolve()
    if notebook is None:
        notebook = nbformat.read(notebook_path, as_version=4)
    kernel_env = dict(os.environ, **(env or {}))
    kernel_env["JPY_SESSION_NAME"] = str(notebook_path)
    sockets = tempfile.mkdtemp(prefix="jupyter-mlops-kernel-")  # 0700, this user's only
    manager = KernelManager(kernel_name="python3", transport="ipc",
                            ip=os.path.join(sockets, "kernel"),
                            connection_file=os.path.join(sockets, "kernel.json"))
    outcomes: list[CellOutcome] = []
    try:
        manager.start_kernel(env=kernel_env, cwd=str(notebook_path.parent))
    except BaseException:
        shutil.rmtree(sockets, ignore_errors=True)
        raise
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        indices = range(len(notebook.cells)) if order is None else order
        for index in indices:
            cell = notebook.cells[index]
            if cell.cell_type != "code" or not cell.source.strip():
                continue
            msg_id = execute_request(client, cell.source, cell.get("id"))
            reply, outputs = collect(client, msg_id, timeout)
            error = None
            if reply["status"] != "ok":
                error = f"{reply.get('ename')}: {reply.get('evalue')}"
            # A cell tagged raises-exception demonstrates a failure, as in nbconvert.
            expected = "raises-exception" in cell.metadata.get("tags", [])
            outcomes.append(CellOutcome(index, cell.get("id"), reply["status"],
                                        reply.get("execution_count"), outputs, error, expected))
            if error and stop_on_error and not expected:
                break
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
        shutil.rmtree(sockets, ignore_errors=True)
    return outcomes
