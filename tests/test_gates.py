"""Gates: a candidate version checked on a holdout against the champion, as CI would."""

import itertools
import json

import pytest

import jupyter_mlops as mlops
from jupyter_mlops.cli import main
from jupyter_mlops.monitoring.gates import FAIL, PASS, MetricThreshold, metric_gate
from jupyter_mlops.store import Store
from jupyter_mlops.tracking import storage

SESSION = [
    ("%load_ext jupyter_mlops", "load"),
    ("from sklearn.datasets import load_breast_cancer\n"
     "from sklearn.model_selection import train_test_split\n"
     "from sklearn.linear_model import LogisticRegression\n"
     "from sklearn.pipeline import make_pipeline\n"
     "from sklearn.preprocessing import StandardScaler\n"
     "X, y = load_breast_cancer(return_X_y=True, as_frame=True)\n"
     "X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0)\n"
     "X_test.assign(target=y_test).to_csv('holdout.csv', index=False)", "data"),
    ("%%track -n weak\nweak = LogisticRegression(C=1e-5, max_iter=200).fit(X_train, y_train)",
     "weak"),
    ("%mlops register cancer --var weak --alias champion", "register-weak"),
    ("%%track -n strong\n"
     "strong = make_pipeline(StandardScaler(), LogisticRegression(C=1.0)).fit(X_train, y_train)",
     "strong"),
    ("%mlops register cancer --var strong", "register-strong"),
]


@pytest.mark.kernel
@pytest.mark.timeout(300)
def test_a_better_candidate_passes_a_worse_one_fails_and_a_stale_one_is_refused(kernel,
                                                                                  tmp_path):
    for source, cell_id in SESSION:
        reply, outputs = kernel.execute(source, cell_id=cell_id, timeout=120)
        assert reply["status"] == "ok", (source, outputs)
    store = Store(tmp_path / ".mlops")
    holdout = tmp_path / "holdout.csv"

    better = mlops.check("cancer/2", "cancer@champion", data=holdout, target="target",
                         min_delta={"f1_macro": 0.01}, max_drift=0.5, store=store)
    verdicts = {g.name: g.verdict for g in better.gates}
    assert better.passed, better.markdown()
    assert verdicts == {"holdout data": PASS, "signature": PASS, "metric f1_macro": PASS,
                        "drift": PASS, "lineage": PASS, "replay": PASS}
    scores = better.metrics["f1_macro"]
    assert scores["candidate"] > scores["baseline"] + 0.01
    # The check is a run of its own with both evaluations and both reports.
    run = storage.get_run(store, better.run_id)
    assert run.experiment == "checks" and run.status == "FINISHED"
    assert run.tags["jupyter_mlops.check.passed"] == "true"
    assert run.metrics["eval.candidate.f1_macro"] == scores["candidate"]
    assert run.metrics["eval.baseline.f1_macro"] == scores["baseline"]
    assert {a.name for a in run.artifacts} >= {"check.md", "check.json"}
    assert "| metric f1_macro | pass |" in better.markdown()

    # The other way round, from the command line: no metric gate given, so the headline
    # metric must not get worse; it does, the command exits 1 and says why.
    out = tmp_path / "check.json"
    assert main(["check", "cancer/1", "--against", "cancer/2", "--data", str(holdout),
                 "--target", "target", "--json", str(out), "--no-replay",
                 "--store", str(tmp_path / ".mlops")]) == 1
    written = json.loads(out.read_text())
    assert written["passed"] is False
    (gate,) = [g for g in written["gates"] if g["name"] == "metric f1_macro"]
    assert gate["verdict"] == FAIL and "baseline" in gate["detail"]
    assert "No metric gate given: f1_macro must not get worse." in written["notes"]

    # Redefining the training data after the run makes it stale: refused.
    reply, _ = kernel.execute("X_train = X_train.iloc[:50]", cell_id="shrink")
    assert reply["status"] == "ok"
    stale = mlops.check("cancer/2", "cancer@champion", data=holdout, target="target",
                        verify_replay=False, store=store)
    (lineage,) = [g for g in stale.gates if g.name == "lineage"]
    assert lineage.verdict == FAIL and "X_train redefined in [" in lineage.detail
    assert not stale.passed

    # A holdout without a column the model takes fails the signature; nothing is evaluated.
    import pandas as pd

    short = pd.read_csv(holdout).drop(columns=["mean radius"])
    refused = mlops.check("cancer/2", data=short, target="target", store=store)
    (signature,) = [g for g in refused.gates if g.name == "signature"]
    assert signature.verdict == FAIL and "mean radius" in signature.detail
    assert not refused.passed and refused.metrics == {}
    store.close()


