"""compare_runs over many runs: a sweep, a filter, a DataFrame or a list, charted (parallel
coordinates, a param against the metric with an importance ranking, overlaid histories, a
row-per-run table); the widget redraws on its controls and follows running runs."""

from __future__ import annotations

import re
import time

import pytest

import jupyter_mlops as mlops
from jupyter_mlops.dashboards.compare import compare_html, compare_widget


def _objective(C, kernel):
    """Accuracy climbs with C (rbf a little higher); the loss history falls over 3 steps."""
    for step in range(3):
        mlops.log_metric("loss", 1.0 / (C + 1) + (2 - step) * 0.1, step=step)
    return {"accuracy": 0.5 + C / 20 + (0.05 if kernel == "rbf" else 0.0)}


@pytest.fixture
def swept(store):
    return mlops.sweep(_objective, C=[0.5, 1.0, 2.0, 4.0], kernel=["rbf", "linear"],
                       maximize="accuracy", name="svc")


def test_a_sweep_is_charted_trial_by_trial(swept):
    comparison = mlops.compare_runs(swept)
    assert len(comparison.trials) == 8  # the parent stands for them, left out
    assert (comparison.metric, comparison.direction) == ("accuracy", "maximize")
    assert list(comparison.importance()) == ["C", "kernel"]
    assert comparison.param_keys() == ["C", "kernel"]
    best = comparison.best()
    assert best["params"] == {"C": 4.0, "kernel": "rbf"} and best["run_id"] == swept.best_run_id
    frame = comparison.frame()
    assert list(frame.columns) == ["run_id", "name", "status", "parent_run_id", "params.C",
                                   "params.kernel", "metrics.accuracy", "metrics.loss"]
    # latest, min and max of a history: the loss fell from its first step to its last.
    first = comparison.trials[0]
    latest, low, high = (comparison.value(first, "loss", s) for s in ("latest", "min", "max"))
    assert latest == low == pytest.approx(1 / 1.5) and high == pytest.approx(1 / 1.5 + 0.2)
    assert list(comparison.frame("max")["metrics.loss"]) == pytest.approx(
        [v + 0.2 for v in comparison.frame()["metrics.loss"]])

    html = comparison._repr_html_()
    parallel = re.search(r'<svg class="jp-mlops-compare-parallel".*?</svg>', html).group(0)
    assert parallel.count("<polyline") == 8 and 'stroke="#d62728"' in parallel  # the best
    assert html.count("<circle") >= 8  # the scatter's dots
    assert "jp-mlops-compare-histories" in html and "what moved accuracy" in html
    # A few runs keep the table of one column a run, rows that differ tinted.
    assert "<h4>Params</h4>" in html and "rgba(255,200,0,.25)" in html


def test_many_runs_get_a_row_each_and_the_widget_redraws(swept):
    more = mlops.sweep(_objective, C=[0.25, 8.0, 16.0], kernel=["linear", "poly"],
                       maximize="accuracy", name="svc-more")
    comparison = mlops.compare_runs([swept, more])
    assert len(comparison.trials) == 14
    html = compare_html(comparison)
    assert "<h4>Params</h4>" not in html  # past MANY runs: one row a run
    rows = re.findall(r"<tr>(.*?)</tr>", html.split("<tbody>")[1])
    assert len(rows) == 14 and "svc-more[" in rows[0]  # the best (C=16, poly) first

    box = compare_widget(comparison)
    controls = box.controls
    assert controls["metric"].options == ("accuracy", "loss")
    assert controls["param"].value == "C"
    controls["metric"].value = "loss"
    assert "ranked by <code>loss</code>" in box.board.value
    controls["summary"].value = "max"
    assert "loss (max)" in box.board.value
    assert box.follower is None  # nothing runs: nothing to follow


def test_filters_dataframes_and_bad_input(swept):
    by_filter = mlops.compare_runs("metrics.accuracy > 0.62")
    assert sorted((r["params"]["C"], r["params"]["kernel"]) for r in by_filter.trials) == [
        (2.0, "rbf"), (4.0, "linear"), (4.0, "rbf")]
    frame = mlops.search_runs(filter="params.kernel = 'rbf'")
    assert len(mlops.compare_runs(frame).trials) == 4
    with pytest.raises(mlops.ValidationError, match="summarised by one of latest, min, max"):
        mlops.compare_runs(swept).frame("median")
    with pytest.raises(mlops.ValidationError, match="needs runs"):
        mlops.compare_runs()
    with pytest.raises(mlops.ValidationError, match="has none"):
        mlops.compare_runs(frame[["name"]])


def test_the_widget_follows_a_running_sweep(store):
    parent = mlops.start_run("live-parent")
    for i in range(3):
        with mlops.start_run(f"t{i}", nested=True):
            mlops.log_params({"x": i})
            mlops.log_metrics({"score": float(i)})
    comparison = mlops.compare_runs(parent.run_id)
    box = compare_widget(comparison, interval=0.05)
    assert box.follower is not None and "<b>3 runs</b>" in box.board.value
    with mlops.start_run("t3", nested=True):
        mlops.log_params({"x": 3})
        mlops.log_metrics({"score": 3.0})
    deadline = time.monotonic() + 10
    while "<b>4 runs</b>" not in box.board.value and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "<b>4 runs</b>" in box.board.value
    mlops.end_run()
    box.follower.thread.join(10)
    assert not box.follower.thread.is_alive()  # the parent ended: it stopped following
    assert box.live_note.value == ""
