"""Evaluation: ``jupyter_mlops.evaluation.evaluate`` beside ``mlflow.evaluate``.

The same fitted LogisticRegression and Ridge, the same 100,000 × 20 DataFrame, in one run.
MLflow uses its default evaluator without SHAP, a sqlite tracking store and synchronous
logging; its model is logged once beforehand (not timed). Each side is warmed up once, then
the two are timed alternately so that a change of machine load hits both.

What is timed for jupyter_mlops:

- **metrics + curve data**: the whole ``evaluate(..., importance=False)`` call: predictions,
  every metric and curve, fingerprints of X and y, the store write and the metrics logged
  to the run. This is what the ≥ 5× target is about.
- **figures**: drawing every figure and its PNG (which ``evaluate`` never does; a notebook
  does it when the result is shown), timed separately.
- **permutation importance**: on its bounded sample (2,000 rows × 5 repeats by default).

MLflow's time includes its plots (it draws them inside ``evaluate``); the row "metrics +
figures" compares like with like. The metrics both report are checked for equality, and
every one of ours against scikit-learn's functions. Nothing here asserts on time.

Run: ``python bench/evaluation.py [--rows 100000] [--repeats 3] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import QUIET_ENV, Row, environment, median, print_table, write_json  # noqa: E402

os.environ.update(QUIET_ENV)

FEATURES = 20
TARGET = 5.0


def make_data(task: str, rows: int):
    import pandas as pd
    from sklearn.datasets import make_classification, make_regression
    from sklearn.linear_model import LogisticRegression, Ridge

    if task == "classifier":
        X, y = make_classification(rows, FEATURES, n_informative=10, random_state=0)
        model = LogisticRegression(max_iter=1000)
    else:
        X, y = make_regression(rows, FEATURES, n_informative=10, noise=10.0, random_state=0)
        y = y + 1000.0  # away from 0, so MAPE means something
        model = Ridge(alpha=1.0)
    X = pd.DataFrame(X, columns=[f"f{i}" for i in range(FEATURES)])
    y = pd.Series(y, name="target")
    return model.fit(X, y), X, y


class Ours:
    def __init__(self, model, X, y, importance_rows: int) -> None:
        import jupyter_mlops as mlops

        self.mlops = mlops
        self.model, self.X, self.y = model, X, y
        self.importance_rows = importance_rows
        self.results = []

    def metrics(self) -> float:
        from jupyter_mlops.evaluation import evaluate

        started = time.perf_counter()
        with self.mlops.start_run("bench"):
            result = evaluate(self.model, self.X, self.y, name="bench", importance=False)
        elapsed = time.perf_counter() - started
        self.results.append(result)
        return elapsed

    def figures(self) -> float:
        result = self.results[-1]
        started = time.perf_counter()
        for name in result.figures:
            result.figures.png(name)
        return time.perf_counter() - started

    def importance(self) -> float:
        from jupyter_mlops.evaluation.importance import permutation_importance
        from jupyter_mlops.evaluation.inputs import model_kind, target_array

        kind = model_kind(self.model, None)
        record, _ = permutation_importance(
            self.model, self.X, target_array(self.y), kind, max_rows=self.importance_rows,
            n_repeats=5, scoring=None, random_state=0, progress=False)
        return record["seconds"]


class MLflow:
    def __init__(self, model, X, y, task: str, root: str) -> None:
        import mlflow

        logging.getLogger("mlflow").setLevel(logging.ERROR)
        self.mlflow = mlflow
        mlflow.set_tracking_uri(f"sqlite:///{Path(root, 'mlflow.db').as_posix()}")
        # Artifacts go beside the database: MLflow's default is ./mlruns in the working folder.
        if mlflow.get_experiment_by_name("bench-evaluation") is None:
            mlflow.create_experiment("bench-evaluation",
                                     artifact_location=Path(root, "artifacts").as_uri())
        mlflow.set_experiment("bench-evaluation")
        self.task = task
        self.data = X.assign(target=y.to_numpy())
        with mlflow.start_run():
            self.uri = mlflow.sklearn.log_model(model, name="model").model_uri
        self.result = None

    def evaluate(self) -> float:
        started = time.perf_counter()
        with self.mlflow.start_run():
            self.result = self.mlflow.evaluate(
                self.uri, self.data, targets="target", model_type=self.task,
                evaluators=["default"],
                evaluator_config={"default": {"log_model_explainability": False}},
            )
        return time.perf_counter() - started


def sklearn_metrics(task: str, model, X, y) -> dict[str, float]:
    from sklearn import metrics as sk

    pred = model.predict(X)
    if task == "regressor":
        return {"mae": sk.mean_absolute_error(y, pred), "mse": sk.mean_squared_error(y, pred),
                "rmse": sk.root_mean_squared_error(y, pred), "r2": sk.r2_score(y, pred),
                "mape": sk.mean_absolute_percentage_error(y, pred),
                "median_ae": sk.median_absolute_error(y, pred),
                "max_error": sk.max_error(y, pred),
                "explained_variance": sk.explained_variance_score(y, pred)}
    proba = model.predict_proba(X)
    expected = {"accuracy": sk.accuracy_score(y, pred),
                "balanced_accuracy": sk.balanced_accuracy_score(y, pred),
                "roc_auc": sk.roc_auc_score(y, proba[:, 1]),
                "average_precision": sk.average_precision_score(y, proba[:, 1]),
                "log_loss": sk.log_loss(y, proba),
                "brier_score": sk.brier_score_loss(y, proba[:, 1])}
    for average in ("macro", "weighted"):
        expected[f"precision_{average}"] = sk.precision_score(y, pred, average=average)
        expected[f"recall_{average}"] = sk.recall_score(y, pred, average=average)
        expected[f"f1_{average}"] = sk.f1_score(y, pred, average=average)
    return expected


def shared_with_mlflow(task: str, result) -> dict[str, tuple[float, str]]:
    """Our value of each metric MLflow also reports, by MLflow's name."""
    if task == "regressor":
        names = {"mae": "mean_absolute_error", "mse": "mean_squared_error",
                 "rmse": "root_mean_squared_error", "r2": "r2_score", "max_error": "max_error",
                 "mape": "mean_absolute_percentage_error"}
        shared = {theirs: result.metrics[ours] for ours, theirs in names.items()}
    else:
        per_class = result.per_class
        positive = result.details["positive_label"]
        (tn, fp), (fn, tp) = result.confusion_matrix.to_numpy().tolist()
        shared = {"accuracy_score": result.metrics["accuracy"],
                  "roc_auc": result.metrics["roc_auc"], "log_loss": result.metrics["log_loss"],
                  "precision_score": per_class.loc[positive, "precision"],
                  "recall_score": per_class.loc[positive, "recall"],
                  "f1_score": per_class.loc[positive, "f1"], "true_negatives": tn,
                  "false_positives": fp, "false_negatives": fn, "true_positives": tp}
    shared["example_count"] = result.n_rows
    return shared


