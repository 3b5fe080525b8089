"""A model registered here, synced to a real ``mlflow server``, served from that server's
registry by ``mlflow models serve`` and scored over HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

import jupyter_mlops as mlops

pytest.importorskip("mlflow")


def test_a_synced_version_is_served_by_mlflow_models_serve(store, mlflow_server, tmp_path):
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    from support import free_port

    X, y = load_iris(return_X_y=True, as_frame=True)
    name = f"served-{uuid.uuid4().hex[:6]}"
    experiment = f"exp-{uuid.uuid4().hex[:8]}"
    with mlops.start_run("fit", experiment=experiment) as run:
        model = LogisticRegression(max_iter=300).fit(X, y)
    mlops.register_model(model, name, run_id=run.run_id, alias="champion")
    assert mlops.sync(mlflow_server.uri, experiment).versions == 1

    port = free_port()
    log = tmp_path / "serve.log"
    bin_dir = str(Path(sys.executable).parent)  # mlflow runs the venv's uvicorn by name
    env = dict(os.environ, MLFLOW_TRACKING_URI=mlflow_server.uri,
               PATH=os.pathsep.join([bin_dir, os.environ.get("PATH", "")]))
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(Path(bin_dir) / "mlflow"), "models", "serve", "-m",
             f"models:/{name}@champion", "--env-manager", "local", "-h", "127.0.0.1",
             "-p", str(port), "-w", "1"],
            stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tmp_path,
            start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while True:
            assert process.poll() is None, log.read_text()[-2000:]
            assert time.monotonic() < deadline, log.read_text()[-2000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        rows = X.iloc[::15]
        body = json.dumps({"dataframe_split": rows.to_dict(orient="split")}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", body,
                                         {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as answer:
            predictions = json.loads(answer.read())["predictions"]
        assert predictions == model.predict(rows).tolist()
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
