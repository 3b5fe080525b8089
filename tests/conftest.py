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


@pytest.fixture
def kernel(tmp_path):
    from support import Kernel

    started = Kernel(tmp_path / ".mlops", tmp_path)
    yield started
    started.shutdown()


def pytest_configure(config):
    config.addinivalue_line("markers", "reliability: the promises R1-R12 (tests/reliability)")


def pytest_report_header(config):
    return f"python {sys.version.split()[0]} at {sys.prefix}"
