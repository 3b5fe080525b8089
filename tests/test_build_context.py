"""``jupyter-mlops build URI OUT``: a container build context that serves the version.

The context is tested as an image would run it, without Docker: a fresh virtualenv gets
its requirements file and its jupyter-mlops wheel (nothing from this environment: no
PYTHONPATH, no system site-packages), its entrypoint serves on a free 127.0.0.1 port, and
the answers over HTTP must equal the registered model's predictions. Where a working
``docker`` is found, the image is built too.
"""

import hashlib
import importlib.metadata
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
import zipfile

import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.linear_model import LogisticRegression

import jupyter_mlops as mlops
from jupyter_mlops.cli import main as cli

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A registered model and its build context, written by the command line."""
    from jupyter_mlops.store import current

    root = tmp_path_factory.mktemp("build")
    store = current.set_store(root / ".mlops")
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(300, 4)), columns=["tenure", "spend", "calls", "age"])
    model = LogisticRegression().fit(X, (X["tenure"] + X["spend"] > 0).astype(int))
    mlops.register_model(model, "churn", alias="champion", reference=X)
    out = root / "context"
    assert cli(["build", "churn@champion", str(out), "--store", str(store.path)]) == 0
    yield out, model, X, root
    current.reset_store()
    store.close()


def test_context_holds_what_an_image_needs(built):
    out, _, _, root = built
    dockerfile = (out / "Dockerfile").read_text()
    assert f"FROM python:{sys.version_info.major}.{sys.version_info.minor}-slim" in dockerfile
    assert 'CMD ["python", "/app/serve.py"]' in dockerfile and "EXPOSE 8000" in dockerfile
    requirements = (out / "requirements.txt").read_text().splitlines()
    assert f"scikit-learn=={sklearn.__version__}" in requirements
    assert any(line.startswith("tornado==") for line in requirements)
    assert f"orjson=={importlib.metadata.version('orjson')}" in requirements  # installed here
    assert not any("jupyter" in line for line in requirements if not line.startswith("#"))
    described = json.loads((out / "model" / "model.json").read_text())
    assert described["uri"] == "models:/churn/1"
    assert described["files"]["model.pkl"] == hashlib.sha256(
        (out / "model" / "model.pkl").read_bytes()).hexdigest()
    for line in (out / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split("  ", 1)
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest, name
    (wheel,) = (out / "wheels").glob("jupyter_mlops-*-py3-none-any.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "jupyter_mlops/serving/container.py" in names
    assert not any("labextension/" in n or "__pycache__" in n for n in names)
    # A second build into the same folder is refused, the first left whole.
    assert cli(["build", "churn@champion", str(out), "--store", str(root / ".mlops")]) == 2
    assert (out / "Dockerfile").read_text() == dockerfile


def _clean_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "JUPYTER_MLOPS_STORE",
                        "JUPYTER_MLOPS_KEY_FILE", "JUPYTER_MLOPS_SERVE_TOKEN")}
    return {**env, **extra}


def _post(url, payload):
    request = urllib.request.Request(url + "/invocations", data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["predictions"]


def _get(url, path):
    with urllib.request.urlopen(url + path, timeout=10) as response:
        return json.loads(response.read())


def test_context_serves_from_a_fresh_virtualenv(built, tmp_path):
    out, model, X, _ = built
    venv = tmp_path / "venv"
    # No pip of its own (ensurepip takes seconds): this pip installs into it, from its cache,
    # without byte-compiling thousands of modules the server never imports (4x quicker).
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    python = venv / "bin" / "python"
    env = _clean_env()
    for command in (["-r", "requirements.txt"],
                    ["--no-deps", *map(str, (out / "wheels").glob("*.whl"))]):
        subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                        "--no-compile",
                        *command], cwd=out, env=env, check=True, timeout=400)
    port, data = free_port(), tmp_path / "data"
    server = subprocess.Popen([str(python), "serve.py"], cwd=out, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True,
                              env=_clean_env(PORT=str(port), DATA=str(data), HOST="127.0.0.1"))
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, server.stdout.read()
            assert time.monotonic() < deadline, "the entrypoint did not answer /ping"
            try:
                urllib.request.urlopen(url + "/ping", timeout=2).read()
                break
            except OSError:
                time.sleep(0.1)
        rows = X.head(25)
        expected = model.predict(rows).tolist()
        assert _post(url, {"dataframe_split": rows.to_dict(orient="split")}) == expected
        assert _post(url, {"dataframe_records": rows.head(3).to_dict(orient="records")}) == \
            expected[:3]
        assert _get(url, "/metadata")["champion"]["name"] == "churn"
        assert _get(url, "/health")["status"] == "ok"
    finally:
        server.send_signal(signal.SIGTERM)
        output = server.communicate(timeout=60)[0]
    assert server.returncode == 0, output
    assert "Registered models:/churn/1 (built from churn@champion)" in output
    with sqlite3.connect(data / ".mlops" / "mlops.db") as conn:
        assert conn.execute("SELECT count(*), sum(n_rows) FROM predictions").fetchone() == (2, 28)
    assert (data / ".mlops-key").exists()  # the mounted folder keeps the key of its store
    # Bytes changed after the build are refused before anything is unpickled.
    tampered = tmp_path / "tampered"
    shutil.copytree(out, tampered)
    model_file = tampered / "model" / "model.pkl"
    model_file.write_bytes(model_file.read_bytes() + b"\x00")
    refused = subprocess.run([str(python), "serve.py"], cwd=tampered, capture_output=True,
                             text=True, timeout=120,
                             env=_clean_env(PORT=str(port), DATA=str(tmp_path / "data2")))
    assert refused.returncode == 2, refused.stderr
    assert "sha256" in refused.stderr and "Registered" not in refused.stdout


def _docker_problem():
    docker = shutil.which("docker")
    if docker is None:
        return "no docker binary on PATH"
    probe = subprocess.run([docker, "info"], capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        lines = (probe.stderr or probe.stdout).strip().splitlines()
        return f"docker info failed: {lines[-1] if lines else probe.returncode}"
    return None


def test_image_builds_where_docker_works(built):
    problem = _docker_problem()
    if problem:
        pytest.skip(f"the image is not built here: {problem}")
    out = built[0]
    tag = f"jupyter-mlops-test-{os.getpid()}"
    try:
        subprocess.run(["docker", "build", "-q", "-t", tag, str(out)], check=True, timeout=900)
    finally:
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True, timeout=120)
