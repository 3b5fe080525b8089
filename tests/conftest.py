"""Shared fixtures: a fresh real store per test, an IPython shell with the extension, and
a real kernel driven through jupyter_client."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from jupyter_mlops import tracking

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def store(tmp_path, monkeypatch):
    """A new store in ``tmp_path``, in use for the test, closed afterwards."""
    path = tmp_path / ".mlops"
    monkeypatch.setenv("JUPYTER_MLOPS_STORE", str(path))
    current = tracking.set_store(path)
    yield current
    while (run := tracking.active_run()) is not None:
        tracking._end(run, "KILLED")
    tracking._store = None
    current.close()


@pytest.fixture
def shell(store):
    """IPython's test shell with a clean namespace and ``%load_ext jupyter_mlops``."""
    from IPython.testing.globalipapp import get_ipython, start_ipython

    ip = start_ipython() or get_ipython()
    ip.reset(new_session=True)
    ip.execution_count = 1
    ip.run_line_magic("load_ext", "jupyter_mlops")
    yield ip
    ip.run_line_magic("unload_ext", "jupyter_mlops")
    ip.reset(new_session=True)


def run_cell(ip, source: str, cell_id: str | None = None):
    """Run a cell the way a notebook does: stored in history, with a cell id when given."""
    return ip.run_cell(source, store_history=True, cell_id=cell_id)


class Kernel:
    """A real IPython kernel (ipykernel) with a blocking client."""

    def __init__(self, store_path: Path, cwd: Path) -> None:
        from jupyter_client import KernelManager

        env = dict(os.environ, JUPYTER_MLOPS_STORE=str(store_path), PYTHONUNBUFFERED="1")
        env.pop("JPY_SESSION_NAME", None)
        self.manager = KernelManager(kernel_name="python3")
        self.manager.start_kernel(env=env, cwd=str(cwd))
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)

    def execute(self, code: str, cell_id: str | None = None, timeout: float = 60):
        """Run code as a notebook cell; returns (reply content, iopub output messages)."""
        from jupyter_mlops.runner import collect, execute_request

        return collect(self.client, execute_request(self.client, code, cell_id), timeout)

    def shutdown(self) -> None:
        self.client.stop_channels()
        if self.manager.is_alive():
            self.manager.shutdown_kernel(now=True)


def stream_text(outputs, name: str = "stdout") -> str:
    return "".join(m["content"]["text"] for m in outputs
                   if m["msg_type"] == "stream" and m["content"]["name"] == name)


@pytest.fixture
def kernel(tmp_path):
    started = Kernel(tmp_path / ".mlops", tmp_path)
    yield started
    started.shutdown()


def pytest_configure(config):
    config.addinivalue_line("markers", "reliability: the promises R1-R12 (tests/reliability)")


def pytest_report_header(config):
    return f"python {sys.version.split()[0]} at {sys.prefix}"
