"""Evaluations in the store: strict JSON, links to the run, the model URI and the data, and
comparisons of two evaluations."""

import json
import math
import sqlite3
import subprocess
import sys
from contextlib import closing

import numpy as np
import pytest
from sklearn.datasets import make_classification, make_regression
from sklearn.linear_model import LogisticRegression, Ridge

import jupyter_mlops as mlops
from jupyter_mlops import NotFoundError, ValidationError
from jupyter_mlops.evaluation import compare_evaluations, evaluate, get_evaluation
from jupyter_mlops.tracking.datasets import fingerprint


@pytest.fixture
def binary():
    X, y = make_classification(300, 5, n_informative=3, random_state=0)
    return LogisticRegression(max_iter=500).fit(X, y), X, y


def _strict(text):
    def refuse(constant):
        raise AssertionError(f"non-strict JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


def test_stored_with_the_run_the_model_uri_and_the_data(store, binary):
    model, X, y = binary
    with mlops.start_run("eval run") as run:
        result = evaluate(model, X, y, name="holdout", model_uri="models:/churn/3",
                          importance=False)
    assert result.run_id == run.run_id
    row = store.query("SELECT run_id, model_uri, name, task, n_rows, dataset_fingerprint, "
                      "target_fingerprint, metrics, details FROM evaluations")
    assert len(row) == 1
    run_id, uri, name, task, n_rows, x_print, y_print, metrics, details = row[0]
    assert (run_id, uri, name, task, n_rows) == (run.run_id, "models:/churn/3", "holdout",
                                                 "binary", 300)
    assert x_print == fingerprint(X)["fingerprint"] and y_print == fingerprint(y)["fingerprint"]
    assert _strict(metrics) == result.metrics
    _strict(details)
    stored_run = mlops.get_run(run.run_id)
    assert {f"eval.holdout.{k}": v for k, v in result.metrics.items()} == stored_run.metrics
    inputs = {(d.name, d.role, d.fingerprint) for d in stored_run.inputs}
    assert inputs == {("eval.holdout.X", "evaluation", x_print),
                      ("eval.holdout.y", "evaluation", y_print)}


def test_without_a_run_nothing_is_logged_but_the_evaluation_is_kept(store, binary):
    model, X, y = binary
    result = evaluate(model, X, y, importance=False)
    assert result.run_id is None and mlops.active_run() is None
    assert store.query("SELECT count(*) FROM runs") == [(0,)]
    assert get_evaluation(result.evaluation_id).metrics == result.metrics


def test_metrics_logged_as_eval_metric_without_a_name(store, binary):
    model, X, y = binary
    with mlops.start_run() as run:
        result = evaluate(model, X, y, importance=False)
    assert mlops.get_run(run.run_id).metrics["eval.accuracy"] == result.metrics["accuracy"]


def test_round_trip_restores_nan_and_infinity(store, binary):
    model, X, y = binary
    keep = y == 1  # one class only: ROC AUC is NaN
    result = evaluate(model, X[keep], y[keep], importance=False)
    assert math.isnan(result.metrics["roc_auc"])
    again = get_evaluation(result.evaluation_id[:6])
    assert math.isnan(again.metrics["roc_auc"])
    assert {k: v for k, v in again.metrics.items() if k != "roc_auc"} == {
        k: v for k, v in result.metrics.items() if k != "roc_auc"}
    (raw,) = store.query("SELECT metrics FROM evaluations")
    assert _strict(raw[0])["roc_auc"] == {"$float": "nan"}  # the codec's one form


def test_full_details_round_trip(store, binary):
    model, X, y = binary
    result = evaluate(model, X, y, importance=True, n_repeats=1)
    again = get_evaluation(result.evaluation_id)
    assert result.details["curves"]["roc"][0]["thresholds"][0] == math.inf
    # NaN != NaN, so compare the JSON text (which spells NaN and Infinity out).
    assert json.dumps(again.details, sort_keys=True) == json.dumps(result.details, sort_keys=True)
    assert math.isnan(again.details["curves"]["pr"][0]["thresholds"][-1])
    assert (again.task, again.n_rows, again.dataset_fingerprint) == (
        result.task, result.n_rows, result.dataset_fingerprint)


# A row as evaluations held it before the one JSON codec: plain JSON, each non-finite
# number null and named by its JSON Pointer in details["nonfinite"].
OLD_METRICS = '{"accuracy":0.5,"roc_auc":null,"log_loss":null}'
OLD_DETAILS = ('{"labels":[0,1],"by_label":{"$bytes":"AP8="},'
               '"per_class":{"$set":[1],"a/b":{"~x":null}},'
               '"curves":{"roc":[{"thresholds":[null,0.5]}]},'
               '"nonfinite":{"metrics":{"/roc_auc":"nan","/log_loss":"inf"},'
               '"details":{"/per_class/a~1b/~0x":"-inf","/curves/roc/0/thresholds/0":"inf"}}}')


def test_a_row_written_before_the_codec_still_reads(store):
    with closing(sqlite3.connect(store.path / "mlops.db")) as raw, raw:
        raw.execute(
            "INSERT INTO evaluations (evaluation_id, run_id, model_uri, name, task, created, "
            "dataset_fingerprint, target_fingerprint, n_rows, metrics, details, figures) "
            "VALUES (?, NULL, NULL, 'old', 'binary', 1.0, NULL, NULL, 2, ?, ?, '{}')",
            ("ab" * 16, OLD_METRICS, OLD_DETAILS))
    again = get_evaluation("abab")
    assert again.metrics["accuracy"] == 0.5 and math.isnan(again.metrics["roc_auc"])
    assert again.metrics["log_loss"] == math.inf
    assert again.details == {"labels": [0, 1], "by_label": {"$bytes": "AP8="},
                             "per_class": {"$set": [1], "a/b": {"~x": -math.inf}},
                             "curves": {"roc": [{"thresholds": [math.inf, 0.5]}]}}


def test_figures_drawn_when_shown_are_kept_with_the_run(store, binary):
    model, X, y = binary
    with mlops.start_run() as run:
        result = evaluate(model, X, y, name="v1", importance=False)
    assert result.stored_figures == {} and result.figures.drawn == []
    png = result.figures.png("roc_curve")
    assert png.startswith(b"\x89PNG") and result.figures.drawn == ["roc_curve"]
    digest = result.stored_figures["roc_curve"]
    assert store.artifacts.read_verified(digest) == png
    artifacts = {a.name: a.sha256 for a in mlops.get_run(run.run_id).artifacts}
    assert artifacts == {"evaluation/v1/roc_curve.png": digest}
    again = get_evaluation(result.evaluation_id)
    assert again.stored_figures == {"roc_curve": digest}
    assert again.figures.png("roc_curve") == png and again.figures.drawn == []


def test_compare_marks_the_better_one_per_metric(store):
    X, y = make_classification(400, 6, n_informative=4, random_state=1)
    weak = LogisticRegression(C=1e-4, max_iter=500).fit(X[:, :1], y)
    strong = LogisticRegression(max_iter=500).fit(X, y)
    with mlops.start_run("old") as old_run:
        old = evaluate(weak, X[:, :1], y, model_uri="models:/m/1", importance=False)
    with mlops.start_run("new") as new_run:
        new = evaluate(strong, X, y, model_uri="models:/m/2", importance=False)
    comparison = compare_evaluations(old, new)
    table = comparison.table
    assert list(table.columns) == ["a", "b", "delta", "higher_is_better", "better"]
    for metric, row in table.iterrows():
        assert row["a"] == old.metrics[metric] and row["b"] == new.metrics[metric]
        assert row["delta"] == new.metrics[metric] - old.metrics[metric]
    assert table.loc["accuracy", "better"] == "b" and table.loc["accuracy", "delta"] > 0
    assert table.loc["log_loss", "higher_is_better"] == False  # noqa: E712
    assert table.loc["log_loss", "better"] == "b" and table.loc["log_loss", "delta"] < 0
    assert table.loc["brier_score", "better"] == "b"
    # Evaluated on different columns of X: the comparison says so.
    assert any("different data" in note for note in comparison.notes)
    by_run = compare_evaluations(old_run.run_id[:8], new_run.run_id)
    by_uri = compare_evaluations("models:/m/1", "models:/m/2")
    by_id = compare_evaluations(old.evaluation_id, new.evaluation_id[:10])
    for other in (by_run, by_uri, by_id):
        assert (other.a.evaluation_id, other.b.evaluation_id) == (old.evaluation_id,
                                                                  new.evaluation_id)
        assert other.table.equals(table)


def test_compare_regression_directions(store):
    X, y = make_regression(200, 4, noise=20, random_state=2)
    a = evaluate(Ridge(alpha=1e4).fit(X, y), X, y, importance=False)
    b = evaluate(Ridge(alpha=1.0).fit(X, y), X, y, importance=False)
    table = compare_evaluations(a, b).table
    assert (table["better"] == "b").all(), table
    assert table.loc["rmse", "delta"] < 0 and table.loc["r2", "delta"] > 0
    assert compare_evaluations(a, a).table["better"].eq("tie").all()


def test_compare_refuses_what_it_cannot_find(store, binary):
    model, X, y = binary
    evaluate(model, X, y, importance=False)
    with pytest.raises(NotFoundError, match="models:/nothing"):
        compare_evaluations("models:/nothing", "models:/nothing")
    with pytest.raises(ValidationError):
        compare_evaluations(42, "x")


def test_bad_name_and_uri_are_refused_before_anything_runs(store, binary):
    model, X, y = binary
    with pytest.raises(ValidationError, match="Evaluation name"):
        evaluate(model, X, y, name="")
    with pytest.raises(ValidationError, match="model_uri"):
        evaluate(model, X, y, model_uri="bad\x00uri")
    assert store.query("SELECT count(*) FROM evaluations") == [(0,)]


def test_importing_the_evaluation_package_stays_light():
    code = ("import sys, jupyter_mlops, jupyter_mlops.evaluation; "
            "print(sorted(m for m in ('numpy', 'pandas', 'sklearn', 'matplotlib', "
            "'ipywidgets', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


def test_evaluations_of_two_rows_and_int_sizes(store):
    X = np.array([[0.0], [1.0]])
    y = np.array([0, 1])
    result = evaluate(LogisticRegression().fit(X, y), X, y)
    assert result.metrics["accuracy"] == 1.0
    assert result.details["importance"]["n_rows"] == 2
