"""How fast the sidebar's ``runs`` endpoint answers over a large store.

Builds a store of 100,000 runs (3 params, 3 metrics and a tag each, over 8 experiments),
then times one page of 100 runs for the requests the sidebar makes: the first page, a
page deep in the list, filters by status, experiment, text and metric, and a metric sort.
Each is timed twice: the query alone (``queries.list_runs``, in process) and the whole
HTTP request to a real Jupyter server running the extension (auth, JSON, network).

The target is a page of 100 in under 100 ms. Nothing here asserts: a miss is reported.

    python bench/server.py [--runs 100000] [--repeat 15] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

TARGET_MS = 100.0
SCENARIOS = [
    ("first page", {}),
    ("page at 50,000", {"offset": 50_000}),
    ("last page", {"offset": "LAST"}),
    ("status=FAILED", {"status": "FAILED"}),
    ("one experiment", {"experiment": "exp-3"}),
    ("text search", {"q": "run-4242"}),
    ("metric filter", {"filter": "metrics.acc > 0.99"}),
    ("sort by metric", {"sort": "metrics.acc", "order": "desc"}),
    ("oldest first", {"sort": "start_time", "order": "asc"}),
]


def build_store(path: Path, runs: int, seed: int = 0) -> float:
    """Fill a new store with ``runs`` finished runs, in batches; returns seconds taken."""
    from jupyter_mlops.store import Store

    started = time.perf_counter()
    rng = random.Random(seed)
    store = Store(path)
    now = time.time() - runs
    with store.write() as conn:
        for i in range(8):
            conn.execute("INSERT INTO experiments (name, created) VALUES (?, ?)",
                         (f"exp-{i}", now))
        ids = [row[0] for row in conn.execute("SELECT experiment_id FROM experiments")]
    batch = 10_000
    for first in range(0, runs, batch):
        run_rows, params, metrics, latest, tags = [], [], [], [], []
        for i in range(first, min(runs, first + batch)):
            run_id = uuid.UUID(int=rng.getrandbits(128)).hex
            start = now + i
            status = rng.choices(["FINISHED", "FAILED", "KILLED"], [90, 7, 3])[0]
            run_rows.append((run_id, rng.choice(ids), f"run-{i}", status, start,
                             start + rng.random() * 30, start + 30))
            params += [(run_id, "lr", json.dumps(rng.choice([0.1, 0.01, 0.001]))),
                       (run_id, "depth", json.dumps(rng.randint(2, 12))),
                       (run_id, "solver", json.dumps(rng.choice(["adam", "sgd"])))]
            for key in ("acc", "f1", "loss"):
                value = rng.random()
                metrics.append((run_id, key, 0, value, 0, start))
                latest.append((run_id, key, 0, value, 0, start))
            tags.append((run_id, "team", rng.choice(["red", "blue"])))
        with store.write() as conn:
            conn.executemany(
                "INSERT INTO runs (run_id, experiment_id, name, status, start_time, end_time, "
                "heartbeat) VALUES (?, ?, ?, ?, ?, ?, ?)", run_rows)
            conn.executemany("INSERT INTO params (run_id, key, value) VALUES (?, ?, ?)", params)
            conn.executemany("INSERT INTO metrics (run_id, key, step, value, is_nan, timestamp) "
                             "VALUES (?, ?, ?, ?, ?, ?)", metrics)
            conn.executemany("INSERT INTO latest_metrics (run_id, key, step, value, is_nan, "
                             "timestamp) VALUES (?, ?, ?, ?, ?, ?)", latest)
            conn.executemany("INSERT INTO tags (run_id, key, value) VALUES (?, ?, ?)", tags)
    store.query("ANALYZE")
    store.close()
    return time.perf_counter() - started


def _params(params: dict, runs: int) -> dict:
    params = dict(params, limit=100)
    if params.get("offset") == "LAST":
        params["offset"] = (runs - 1) // 100 * 100
    return params


def time_queries(path: Path, runs: int, repeat: int) -> dict[str, list[float]]:
    from jupyter_mlops.server import queries
    from jupyter_mlops.store import Store

    store = Store(path)
    results = {}
    for name, raw in SCENARIOS:
        params = _params(raw, runs)
        kwargs = {
            "experiments": [params["experiment"]] if "experiment" in params else [],
            "statuses": [params["status"]] if "status" in params else [],
            "text": params.get("q"), "filter_text": params.get("filter"),
            "sort": params.get("sort", "start_time"),
            "descending": params.get("order", "desc") == "desc",
            "offset": params.get("offset", 0), "limit": 100,
        }
        queries.list_runs(store, **kwargs)  # warm the page cache
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            page = queries.list_runs(store, **kwargs)
            times.append((time.perf_counter() - started) * 1000)
        assert page["runs"], name
        results[name] = times
    store.close()
    return results


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def time_http(path: Path, runs: int, repeat: int, workdir: Path) -> dict[str, list[float]]:
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ, JUPYTER_MLOPS_STORE=str(path),
               JUPYTER_CONFIG_DIR=str(workdir / "config"),
               JUPYTER_RUNTIME_DIR=str(workdir / "runtime"))
    command = [sys.executable, "-m", "jupyter_server", "--no-browser", "--ip=127.0.0.1",
               f"--port={port}", f"--IdentityProvider.token={token}",
               f"--ServerApp.root_dir={workdir}", "--ServerApp.jpserver_extensions="
               "{'jupyter_mlops': True}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    log = open(workdir / "server.log", "wb")
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/jupyter-mlops/api/runs"
    headers = {"Authorization": f"token {token}"}

    def get(params: dict) -> dict:
        query = urllib.parse.urlencode(params)
        request = urllib.request.Request(f"{base}?{query}", headers=headers)
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    results = {}
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                get({"limit": 1})
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((workdir / "server.log").read_text()[-2000:]) from None
                time.sleep(0.2)
        for name, raw in SCENARIOS:
            params = _params(raw, runs)
            get(params)
            times = []
            for _ in range(repeat):
                started = time.perf_counter()
                get(params)
                times.append((time.perf_counter() - started) * 1000)
            results[name] = times
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-server-") as tmp:
        workdir = Path(tmp)
        path = workdir / ".mlops"
        built = build_store(path, args.runs)
        print(f"store of {args.runs:,} runs built in {built:.1f} s")
        in_process = time_queries(path, args.runs, args.repeat)
        over_http = time_http(path, args.runs, args.repeat, workdir)

    rows = []
    print(f"\n{'page of 100 runs':<18} {'query p50':>10} {'query p95':>10} "
          f"{'HTTP p50':>10} {'HTTP p95':>10}  target < {TARGET_MS:.0f} ms")
    for name, _ in SCENARIOS:
        q, h = in_process[name], over_http[name]
        q50, q95 = statistics.median(q), sorted(q)[int(0.95 * (len(q) - 1))]
        h50, h95 = statistics.median(h), sorted(h)[int(0.95 * (len(h) - 1))]
        met = "ok" if h95 < TARGET_MS else "MISSED"
        print(f"{name:<18} {q50:>8.1f}ms {q95:>8.1f}ms {h50:>8.1f}ms {h95:>8.1f}ms  {met}")
        rows.append({"scenario": name, "query_p50_ms": q50, "query_p95_ms": q95,
                     "http_p50_ms": h50, "http_p95_ms": h95, "target_ms": TARGET_MS})
    if args.json:
        args.json.write_text(json.dumps({"runs": args.runs, "results": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
