"""Import benchmark: an MLflow scikit-learn model folder registered by ``import_model``,
against ``mlflow.pyfunc.load_model`` + ``mlflow.register_model`` into an MLflow sqlite
registry.

    python bench/imports.py            # 10 imports a side
    python bench/imports.py --quick    # 4

The folder is written once by ``mlflow.sklearn.save_model`` (MLflow 3 writes skops). Each
side runs in its own fresh interpreter: imports and one untimed import first, then every
timed import registers the folder under a new name (a new model, version 1), so neither
side can return an earlier answer. MLflow's side is what a user of MLflow does to bring a
folder into its registry: load it (which checks it) and register it, which copies the
artifacts into a logged model. Nothing asserts on time.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import EMIT, Row, print_table, project_env, run_code  # noqa: E402


SAVE = """
import mlflow.sklearn
from mlflow.models import infer_signature
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
X, y = load_breast_cancer(return_X_y=True, as_frame=True)
model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
mlflow.sklearn.save_model(model, {folder!r}, signature=infer_signature(X, model.predict(X)))
emit({{}})
"""

OURS = """
import jupyter_mlops as m
m.set_store({store!r})
m.import_model({folder!r}, "warmup")
times = []
for i in range({n}):
    t = time.perf_counter(); m.import_model({folder!r}, f"model-{{i}}")
    times.append(time.perf_counter() - t)
emit({{"median": statistics.median(times)}})
"""

MLFLOW = """
import os
import mlflow, mlflow.pyfunc
mlflow.set_tracking_uri("sqlite:///" + os.path.join({tmp!r}, "mlflow.db"))
def once(name):
    mlflow.pyfunc.load_model({folder!r})
    mlflow.register_model({folder!r}, name)
once("warmup")
times = []
for i in range({n}):
    t = time.perf_counter(); once(f"model-{{i}}")
    times.append(time.perf_counter() - t)
emit({{"median": statistics.median(times)}})
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n = 4 if args.quick else 10
    with tempfile.TemporaryDirectory(prefix="bench-imports-") as tmp:
        folder = str(Path(tmp) / "model")
        env = project_env(tmp)
        run_code(EMIT + SAVE.format(folder=folder), env=env)
        mlflow = run_code(EMIT + MLFLOW.format(folder=folder, tmp=tmp, n=n), env=env,
                          cwd=tmp)
        ours = run_code(EMIT + OURS.format(folder=folder, store=str(Path(tmp) / "store"), n=n),
                        env=env, cwd=tmp)
    rows = [Row(f"import an MLflow scikit-learn folder, median of {n}", "s",
                ours=ours["median"], anchor=mlflow["median"], target=">= 10x",
                better="lower", min_ratio=10)]
    print_table(rows, anchor_name="mlflow.pyfunc.load_model + register_model")


if __name__ == "__main__":
    main()
