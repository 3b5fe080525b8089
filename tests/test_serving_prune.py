"""Pruning the predictions log: old requests and their labels go, nothing newer does."""

import subprocess
import sys
import time

import pytest

import jupyter_mlops as mlops
from jupyter_mlops.serving import predictions
from jupyter_mlops.serving.predictions import PredictionLog, PredictionRecord

DAY = 86400


def record(request_id: str, age_days: float, name: str = "clf", role: str = "champion"):
    return PredictionRecord(request_id, time.time() - age_days * DAY, name, 1, role, True,
                            "application/json", b'{"inputs": [[1, 2]]}', "[0]", 1, 1.0)


@pytest.fixture
def logged(store):
    log = PredictionLog(store)
    for i in range(30):
        log.append(record(f"old-{i}", 40))
    for i in range(5):
        log.append(record(f"new-{i}", 1))
    log.append(record("other-old", 40, name="reg"))
    # a challenger scored this old request again just now: the request stays labelled
    log.append(record("old-0", 0, role="challenger"))
    assert log.flush()
    log.close()
    for request_id in ("old-0", "old-1", "new-0", "other-old"):
        mlops.log_labels(request_id, [1])
    return store


def table(store, sql):
    return {row[0] for row in store.query(sql)}


def test_old_requests_and_their_labels_go(logged, monkeypatch):
    monkeypatch.setattr(predictions, "PRUNE_BATCH", 7)  # several transactions
    assert mlops.prune_predictions("30d", name="clf", store=logged) == 30
    assert table(logged, "SELECT request_id FROM predictions") == {
        "old-0", "new-0", "new-1", "new-2", "new-3", "new-4", "other-old"}
    assert table(logged, "SELECT request_id FROM prediction_labels") == {
        "old-0", "new-0", "other-old"}
    assert mlops.prune_predictions("30d", store=logged) == 1  # every model: "reg" too
    assert mlops.prune_predictions("30d", store=logged) == 0


@pytest.mark.parametrize("window", ["soon", "0", -5, "7 days"])
def test_bad_windows_are_refused_before_anything_goes(logged, window):
    before = logged.query("SELECT count(*) FROM predictions")
    with pytest.raises(mlops.ValidationError, match="time window"):
        mlops.prune_predictions(window, store=logged)
    assert logged.query("SELECT count(*) FROM predictions") == before


def test_the_cli_prunes(logged):
    done = subprocess.run(
        [sys.executable, "-m", "jupyter_mlops.cli", "prune", "--older-than", "30d", "--model",
         "clf", "--store", str(logged.path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "Deleted 30 logged request(s) older than 30d of clf." in done.stdout
