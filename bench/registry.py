"""Registry benchmark: register and load a small and a ~50 MB model, jupyter_mlops against
``mlflow.sklearn.log_model`` + ``mlflow.pyfunc.load_model`` (sqlite backend), one run.

    python bench/registry.py            # full run
    python bench/registry.py --quick    # fewer repetitions
    python bench/registry.py --json results.json

Each tool runs in its own worker process on the same models (built from the same seed), so
neither pays for the other's imports. Every registration gets new bytes (a new version),
as when a model is retrained. Nothing asserts on time.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    Row,
    bench_env,
    emit,
    environment,
    median,
    print_table,
    run_worker,
    scratch_dir,
    time_each,
    write_json,
)

SCRIPT = Path(__file__).resolve()


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
    load_times = time_each(lambda i: mlops.load_model(uris[i]), params["n"])
    size = mlops.get_model_version(uris[0]).size
    predictions = mlops.load_model(uris[0]).predict(sample).tolist()
    return {"register": register_times, "load": load_times, "bytes": size,
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
    load_times = time_each(lambda i: mlflow.pyfunc.load_model(uris[i]), params["n"])
    predictions = [int(p) for p in mlflow.pyfunc.load_model(uris[0]).predict(sample)]
    return {"register": register_times, "load": load_times, "predictions": predictions}


WORKERS = {"ours": worker_ours, "mlflow": worker_mlflow}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--params", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        import json

        emit(WORKERS[args.worker](json.loads(args.params)))
        return 0

    rows = []
    counts = {"small": 3 if args.quick else 20, "large": 2 if args.quick else 5}
    with scratch_dir("bench-registry-") as tmp:
        env = bench_env(tmp)
        for kind, n in counts.items():
            params = {"kind": kind, "n": n, "tmp": os.path.join(tmp, kind)}
            ours = run_worker(SCRIPT, "ours", params, env=env)
            theirs = run_worker(SCRIPT, "mlflow", params, env=env)
            size = f"{ours['bytes'] / 1e6:.1f} MB" if ours["bytes"] > 1e6 else \
                f"{ours['bytes'] / 1e3:.1f} KB"
            rows.append(Row(f"register a {kind} model ({size}), median of {n}", "s",
                            ours=median(ours["register"]), anchor=median(theirs["register"])))
            same = ours["predictions"] == theirs["predictions"]
            rows.append(Row(f"load a {kind} model, median of {n}", "s",
                            ours=median(ours["load"]), anchor=median(theirs["load"]),
                            note="" if same else "the loaded models predicted differently"))
    print_table(rows, anchor_name="MLflow (log_model / pyfunc.load_model)")
    if args.json:
        write_json(args.json, rows, environment=environment())
    return 0


if __name__ == "__main__":
    sys.exit(main())
