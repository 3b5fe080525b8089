"""Shared fixtures: a fresh real store per test, an IPython shell with the extension, and
a real kernel driven through jupyter_client."""

from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from jupyter_mlops.store import current
from jupyter_mlops.tracking import runs as tracking

ROOT = Path(__file__).resolve().parents[1]

# The corpus notebooks are run by test_corpus.py, in the order a user ran them, not by nbval.
collect_ignore_glob = ["corpus/*"]

# Models are signed with a per-user key (~/.jupyter_mlops/key); the tests, and the kernels
# and servers they start, use a key of their own instead of touching the home folder.
os.environ["JUPYTER_MLOPS_KEY_FILE"] = str(
    Path(tempfile.mkdtemp(prefix="jupyter-mlops-test-key-")) / "key")


@pytest.fixture
def store(tmp_path, monkeypatch):
    """A new store in ``tmp_path``, in use for the test, closed afterwards."""
    path = tmp_path / ".mlops"
    monkeypatch.setenv("JUPYTER_MLOPS_STORE", str(path))
    opened = current.set_store(path)
    yield opened
    while (run := tracking.active_run()) is not None:
        tracking._end(run, "KILLED")
    current.reset_store()
    opened.close()


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


@dataclass(frozen=True)
class Scale:
    """How hard the reliability tests push: the CI numbers, or the soak numbers (--soak)."""

    soak: bool
    writer_processes: int  # R1
    writer_seconds: float  # R1
    runs_per_thread: int  # R1, threaded variant
    kill_iterations: int  # R2
    simultaneous_openers: int  # R5
    starvation_seconds: float  # R6
    cells: int  # R11


CI_SCALE = Scale(False, writer_processes=8, writer_seconds=20, runs_per_thread=25,
                 kill_iterations=20, simultaneous_openers=8, starvation_seconds=10, cells=1000)
SOAK_SCALE = Scale(True, writer_processes=16, writer_seconds=300, runs_per_thread=250,
                   kill_iterations=500, simultaneous_openers=32, starvation_seconds=60,
                   cells=10_000)
# A soak test runs for minutes: the CI time limits of the reliability tests would stop it.
SOAK_TIMEOUT_S = 3600


@pytest.fixture(scope="session")
def scale(pytestconfig) -> Scale:
    return SOAK_SCALE if pytestconfig.getoption("soak") else CI_SCALE


def pytest_addoption(parser):
    parser.addoption("--soak", action="store_true", default=False,
                     help="run the reliability tests with the soak numbers (minutes, not "
                          "seconds) and the tests marked soak")


def pytest_configure(config):
    config.addinivalue_line("markers", "reliability: the promises R1-R12 (tests/reliability)")
    config.addinivalue_line("markers", "soak: runs only with --soak (manual or nightly)")
    if config.getoption("soak"):
        from hypothesis import settings

        # Applies to property tests that do not set max_examples themselves.
        settings.register_profile("soak", max_examples=5000)
        settings.load_profile("soak")


def pytest_collection_modifyitems(config, items):
    soak = config.getoption("soak")
    skip = pytest.mark.skip(reason="soak test: run with --soak")
    for item in items:
        if not soak and "soak" in item.keywords:
            item.add_marker(skip)
        elif soak and "reliability" in item.keywords:
            item.add_marker(pytest.mark.timeout(SOAK_TIMEOUT_S), append=False)


def pytest_report_header(config):
    return f"python {sys.version.split()[0]} at {sys.prefix}"


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """One real ``mlflow server`` for the session (SQLite backend, local artifacts)."""
    pytest.importorskip("mlflow")
    from support import MlflowServer

    server = MlflowServer(tmp_path_factory.mktemp("mlflow-server"))
    yield server
    server.stop()