def test_bad_input_gets_one_line_that_says_what_to_do(store):
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "t": [1.0, 2.0, 3.1, 3.9]})
    mlops.register_model(LinearRegression().fit(frame[["a"]], frame.t), "lin", store=store)
    with pytest.raises(mlops.ValidationError, match="no column 'label'; its columns"):
        mlops.check("lin/1", data=frame, target="label", store=store)
    with pytest.raises(mlops.ValidationError, match="Name the label column"):
        mlops.check("lin/1", data=frame, store=store)
    with pytest.raises(mlops.ValidationError, match="between 0 and 1"):
        mlops.check("lin/1", data=frame, target="t", max_drift=2, store=store)
    with pytest.raises(mlops.ValidationError, match="not negative"):
        mlops.check("lin/1", data=frame, target="t", min_delta={"rmse": -1}, store=store)
    with pytest.raises(mlops.ValidationError, match="accuracy is not computed for a regression"):
        mlops.check("lin/1", data=frame, target="t", thresholds={"accuracy": 0.9},
                    store=store)
    # A version registered from a script is gated on metrics and data only, and says so.
    result = mlops.check("lin/1", data=frame, target="t", thresholds={"rmse": 1.0},
                         store=store)
    assert result.passed
    assert any("without a producing run" in note for note in result.notes)
    assert {g.name: g.verdict for g in result.gates}["lineage"] == "skipped"


def test_metric_gates_agree_with_mlflows_model_validation():
    mlflow = pytest.importorskip("mlflow")
    from mlflow.models import MetricThreshold as MlflowThreshold
    from mlflow.models.evaluation import EvaluationResult

    values = [-0.3, 0.0, 0.5, 0.8, 0.85, 0.9, 0.95]  # r2 can be negative
    limits = [None, 0.01, 0.05, 0.1]  # MLflow takes positive changes only
    checked = 0
    for candidate, baseline, threshold, absolute, relative, higher in itertools.product(
            values, values, [None, 0.85], limits, [None, 0.05, 0.1], [True, False]):
        if threshold is absolute is relative is None:
            continue
        ours = metric_gate("score", MetricThreshold(threshold, absolute, relative, higher),
                           candidate, baseline).verdict == PASS
        try:
            mlflow.validate_evaluation_results(
                {"score": MlflowThreshold(threshold=threshold, min_absolute_change=absolute,
                                          min_relative_change=relative,
                                          greater_is_better=higher)},
                EvaluationResult(metrics={"score": candidate}, artifacts={}),
                EvaluationResult(metrics={"score": baseline}, artifacts={}))
            theirs = True
        except mlflow.exceptions.MlflowException as exc:
            assert "failed" in str(exc)
            theirs = False
        assert ours == theirs, (candidate, baseline, threshold, absolute, relative, higher)
        checked += 1
    assert checked > 500


def test_the_pytest_fixture_fails_a_test_with_the_report(store, tmp_path):
    import os
    import subprocess
    import sys
    from importlib.metadata import entry_points

    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    assert "jupyter_mlops.pytest_plugin" in [e.value for e in entry_points(group="pytest11")]
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=200)})
    frame["t"] = 3 * frame.a + rng.normal(scale=0.1, size=200)
    mlops.register_model(LinearRegression().fit(frame[["a"]], frame.t), "lin", store=store)
    mlops.register_model(LinearRegression().fit(frame[["a"]], -frame.t), "lin", store=store)
    frame.to_csv(tmp_path / "holdout.csv", index=False)
    (tmp_path / "test_models.py").write_text(
        "def test_good(mlops_check):\n"
        "    mlops_check('lin/1', 'lin/2', data='holdout.csv', target='t')\n"
        "def test_bad(mlops_check):\n"
        "    mlops_check('lin/2', 'lin/1', data='holdout.csv', target='t')\n")
    env = dict(os.environ, JUPYTER_MLOPS_STORE=str(store.path),
               PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "jupyter_mlops.pytest_plugin",
                           "-p", "no:cacheprovider", "-q", "test_models.py"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    assert "1 failed, 1 passed" in done.stdout
    assert "Model check: `models:/lin/2` against `models:/lin/1`: FAILED" in done.stdout
    assert "| metric rmse | **FAIL** |" in done.stdout
