"""Registry benchmark: register and load a small and a ~55 MB model, jupyter_mlops against
``mlflow.sklearn.log_model`` and its two loaders (sqlite backend), one run.

    python bench/registry.py            # full run
    python bench/registry.py --quick    # fewer repetitions
    python bench/registry.py --quick --only large
    python bench/registry.py --json results.json

Each tool runs in its own worker process on the same models (built from the same seed), so
neither pays for the other's imports. Every registration gets new bytes (a new version),
as when a model is retrained. Loads are measured the same way on both sides, and the two
workers take turns one load at a time, so both see the same machine: one untimed load
first (lazy imports, the first query), then every version ``LOAD_ROUNDS`` times, from
files both tools have just written (so from the page cache), each loaded model freed after
its clock stops, elapsed and CPU time (all threads) both kept. ``load_model`` returns the estimator, so its
anchor is ``mlflow.sklearn.load_model``; ``mlflow.pyfunc.load_model`` (what serving uses,
which also checks the recorded requirements) is shown beside it. Nothing asserts on time.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    READY_MARKER,
    Row,
    WorkerError,
    bench_env,
    emit,
    environment,
    finish_workers,
    median,
    print_table,
    scratch_dir,
    start_worker,
    time_each,
    wait_ready,
    write_json,
)

SCRIPT = Path(__file__).resolve()
LOAD_ROUNDS = 3
LARGE_LOAD_GOAL = 1.5


def make_models(kind: str, count: int):
    """``count`` fitted models with different bytes: small (LogisticRegression, ~2 KB) or
    large (brute-force KNN keeping 330,000 × 20 training rows, ~53 MB)."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier

    rng = np.random.default_rng(0)
    if kind == "small":
        X = rng.normal(size=(2_000, 20))
        y = (X[:, 0] > 0).astype(int)
        return [LogisticRegression(C=1.0 + i).fit(X, y) for i in range(count)], X[:100]
    X = rng.normal(size=(330_000, 20))
    y = (X[:, 0] > 0).astype(int)
    models = []
    for i in range(count):
        X_i = X.copy()
        X_i[0, 0] += i  # new bytes per version
        models.append(KNeighborsClassifier(n_neighbors=3, algorithm="brute").fit(X_i, y))
    return models, X[:100]


def worker_ours(params: dict) -> dict:
    import jupyter_mlops as mlops

    models, sample = make_models(params["kind"], params["n"])
    mlops.set_store(os.path.join(params["tmp"], "ours", ".mlops"))
    uris = []

    def register(i: int) -> None:
        uris.append(mlops.register_model(models[i], "bench").uri)

    register_times = time_each(register, params["n"])
    loads = serve_loads({"ours": mlops.load_model}, uris)
    size = mlops.get_model_version(uris[0]).size
    predictions = mlops.load_model(uris[0]).predict(sample).tolist()
    return {"register": register_times, "load": loads["ours"], "bytes": size,
            "predictions": predictions}


def worker_mlflow(params: dict) -> dict:
    import mlflow
    import mlflow.sklearn

    models, sample = make_models(params["kind"], params["n"])
    folder = os.path.join(params["tmp"], "mlflow")
    os.makedirs(folder, exist_ok=True)
    os.chdir(folder)  # MLflow puts model artifacts in ./mlruns
    mlflow.set_tracking_uri(f"sqlite:///{folder}/mlflow.db")
    mlflow.set_experiment("bench")
    uris = []

    def register(i: int) -> None:
        with mlflow.start_run():
            info = mlflow.sklearn.log_model(models[i], name="model",
                                            registered_model_name="bench")
        uris.append(info.model_uri)

    register_times = time_each(register, params["n"])
    loads = serve_loads({"sklearn": mlflow.sklearn.load_model,
                         "pyfunc": mlflow.pyfunc.load_model}, uris)
    predictions = [int(p) for p in mlflow.pyfunc.load_model(uris[0]).predict(sample)]
    return {"register": register_times, "load": loads["sklearn"], "load_pyfunc": loads["pyfunc"],
            "predictions": predictions}


