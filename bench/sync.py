"""Sync benchmark: pushing runs to a local ``mlflow server`` with ``jupyter_mlops.sync`` against
logging the same runs straight to that server with MLflow's client (``log_batch``).

Run it from the repository root with the ``test`` extra installed (it brings ``mlflow``)::

    python bench/sync.py            # 1,000 runs: 20 params, 20 metrics × 100 steps, 10 KB file
    python bench/sync.py --quick    # 100 runs, to check that it works

One ``mlflow server`` (SQLite backend, proxied artifacts in a temporary folder) on
127.0.0.1 takes both sides, each into an experiment of its own. Each side runs in a fresh
worker process. MLflow's side is its fastest path: per run ``create_run``, one ``log_batch``
of the params and every metric point (the client splits it into the server's pages),
``log_artifact`` and ``set_terminated``. Ours is one ``sync`` call (4 upload threads), then
a second ``sync`` with nothing new. Nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import EMIT, Row, bench_env, print_table, run_code  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

BUILD = """
import os, time, numpy as np
import jupyter_mlops as m
m.set_store({store!r})
rng = np.random.default_rng(0)
blob = rng.bytes(10_000)
for i in range({runs}):
    with m.start_run(f"run-{{i}}", experiment="bench"):
        m.log_params({{f"p{{k}}": k * i for k in range(20)}})
        for step in range(100):
            m.log_metrics({{f"m{{k}}": float(k + step / 100) for k in range(20)}}, step=step)
        m.log_bytes(blob, "blob.bin")
emit({{}})
"""

OURS = """
import time
import jupyter_mlops as m
m.set_store({store!r})
t = time.perf_counter(); r = m.sync({uri!r}, "bench"); first = time.perf_counter() - t
assert r.runs_created == {runs}, r
t = time.perf_counter(); again = m.sync({uri!r}, "bench"); second = time.perf_counter() - t
assert again.runs_created == again.metrics == 0, again
emit({{"push": first, "resync": second}})
"""

MLFLOW = """
import os, time
import numpy as np
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient
client = MlflowClient(tracking_uri={uri!r})
rng = np.random.default_rng(0)
path = os.path.join({tmp!r}, "blob.bin")
open(path, "wb").write(rng.bytes(10_000))
# The same values and timestamps as the store holds, built before the clock starts.
now = int(time.time() * 1000)
runs = [([Param(f"p{{k}}", str(k * i)) for k in range(20)],
         [Metric(f"m{{k}}", float(k + step / 100), now, step)
          for step in range(100) for k in range(20)]) for i in range({runs})]
t = time.perf_counter()
experiment = client.create_experiment("bench-mlflow")
for i, (params, metrics) in enumerate(runs):
    run = client.create_run(experiment, run_name=f"run-{{i}}")
    client.log_batch(run.info.run_id, metrics=metrics, params=params)
    client.log_artifact(run.info.run_id, path)
    client.set_terminated(run.info.run_id)
emit({{"push": time.perf_counter() - t}})
"""


def start_server(folder: Path) -> tuple[subprocess.Popen, str]:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mlflow = Path(sys.executable).with_name("mlflow")
    log = open(folder / "server.log", "wb")
    process = subprocess.Popen(
        [str(mlflow), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "2",
         "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
         "--artifacts-destination", str(folder / "artifacts")],
        stdout=log, stderr=subprocess.STDOUT, cwd=folder, env=bench_env(folder))
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(uri + "/health", timeout=2):
                return process, uri
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise SystemExit(f"mlflow server did not start; see {folder / 'server.log'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--runs", type=int, default=None)
    args = parser.parse_args()
    runs = args.runs or (100 if args.quick else 1000)
    with tempfile.TemporaryDirectory(prefix="bench-sync-") as tmp:
        folder = Path(tmp)
        store = str(folder / "store")
        started = time.perf_counter()
        env = bench_env(folder, PYTHONPATH=str(ROOT))
        run_code(EMIT + BUILD.format(store=store, runs=runs), env=env, timeout=7200)
        print(f"built {runs} runs in {time.perf_counter() - started:.0f} s", flush=True)
        process, uri = start_server(folder)
        try:
            mlflow = run_code(EMIT + MLFLOW.format(uri=uri, runs=runs, tmp=tmp), env=env,
                              timeout=7200)
            print(f"mlflow client: {mlflow['push']:.1f} s", flush=True)
            ours = run_code(EMIT + OURS.format(uri=uri, runs=runs, store=store), env=env,
                            timeout=7200)
            print(f"sync: {ours['push']:.1f} s, re-sync {ours['resync']:.3f} s", flush=True)
        finally:
            process.terminate()
            process.wait(30)
    rows = [
        Row(f"push {runs:,} runs (20 params, 20 metrics × 100 steps, 10 KB file)", "s",
            ours=ours["push"], anchor=mlflow["push"], target="no slower", better="lower",
            min_ratio=1),
        Row("re-sync with nothing new", "s", ours=ours["resync"], anchor=None,
            target="< 2 s", better="lower", max_ours=2),
    ]
    print_table(rows, anchor_name="MLflow client log_batch")


if __name__ == "__main__":
    main()
