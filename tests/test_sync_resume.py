"""A sync stopped halfway (a 500, a 401, a timeout, the process killed) says so in one line,
records only what the server has, and the next sync finishes without duplicates."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

import jupyter_mlops as mlops
from jupyter_mlops.errors import SyncError

pytest.importorskip("mlflow")
ROOT = Path(__file__).resolve().parents[1]
N_RUNS, N_STEPS = 12, 5


@pytest.fixture
def proxy(mlflow_server):
    from support import FlakyProxy

    started = FlakyProxy(mlflow_server.port)
    yield started
    started.close()


def _runs(experiment: str) -> list[str]:
    ids = []
    for i in range(N_RUNS):
        with mlops.start_run(f"r{i}", experiment=experiment) as run:
            mlops.log_param("i", i)
            for step in range(N_STEPS):
                mlops.log_metric("loss", i + step / 10, step=step)
        ids.append(run.run_id)
    return ids


def _check_server(mlflow_server, experiment: str, ids: list[str]) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_server.uri)
    found = client.get_experiment_by_name(experiment)
    remote = client.search_runs([found.experiment_id], max_results=1000)
    tags = [r.data.tags["jupyter_mlops.run_id"] for r in remote]
    assert sorted(tags) == sorted(ids)  # every run once
    for run in remote:
        history = client.get_metric_history(run.info.run_id, "loss")
        assert [m.step for m in history] == list(range(N_STEPS))
        assert run.info.status == "FINISHED"


def _recorded_complete(store) -> int:
    return sum(1 for (state,) in store.query(
        "SELECT state FROM synced WHERE kind = 'run'") if state != "creating" and
        json.loads(state).get("s"))


@pytest.mark.parametrize("status", [500, 401])
def test_an_error_midway_is_one_line_and_the_next_sync_finishes(store, mlflow_server, proxy,
                                                                  status):
    experiment = f"resume-{status}-{uuid.uuid4().hex[:6]}"
    ids = _runs(experiment)
    proxy.fail_after, proxy.status = 20, status
    with pytest.raises(SyncError) as caught:
        mlops.sync(proxy.uri, experiment, workers=2)
    message = str(caught.value)
    assert "\n" not in message and proxy.uri in message and "sync again" in message
    if status == 401:
        assert "MLFLOW_TRACKING_TOKEN" in message
    partial = _recorded_complete(store)
    assert partial < N_RUNS

    proxy.release()
    result = mlops.sync(proxy.uri, experiment, workers=2)
    assert result.runs_updated + result.runs_created + partial >= N_RUNS - partial
    _check_server(mlflow_server, experiment, ids)
    assert _recorded_complete(store) == N_RUNS
    assert mlops.sync(proxy.uri, experiment).metrics == 0


def test_a_timeout_names_the_server(store, proxy):
    with mlops.start_run("slow", experiment="timeout"):
        mlops.log_metric("acc", 0.5)
    proxy.fail_after, proxy.hang = 0, True
    with pytest.raises(SyncError, match=r"did not answer within 1 s.*sync again"):
        mlops.sync(proxy.uri, timeout=1)


def test_a_sync_killed_halfway_finishes_next_time_without_duplicates(store, mlflow_server,
                                                                       proxy):
    experiment = f"killed-{uuid.uuid4().hex[:6]}"
    ids = _runs(experiment)
    store.close()
    # Held from the 6th request: while the remote runs are being created.
    proxy.fail_after, proxy.hang = 5, True
    code = (f"import jupyter_mlops as m; m.set_store({str(store.path)!r}); "
            f"m.sync({proxy.uri!r}, {experiment!r}, workers=2)")
    child = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE,
                             env=dict(os.environ, PYTHONPATH=str(ROOT)))
    deadline = time.monotonic() + 120
    while proxy.held < 1 and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert proxy.held >= 1, child.stderr.read() if child.poll() is not None else "no hold"
    child.send_signal(signal.SIGKILL)
    child.wait(30)
    proxy.release()

    mlops.sync(proxy.uri, experiment, workers=2)
    _check_server(mlflow_server, experiment, ids)