def serve_loads(loaders: dict, uris: list[str]) -> dict[str, dict[str, list[float]]]:
    """Load when the parent says so (a line ``LOADER I`` on stdin, until ``stop``), so the
    two workers take turns and see the same machine; each load is timed elapsed and in CPU
    (all threads), after one untimed load per loader, and freed after the clocks stop."""
    for load in loaders.values():
        load(uris[-1])
    times = {name: {"wall": [], "cpu": []} for name in loaders}
    print(READY_MARKER, flush=True)
    for line in sys.stdin:
        if line.strip() == "stop":
            break
        name, i = line.split()
        started, used = time.perf_counter(), time.process_time()
        model = loaders[name](uris[int(i) % len(uris)])
        times[name]["wall"].append(time.perf_counter() - started)
        times[name]["cpu"].append(time.process_time() - used)
        del model
        print("loaded", flush=True)
    return times


def take_turns(workers: dict, n: int) -> None:
    """Every version ``LOAD_ROUNDS`` times, each loader in turn, one load at a time."""
    for i in range(LOAD_ROUNDS * n):
        for name, proc in workers.items():
            proc.stdin.write(f"{name} {i}\n")
            proc.stdin.flush()
            if proc.stdout.readline().strip() != "loaded":
                raise WorkerError(f"the {name} worker stopped:\n{proc.stderr.read()[-2000:]}")
    for proc in set(workers.values()):
        proc.stdin.write("stop\n")
        proc.stdin.flush()


WORKERS = {"ours": worker_ours, "mlflow": worker_mlflow}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json")
    parser.add_argument("--only", choices=("small", "large"), help="one model size only")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--params", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        import json

        emit(WORKERS[args.worker](json.loads(args.params)))
        return 0

    rows = []
    counts = {"small": 3 if args.quick else 20, "large": 2 if args.quick else 5}
    if args.only:
        counts = {args.only: counts[args.only]}
    with scratch_dir("bench-registry-") as tmp:
        env = bench_env(tmp)
        for kind, n in counts.items():
            params = {"kind": kind, "n": n, "tmp": os.path.join(tmp, kind)}
            # One after the other up to their loads (registering is timed alone), then
            # loads in turn.
            procs = []
            for name in WORKERS:
                procs.append(start_worker(SCRIPT, name, params, env=env, stdin=subprocess.PIPE))
                wait_ready(procs[-1:], timeout=1800)
            take_turns({"ours": procs[0], "sklearn": procs[1], "pyfunc": procs[1]}, n)
            ours, theirs = finish_workers(procs)
            size = f"{ours['bytes'] / 1e6:.1f} MB" if ours["bytes"] > 1e6 else \
                f"{ours['bytes'] / 1e3:.1f} KB"
            rows.append(Row(f"register a {kind} model ({size}), median of {n}", "s",
                            ours=median(ours["register"]), anchor=median(theirs["register"])))
            same = ours["predictions"] == theirs["predictions"]
            goal = LARGE_LOAD_GOAL if kind == "large" else None
            ours_load, their_load = ours["load"], theirs["load"]
            loads = len(ours_load["wall"])
            rows.append(Row(f"load a {kind} model vs mlflow.sklearn.load_model, median of "
                            f"{loads}", "s", ours=median(ours_load["wall"]),
                            anchor=median(their_load["wall"]), min_ratio=goal,
                            target=f"≥ {goal}× faster" if goal else "",
                            note="" if same else "the loaded models predicted differently",
                            details={"ours": ours_load, "anchor": their_load}))
            rows.append(Row("  the same, CPU time of all threads", "s",
                            ours=median(ours_load["cpu"]), anchor=median(their_load["cpu"])))
            rows.append(Row(f"load a {kind} model vs mlflow.pyfunc.load_model, median of "
                            f"{loads}", "s", ours=median(ours_load["wall"]),
                            anchor=median(theirs["load_pyfunc"]["wall"]),
                            details={"anchor": theirs["load_pyfunc"]}))
    print_table(rows, anchor_name="MLflow (log_model / load_model)")
    if args.json:
        write_json(args.json, rows, environment=environment())
    return 0


if __name__ == "__main__":
    sys.exit(main())