def max_difference(ours: dict, theirs: dict) -> tuple[float, list[str]]:
    worst, missing = 0.0, []
    for key, value in ours.items():
        if key not in theirs:
            missing.append(key)
            continue
        worst = max(worst, abs(float(value) - float(theirs[key])))
    return worst, missing


def bench_task(task: str, args, root: str, rows_out: list[Row], report: dict) -> None:
    import jupyter_mlops as mlops

    model, X, y = make_data(task, args.rows)
    mlops.set_store(Path(root, task, ".mlops"))
    ours = Ours(model, X, y, args.importance_rows)
    theirs = MLflow(model, X, y, task, str(Path(root)))
    ours.metrics()  # warm-up: imports and first-call costs, on both sides
    ours.figures()
    theirs.evaluate()
    ours_times, figure_times, their_times = [], [], []
    for _ in range(args.repeats):
        ours_times.append(ours.metrics())
        figure_times.append(ours.figures())
        their_times.append(theirs.evaluate())
    importance = median([ours.importance() for _ in range(max(1, args.repeats // 2))])
    result = ours.results[-1]
    timings = result.details["timings"]
    t_ours, t_figures, t_theirs = median(ours_times), median(figure_times), median(their_times)
    label = f"{task} {args.rows:,}×{FEATURES}"
    judged = args.rows == 100_000
    rows_out.append(Row(f"{label}: metrics + curve data", "s", t_ours, t_theirs,
                        target=f">= {TARGET:g}x", min_ratio=TARGET, judged=judged,
                        note=(f"ours: predict {timings['predict_s'] * 1e3:.0f} ms, metrics and "
                              f"curves {timings['metrics_s'] * 1e3:.0f} ms, the rest "
                              "fingerprints, store write and run metrics")))
    rows_out.append(Row(f"{label}: metrics + figures", "s", t_ours + t_figures, t_theirs,
                        target="(like for like)", judged=False))
    rows_out.append(Row(f"{label}: figures, drawn when shown", "s", t_figures,
                        note=f"{len(result.figures)} figures, PNG included"))
    rows_out.append(Row(f"{label}: permutation importance", "s", importance,
                        note=f"{min(args.importance_rows, args.rows):,} rows × {FEATURES} "
                             "features × 5 repeats"))
    vs_sklearn, _ = max_difference(sklearn_metrics(task, model, X, y), result.metrics)
    vs_mlflow, missing = max_difference(shared_with_mlflow(task, result),
                                        theirs.result.metrics)
    rows_out.append(Row(f"{label}: max |ours − scikit-learn| over every metric", "",
                        vs_sklearn, target="< 1e-12", max_ours=1e-12))
    rows_out.append(Row(f"{label}: max |ours − MLflow| over shared metrics", "", vs_mlflow,
                        target="< 1e-12", max_ours=1e-12,
                        note="missing from MLflow: " + ", ".join(missing) if missing else ""))
    report[task] = {"ours_s": ours_times, "figures_s": figure_times, "mlflow_s": their_times,
                    "importance_s": importance, "timings": timings,
                    "ours_metrics": result.metrics,
                    "mlflow_metrics": {k: float(v) for k, v in theirs.result.metrics.items()
                                       if isinstance(v, (int, float)) or hasattr(v, "item")}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--importance-rows", type=int, default=2000)
    parser.add_argument("--task", choices=["classifier", "regressor"], action="append")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    import mlflow
    import sklearn

    rows: list[Row] = []
    report: dict = {}
    with tempfile.TemporaryDirectory(prefix="bench-evaluation-") as root:
        for task in args.task or ["classifier", "regressor"]:
            bench_task(task, args, root, rows, report)
    print_table(rows, anchor_name=f"mlflow.evaluate {mlflow.__version__}")
    if args.json:
        write_json(args.json, rows, environment=environment(
            mlflow=mlflow.__version__, sklearn=sklearn.__version__), details=report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
