"""Gates: ``mlops.check`` of a candidate against the champion on a 100,000-row holdout,
against what an MLflow user runs for the same gate.

    python bench/gates.py                       # 100,000 rows, 3 rounds
    python bench/gates.py --rounds 5 --json gates.json
    python bench/gates.py --rows 20000          # to check that it works

Two LogisticRegression models on the same 20 generated features (the baseline fit on 1 %
of the training rows, the candidate on all of them) are registered as versions 1 and 2 of
``gate`` on each side, version 1 under the alias ``champion``; each side has a store of its
own in a temporary folder (MLflow: a sqlite tracking URI and an artifact folder there, its
models logged with their signature). Setting up is not timed. The gate is
``accuracy ≥ 0.7`` and ``accuracy`` at least 0.001 above the champion's (MLflow's
``MetricThreshold(threshold=0.7, min_absolute_change=0.001)``).

What each side does, timed as a whole:

- **jupyter_mlops**: ``check("gate/2", "gate@champion", data=holdout, target="target",
  thresholds={"accuracy": MetricThreshold(...)}, verify_replay=False)``: the holdout's
  fingerprint, the data gate (labels present, no empty column), the signature gate, both
  versions loaded and evaluated (every metric and curve of ``evaluate``), the metric gate,
  and the check stored as a run with its Markdown and JSON reports. The versions are
  registered from a script, so they have no producing run: the lineage gate is skipped (the
  report says so) and there is no replay to verify; drift is a gate of its own
  (``max_drift``), timed in a separate row.
- **MLflow**: ``mlflow.evaluate`` of ``models:/gate/2`` and of ``models:/gate@champion``
  on the same DataFrame (default evaluator, no SHAP, each in a run of its own, as the
  MLflow documentation's model-validation example does), then
  ``mlflow.validate_evaluation_results`` with the same ``MetricThreshold``.

Rows: both in one warm process (each side warmed up once, then timed alternately so that a
change of machine load hits both), and both from a fresh interpreter as a CI job runs them
(``jupyter-mlops check … --data holdout.parquet`` against a Python script doing the MLflow
calls on the same Parquet file). A second gate that the candidate must fail
(``min_absolute_change=0.2``) is run once on each side: both verdicts of both gates are
compared. Medians of ``--rounds``. Nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    QUIET_ENV,
    Row,
    bench_env,
    emit,
    environment,
    median,
    print_table,
    run_worker,
    scratch_dir,
    write_json,
)

os.environ.update(QUIET_ENV)

FEATURES = 20
TRAIN_ROWS = 20_000
PASSING = {"threshold": 0.7, "min_absolute_change": 0.001}
FAILING = {"min_absolute_change": 0.2}


def make_data(rows: int):
    import pandas as pd
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    X, y = make_classification(TRAIN_ROWS + rows, FEATURES, n_informative=10, random_state=0)
    X = pd.DataFrame(X, columns=[f"f{i}" for i in range(FEATURES)])
    X_train, y_train = X.iloc[:TRAIN_ROWS], y[:TRAIN_ROWS]
    baseline = LogisticRegression(max_iter=1000).fit(X_train[:TRAIN_ROWS // 100],
                                                     y_train[:TRAIN_ROWS // 100])
    candidate = LogisticRegression(max_iter=1000).fit(X_train, y_train)
    holdout = X.iloc[TRAIN_ROWS:].reset_index(drop=True).assign(target=y[TRAIN_ROWS:])
    return baseline, candidate, X_train, holdout


# -- jupyter_mlops -----------------------------------------------------------------------

class Ours:
    def __init__(self, folder: Path, baseline, candidate, X_train) -> None:
        import jupyter_mlops as mlops

        self.mlops = mlops
        self.store = mlops.Store(folder / ".mlops")
        for model in (baseline, candidate):
            mlops.register_model(model, "gate", reference=X_train, store=self.store)
        mlops.set_alias("gate", 1, "champion", store=self.store)

    def check(self, holdout, gate: dict, **extra):
        limit = self.mlops.MetricThreshold(greater_is_better=True, **gate)
        return self.mlops.check("gate/2", "gate@champion", data=holdout, target="target",
                                thresholds={"accuracy": limit}, verify_replay=False,
                                store=self.store, **extra)

    def timed(self, holdout, **extra) -> tuple[float, bool]:
        started = time.perf_counter()
        result = self.check(holdout, PASSING, **extra)
        return time.perf_counter() - started, result.passed

    def command(self, parquet: Path) -> list[str]:
        return [sys.executable, "-m", "jupyter_mlops.cli", "check", "gate/2",
                "--against", "gate@champion", "--data", str(parquet), "--target", "target",
                "--threshold", f"accuracy={PASSING['threshold']}",
                "--min-delta", f"accuracy={PASSING['min_absolute_change']}",
                "--no-replay", "--store", str(self.store.path)]


# -- MLflow ------------------------------------------------------------------------------

def mlflow_setup(folder: Path, baseline, candidate, X_train) -> str:
    import mlflow
    from mlflow.models import infer_signature

    uri = f"sqlite:///{(folder / 'mlflow.db').as_posix()}"
    mlflow.set_tracking_uri(uri)
    mlflow.create_experiment("gates", artifact_location=(folder / "artifacts").as_uri())
    mlflow.set_experiment("gates")
    for model in (baseline, candidate):
        with mlflow.start_run():
            mlflow.sklearn.log_model(model, name="model", registered_model_name="gate",
                                     signature=infer_signature(X_train, model.predict(X_train)))
    mlflow.MlflowClient().set_registered_model_alias("gate", "champion", "1")
    return uri


def mlflow_gate(holdout, gate: dict, accuracies: list | None = None) -> bool:
    """What an MLflow user runs: evaluate both versions, then validate (True: it passed).
    The accuracies MLflow computed are appended to ``accuracies`` when given."""
    import mlflow
    from mlflow.models import MetricThreshold
    from mlflow.models.evaluation.validation import ModelValidationFailedException

    results = []
    for uri in ("models:/gate/2", "models:/gate@champion"):
        with mlflow.start_run():
            results.append(mlflow.evaluate(
                uri, holdout, targets="target", model_type="classifier",
                evaluators=["default"],
                evaluator_config={"default": {"log_model_explainability": False}}))
    if accuracies is not None:
        accuracies += [r.metrics["accuracy_score"] for r in results]
    thresholds = {"accuracy_score": MetricThreshold(greater_is_better=True, **gate)}
    try:
        mlflow.validate_evaluation_results(thresholds, results[0], results[1])
    except ModelValidationFailedException:
        return False
    return True


def mlflow_timed(holdout) -> tuple[float, bool]:
    started = time.perf_counter()
    passed = mlflow_gate(holdout, PASSING)
    return time.perf_counter() - started, passed


def worker_mlflow(params: dict) -> None:
    """The MLflow gate from a fresh interpreter, as a CI step would run it."""
    import mlflow
    import pandas as pd

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    mlflow.set_tracking_uri(params["uri"])
    mlflow.set_experiment("gates")
    emit({"passed": mlflow_gate(pd.read_parquet(params["data"]), PASSING)})


# -- the comparison ----------------------------------------------------------------------

def measure(args, folder: Path) -> tuple[list[Row], dict]:
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    os.environ["JUPYTER_MLOPS_KEY_FILE"] = str(folder / "key")
    baseline, candidate, X_train, holdout = make_data(args.rows)
    parquet = folder / "holdout.parquet"
    holdout.to_parquet(parquet)
    (folder / "ours").mkdir()
    (folder / "mlflow").mkdir()
    ours = Ours(folder / "ours", baseline, candidate, X_train)
    uri = mlflow_setup(folder / "mlflow", baseline, candidate, X_train)

    ours.timed(holdout)  # warm-up: imports and first-call costs, on both sides
    mlflow_timed(holdout)
    times: dict[str, list[float]] = {"ours": [], "drift": [], "mlflow": []}
    verdicts: dict[str, set[bool]] = {"ours": set(), "mlflow": set()}
    for _ in range(args.rounds):
        took, passed = ours.timed(holdout)
        times["ours"].append(took)
        verdicts["ours"].add(passed)
        times["drift"].append(ours.timed(holdout, max_drift=0.3)[0])
        took, passed = mlflow_timed(holdout)
        times["mlflow"].append(took)
        verdicts["mlflow"].add(passed)

    shown = ours.check(holdout, PASSING)
    theirs: list[float] = []
    failing = {"ours": ours.check(holdout, FAILING).passed,
               "mlflow": mlflow_gate(holdout, FAILING, theirs)}

    env = bench_env(folder, MLFLOW_TRACKING_URI=uri)
    fresh: dict[str, list[float]] = {"ours": [], "mlflow": []}
    fresh_verdicts: dict[str, set[bool]] = {"ours": set(), "mlflow": set()}
    for _ in range(args.rounds):
        started = time.perf_counter()
        code = subprocess.run(ours.command(parquet), env=env, capture_output=True,
                              text=True).returncode
        fresh["ours"].append(time.perf_counter() - started)
        if code not in (0, 1):
            raise RuntimeError(f"jupyter-mlops check exited with {code}")
        fresh_verdicts["ours"].add(code == 0)
        started = time.perf_counter()
        result = run_worker(__file__, "mlflow", {"uri": uri, "data": str(parquet)}, env=env,
                            cwd=folder / "mlflow")
        fresh["mlflow"].append(time.perf_counter() - started)
        fresh_verdicts["mlflow"].add(result["passed"])
    ours.store.close()

    def verdict(values: set[bool]) -> str:
        return "/".join(sorted("pass" if v else "fail" for v in values))

    same = (verdicts["ours"] == verdicts["mlflow"] == fresh_verdicts["ours"]
            == fresh_verdicts["mlflow"] and len(verdicts["ours"]) == 1
            and failing["ours"] == failing["mlflow"])
    candidate_acc = shown.metrics["accuracy"]["candidate"]
    baseline_acc = shown.metrics["accuracy"]["baseline"]
    gates = ", ".join(f"{g.name} {g.verdict}" for g in shown.gates)
    judged = args.rows == 100_000
    size = f"{args.rows:,} × {FEATURES}"
    rows = [
        Row(f"gate on a {size} holdout, in one process: `check(..., verify_replay=False)` vs "
            "2 × `mlflow.evaluate` + `validate_evaluation_results`", "s",
            median(times["ours"]), median(times["mlflow"]), target="≥ 5×", min_ratio=5,
            judged=judged, note=f"our gates: {gates}"),
        Row("the same gate with the drift gate added (`max_drift=0.3`, training sample vs "
            "holdout)", "s", median(times["drift"]), median(times["mlflow"]),
            note="MLflow has no drift gate: its time is the same as above"),
        Row("the same gate from a fresh interpreter: `jupyter-mlops check … --data "
            "holdout.parquet` vs a script doing the MLflow calls", "s", median(fresh["ours"]),
            median(fresh["mlflow"]), target="≥ 5×", min_ratio=5, judged=judged,
            note="interpreter start, imports and the Parquet read included on both sides"),
        Row(f"verdict, accuracy ≥ {PASSING['threshold']} and ≥ champion + "
            f"{PASSING['min_absolute_change']}", "",
            f"{verdict(verdicts['ours'])} (fresh: {verdict(fresh_verdicts['ours'])})",
            f"{verdict(verdicts['mlflow'])} (fresh: {verdict(fresh_verdicts['mlflow'])})",
            better="none",
            note=f"accuracy: candidate {candidate_acc:.4f}, champion {baseline_acc:.4f} "
                 f"(MLflow: {theirs[0]:.4f}, {theirs[1]:.4f})"),
        Row(f"verdict, accuracy ≥ champion + {FAILING['min_absolute_change']}", "",
            "pass" if failing["ours"] else "fail", "pass" if failing["mlflow"] else "fail",
            better="none"),
        Row("both sides reach the same verdicts", "", "yes" if same else "NO", None,
            better="none", target="yes", equals="yes"),
    ]
    return rows, {"times": times, "fresh": fresh, "failing": failing,
                  "markdown": shown.markdown()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="holdout rows")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", default=None, help="also write the results here")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--params", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker == "mlflow":
        worker_mlflow(json.loads(args.params))
        return 0
    warnings.filterwarnings("ignore")
    import mlflow
    import sklearn

    import jupyter_mlops

    with scratch_dir("bench-gates-") as tmp:
        rows, details = measure(args, Path(tmp))
    print_table(rows, anchor_name=f"MLflow {mlflow.__version__}")
    if args.json:
        write_json(args.json, rows, environment=environment(
            jupyter_mlops=jupyter_mlops.__version__, mlflow=mlflow.__version__,
            sklearn=sklearn.__version__), details=details)
    return 0


if __name__ == "__main__":
    sys.exit(main())
