"""Serving benchmark: ``jupyter-mlops serve`` beside ``mlflow models serve``, same model, one run.

Run it from the repository root with the ``bench`` extra installed::

    python bench/serving.py                  # full run: HTTP, then a 10-million-row CSV
    python bench/serving.py --rows 1000000   # a smaller batch file
    python bench/serving.py --quick          # fewer requests and 200,000 rows (~2 minutes)
    python bench/serving.py --quick --no-batch --workers 2   # both servers with 2 processes
    python bench/serving.py --json results.json

One model (a gradient-boosted classifier over 8 numeric columns) is registered in a fresh
store and exported with ``export_mlflow``; both servers run as separate processes on
127.0.0.1, each with one process (MLflow's uvicorn with one worker), or both with
``--workers N`` processes. The
clients run in a third process: one client for latency (p50/p99), four at once for
throughput, each client one keep-alive HTTP/1.1 connection (``http.client``), the same
for both servers; single-row and 1,000-row ``dataframe_split`` requests; the two servers take
turns, twice, and the median of the two rounds is reported. Both must return the same
predictions, and every request sent to ours must be in its predictions log once. Batch scoring generates a CSV into the temporary directory and scores it
with ``jupyter-mlops score`` (peak memory of that process), and beside it with
``mlflow models predict`` (which reads the whole file). Nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    Row,
    bench_env,
    emit,
    environment,
    median,
    peak_rss_mib,
    percentile,
    print_table,
    run_worker,
    scratch_dir,
    write_json,
)

SCRIPT = Path(__file__).resolve()
FEATURES = [f"f{i}" for i in range(8)]
MODEL = "bench"


# -- the model ---------------------------------------------------------------------------

def make_frame(rows: int, seed: int):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.normal(size=(rows, len(FEATURES))).round(6), columns=FEATURES)


def prepare(store_path: Path, export_path: Path) -> None:
    import jupyter_mlops as mlops
    from sklearn.ensemble import GradientBoostingClassifier

    mlops.set_store(store_path)
    X = make_frame(5000, seed=0)
    y = (X["f0"] + X["f1"] * X["f2"] > 0).astype(int)
    model = GradientBoostingClassifier(n_estimators=50, max_depth=3, random_state=0).fit(X, y)
    mlops.register_model(model, MODEL, alias="champion", reference=X)
    mlops.export_mlflow(f"{MODEL}@champion", export_path)


# -- servers -----------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server at {url} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/ping", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the server at {url} did not answer /ping in {timeout:g} s")


def start_ours(store_path: Path, env: dict[str, str],
               workers: int = 1) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter_mlops.cli", "serve", f"{MODEL}@champion", "--port",
         str(port), "--store", str(store_path), "--watch", "0", "--workers", str(workers)],
        env=env, stdout=subprocess.DEVNULL, stderr=None, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, proc)
    return proc, url


def start_mlflow(export_path: Path, env: dict[str, str],
                 workers: int = 1) -> tuple[subprocess.Popen, str]:
    port = free_port()
    mlflow = Path(sys.executable).with_name("mlflow")
    proc = subprocess.Popen(
        [str(mlflow), "models", "serve", "-m", str(export_path), "--env-manager", "local",
         "-p", str(port), "-h", "127.0.0.1", "--workers", str(workers)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, proc)
    return proc, url


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


# -- the client worker ---------------------------------------------------------------------

def worker_client(params: dict[str, Any]) -> dict[str, Any]:
    """``clients`` threads, each sending ``per_client`` requests on one keep-alive connection
    (at most ``max_seconds``); per-request latencies and the overall rate."""
    import http.client

    host, port = params["url"].removeprefix("http://").split(":")
    body = Path(params["body"]).read_bytes()
    headers = {"Content-Type": "application/json"}
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + params["max_seconds"]

    sent = [0]

    def run(count: int, record: bool) -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        mine = []
        try:
            for _ in range(count):
                if time.monotonic() > deadline:
                    break
                start = time.perf_counter()
                conn.request("POST", "/invocations", body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                mine.append(time.perf_counter() - start)
                with lock:
                    sent[0] += response.status == 200
                if response.status != 200:
                    errors.append(f"{response.status} {data[:200]!r}")
        finally:
            conn.close()
        if record:
            with lock:
                latencies.extend(mine)

    run(params["warmup"], record=False)
    threads = [threading.Thread(target=run, args=(params["per_client"], True))
               for _ in range(params["clients"])]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return {"n": len(latencies), "seconds": elapsed, "rps": len(latencies) / elapsed,
            "p50_ms": percentile(latencies, 50) * 1000, "p99_ms": percentile(latencies, 99) * 1000,
            "errors": errors[:5], "n_errors": len(errors), "answered": sent[0]}


def predictions(url: str, body: bytes) -> list:
    request = urllib.request.Request(url + "/invocations", data=body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())["predictions"]


# -- batch workers ---------------------------------------------------------------------------

def write_csv(path: Path, rows: int, chunk: int = 1_000_000) -> None:
    """A CSV of ``rows`` rows of the model's columns, written in chunks (bounded memory)."""
    try:
        import pyarrow as pa
        import pyarrow.csv as pacsv
    except ImportError:
        pa = None
    writer = None
    with open(path, "wb") as handle:
        for start in range(0, rows, chunk):
            frame = make_frame(min(chunk, rows - start), seed=1000 + start // chunk)
            if pa is None:
                handle.write(frame.to_csv(header=start == 0, index=False,
                                          float_format="%.6f").encode())
                continue
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if writer is None:
                writer = pacsv.CSVWriter(handle, table.schema)
            writer.write_table(table)
        if writer is not None:
            writer.close()


def worker_score(params: dict[str, Any]) -> dict[str, Any]:
    from jupyter_mlops.serving import score_file
    from jupyter_mlops.store.current import set_store

    store = set_store(params["store"])
    start = time.perf_counter()
    result = score_file(f"{MODEL}@champion", params["input"], params["output"], progress=False,
                        store=store)
    seconds = time.perf_counter() - start
    return {"rows": result.rows, "seconds": seconds, "peak_mib": peak_rss_mib()}


def worker_mlflow_predict(params: dict[str, Any]) -> dict[str, Any]:
    """``mlflow models predict`` as a child of this fresh worker: its wall time and peak RSS."""
    import resource

    mlflow = Path(sys.executable).with_name("mlflow")
    start = time.perf_counter()
    proc = subprocess.run(
        [str(mlflow), "models", "predict", "-m", params["model"], "-i", params["input"], "-t",
         "csv", "-o", params["output"], "--env-manager", "local"],
        capture_output=True, text=True, timeout=params["timeout"])
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if proc.returncode != 0:
        return {"failed": proc.stderr.strip().splitlines()[-1][:300] if proc.stderr else
                f"exit {proc.returncode}", "seconds": seconds, "peak_mib": peak}
    return {"rows": params["rows"], "seconds": seconds, "peak_mib": peak}


WORKERS = {"client": worker_client, "score": worker_score,
           "mlflow-predict": worker_mlflow_predict}


# -- the run -----------------------------------------------------------------------------------

def http_rows(ours_url: str, mlflow_url: str, tmp: Path, env: dict[str, str],
              quick: bool, answered: list[int]) -> list[Row]:
    """The HTTP rows; ``answered`` gets the number of requests our server answered."""
    one = make_frame(1, seed=7)
    thousand = make_frame(1000, seed=8)
    bodies = {}
    for label, frame in (("1-row", one), ("1,000-row", thousand)):
        path = tmp / f"{label}.json"
        path.write_text(json.dumps({"dataframe_split": frame.to_dict(orient="split")}))
        bodies[label] = path
        same = predictions(ours_url, path.read_bytes()) == predictions(mlflow_url,
                                                                      path.read_bytes())
        answered[0] += 1
        if not same:
            raise RuntimeError(f"the servers disagree on the {label} request")
    plans = {  # requests per client: (latency run with 1 client, throughput run with 4)
        "1-row": (300, 150) if quick else (2000, 1000),
        "1,000-row": (40, 20) if quick else (300, 150),
    }
    rows: list[Row] = []
    for label, (sequential, concurrent) in plans.items():
        results: dict[str, dict[str, list[dict]]] = {"ours": {"seq": [], "conc": []},
                                                     "mlflow": {"seq": [], "conc": []}}
        for round_number in range(2):
            order = [("ours", ours_url), ("mlflow", mlflow_url)]
            if round_number % 2:
                order.reverse()
            for tool, url in order:
                for kind, clients, count in (("seq", 1, sequential), ("conc", 4, concurrent)):
                    result = run_worker(SCRIPT, "client", {
                        "url": url, "body": str(bodies[label]), "clients": clients,
                        "per_client": count, "warmup": 20, "max_seconds": 300}, env=env,
                        timeout=900)
                    if result["n_errors"]:
                        raise RuntimeError(f"{tool} answered errors: {result['errors']}")
                    if tool == "ours":
                        answered[0] += result["answered"]
                    results[tool][kind].append(result)

        def mid(tool: str, kind: str, key: str) -> float:
            return median([r[key] for r in results[tool][kind]])

        n_rows = 1 if label == "1-row" else 1000
        rows.append(Row(f"{label} requests, throughput (4 clients)", "req/s",
                        mid("ours", "conc", "rps"), mid("mlflow", "conc", "rps"),
                        better="higher",
                        note=(f"{label}: {mid('ours', 'conc', 'rps') * n_rows:,.0f} rows/s "
                              f"ours vs {mid('mlflow', 'conc', 'rps') * n_rows:,.0f} MLflow")
                        if n_rows > 1 else ""))
        rows.append(Row(f"{label} requests, p50 latency (1 client)", "ms",
                        mid("ours", "seq", "p50_ms"), mid("mlflow", "seq", "p50_ms")))
        rows.append(Row(f"{label} requests, p99 latency (1 client)", "ms",
                        mid("ours", "seq", "p99_ms"), mid("mlflow", "seq", "p99_ms")))
        rows.append(Row(f"{label} requests, p99 latency (4 clients)", "ms",
                        mid("ours", "conc", "p99_ms"), mid("mlflow", "conc", "p99_ms")))
    return rows


def batch_rows(store_path: Path, export_path: Path, tmp: Path, env: dict[str, str], rows: int,
               with_mlflow: bool) -> list[Row]:
    source = tmp / f"batch-{rows}.csv"
    started = time.perf_counter()
    write_csv(source, rows)
    print(f"generated {rows:,} rows ({source.stat().st_size / 2**20:,.0f} MiB CSV) in "
          f"{time.perf_counter() - started:.1f} s", file=sys.stderr)
    ours = run_worker(SCRIPT, "score", {"store": str(store_path), "input": str(source),
                                        "output": str(tmp / "scored.csv")}, env=env,
                      timeout=7200)
    (tmp / "scored.csv").unlink(missing_ok=True)
    anchor: dict[str, Any] = {}
    if with_mlflow:
        anchor = run_worker(SCRIPT, "mlflow-predict", {
            "model": str(export_path), "input": str(source), "output": str(tmp / "mlflow.json"),
            "rows": rows, "timeout": 7200}, env=env, timeout=7500)
        (tmp / "mlflow.json").unlink(missing_ok=True)
    source.unlink(missing_ok=True)
    failed = anchor.get("failed")
    ours_text = ("jupyter-mlops score (chunks of 100,000 rows, writes the input columns and "
                 "the prediction as CSV)")
    if failed:
        note = f"mlflow models predict failed: {failed}"
    elif anchor:
        note = ("MLflow: mlflow models predict (reads the whole file, writes JSON); "
                f"ours: {ours_text}")
    else:
        note = f"ours: {ours_text}"
    label = f"batch scoring, {rows:,}-row CSV"
    anchor_rate = None if failed or not anchor else anchor["rows"] / anchor["seconds"]
    return [
        Row(f"{label}: rows/s", "rows/s", ours["rows"] / ours["seconds"], anchor_rate,
            better="higher", note=note),
        Row(f"{label}: peak memory", "MiB", ours["peak_mib"],
            None if failed or not anchor else anchor["peak_mib"]),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests, 200,000 rows")
    parser.add_argument("--rows", type=int, default=None, help="rows of the batch CSV "
                        "(default 10,000,000; 200,000 with --quick)")
    parser.add_argument("--no-http", action="store_true", help="batch scoring only")
    parser.add_argument("--no-batch", action="store_true", help="HTTP serving only")
    parser.add_argument("--no-mlflow-batch", action="store_true",
                        help="skip mlflow models predict on the batch file")
    parser.add_argument("--workers", type=int, default=1,
                        help="processes of each server (ours and MLflow's uvicorn; default 1)")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--params", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        emit(WORKERS[args.worker](json.loads(args.params)))
        return 0

    rows_in_batch = args.rows or (200_000 if args.quick else 10_000_000)
    results: list[Row] = []
    with scratch_dir("bench-serving-") as scratch:
        tmp = Path(scratch)
        # mlflow starts uvicorn by name: this interpreter's scripts must be on PATH.
        env = bench_env(tmp, PATH=os.pathsep.join([str(Path(sys.executable).parent),
                                                   os.environ.get("PATH", "")]))
        store_path, export_path = tmp / ".mlops", tmp / "exported"
        prepare(store_path, export_path)
        if not args.no_http:
            ours, ours_url = start_ours(store_path, env, args.workers)
            try:
                anchor, anchor_url = start_mlflow(export_path, env, args.workers)
            except BaseException:
                stop(ours)
                raise
            try:
                answered = [0]
                results += http_rows(ours_url, anchor_url, tmp, env, args.quick, answered)
            finally:
                stop(anchor)
                stop(ours, signal.SIGINT)  # a clean stop drains the predictions log
            import sqlite3

            with sqlite3.connect(store_path / "mlops.db") as conn:
                logged, distinct = conn.execute(
                    "SELECT count(*), count(DISTINCT request_id) FROM predictions").fetchone()
            print(f"our server ({args.workers} process(es)) answered {answered[0]:,} requests "
                  f"and logged {logged:,} ({distinct:,} distinct request ids)"
                  + ("" if logged == distinct == answered[0] else ": MISMATCH"),
                  file=sys.stderr)
        if not args.no_batch:
            results += batch_rows(store_path, export_path, tmp, env, rows_in_batch,
                                  not args.no_mlflow_batch)
    print_table(results, anchor_name=f"MLflow 3 (mlflow models serve --workers {args.workers} "
                                     "/ predict)")
    if args.json:
        import mlflow
        import sklearn
        import tornado

        write_json(args.json, results, environment=environment(
            mlflow=mlflow.__version__, sklearn=sklearn.__version__, tornado=tornado.version))
    return 0


if __name__ == "__main__":
    sys.exit(main())
