"""Monitoring: drift and metrics on new data, alerts, exit codes, retrain and promote."""

import datetime
import json
import math
import re
import sqlite3
from contextlib import closing

import nbformat
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import jupyter_mlops as mlops
from jupyter_mlops.cli import main
from jupyter_mlops.monitoring.monitor import list_alerts, monitor, monitor_steps
from jupyter_mlops.monitoring.trail import Trail
from jupyter_mlops.serving import serve
from test_serving import Client

pytestmark = pytest.mark.timeout(300)
FEATURES = ["x1", "x2", "x3"]


def sample(n, seed, shift=0.0, concept="x1"):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 3)), columns=FEATURES)
    X["x1"] += shift
    X["x2"] += shift
    y = (X[concept] - (shift if concept == "x1" else 0) > 0).astype(int)
    return X, y


@pytest.fixture
def registered(store):
    X, y = sample(2000, seed=0)
    model = LogisticRegression().fit(X, y)
    mlops.register_model(model, "clf", alias="champion", reference=X)
    return model


def write_batch(path, X, y):
    X.assign(label=y).to_csv(path, index=False)
    return str(path)


def test_monitor_exits_1_on_a_shifted_batch_and_0_on_an_unshifted_one(registered, tmp_path,
                                                                     capsys):
    same = write_batch(tmp_path / "same.csv", *sample(800, seed=1))
    shifted = write_batch(tmp_path / "shifted.csv", *sample(800, seed=2, shift=1.5))
    assert main(["monitor", "clf@champion", "--batch", same, "--labels", "label"]) == 0
    out = capsys.readouterr().out
    assert "no dataset drift" in out and "No alert." in out and "accuracy=" in out
    assert main(["monitor", "clf@champion", "--batch", shifted, "--labels", "label"]) == 1
    out = capsys.readouterr().out
    assert "ALERT: 1 alert(s) recorded for models:/clf/1." in out
    assert "Dataset drift on clf/1: 2 of 3 columns drifted (x1, x2)." in out

    alerts = list_alerts("clf")
    assert len(alerts) == 1 and alerts.loc[0, "kind"] == "drift"
    assert main(["alerts", "clf@champion", "--since", "1h"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("1 alert(s)\n") and "clf/1    drift   Dataset drift on clf/1" in out
    store = mlops.get_store()
    monitors = store.query("SELECT source, n_rows, dataset_drift, alert, drift_report_id, "
                           "evaluation_id FROM monitors ORDER BY created")
    assert [m[:4] for m in monitors] == [("batch same.csv", 800, 0, 0),
                                         ("batch shifted.csv", 800, 1, 1)]
    assert all(m[4] and m[5] for m in monitors)
    assert store.query("SELECT model_uri FROM drift_reports WHERE report_id = ?",
                       (monitors[1][4],)) == [("models:/clf/1",)]
    steps = monitor_steps(store.query("SELECT monitor_id FROM monitors ORDER BY created DESC "
                                      "LIMIT 1")[0][0])
    assert steps["step"].tolist() == ["drift", "metrics", "alert"]


def test_a_metric_under_its_threshold_is_an_alert(registered, tmp_path):
    X, y = sample(600, seed=3)
    result = monitor("clf@champion", batch=X.assign(label=1 - y), labels="label",
                     thresholds=["accuracy=0.8", "log_loss=100"])
    assert result.alert and [a.kind for a in result.alerts] == ["metric"]
    assert re.fullmatch(r"accuracy of clf/1 is 0(\.\d+)?, worse than the threshold 0\.8\.",
                        result.alerts[0].message)
    assert result.metrics["accuracy"] < 0.1 and result.metrics["log_loss"] < 100


def test_monitor_reads_the_logged_traffic(registered, tmp_path, capsys):
    with serve("clf@champion", port=0, watch_interval=None) as running:
        client = Client(running.url)
        X, _ = sample(400, seed=4, shift=2.0)
        for start in range(0, 400, 50):
            chunk = X.iloc[start:start + 50]
            assert client.post({"dataframe_split": chunk.to_dict(orient="split")})[0] == 200
        running.flush()
    assert main(["monitor", "clf@champion", "--since", "1h"]) == 1
    out = capsys.readouterr().out
    assert "on 400 row(s) of traffic (the last 1h)" in out and "Dataset drift" in out
    assert main(["monitor", "clf@champion", "--since", "1h", "--labels", "y"]) == 2
    assert "--labels names the label column of --batch FILE" in capsys.readouterr().err
    mlops.register_model(LogisticRegression().fit(X, X["x3"] > 0), "other", reference=X)
    assert main(["monitor", "other", "--since", "1h"]) == 2
    assert "No predictions of other/1 were logged in the last 1h" in capsys.readouterr().err


def test_alerts_magic(registered, shell, tmp_path):
    X, y = sample(500, seed=5, shift=2.0)
    monitor("clf@champion", batch=X)
    listing = shell.run_line_magic("mlops", "alerts clf@champion")
    assert list(listing["kind"]) == ["drift"] and listing.loc[0, "version"] == 1
    assert "Dataset drift on clf/1" in listing._repr_html_()
    assert len(shell.run_line_magic("mlops", "alerts --since 1h")) == 1
    assert len(shell.run_line_magic("mlops", "alerts other")) == 0


def test_monitor_arguments_are_checked(registered, tmp_path):
    X, y = sample(100, seed=6)
    with pytest.raises(mlops.ValidationError, match="unknown metric 'acc'"):
        monitor("clf@champion", batch=X, thresholds=["acc=0.9"])
    with pytest.raises(mlops.ValidationError, match="monitor the model by its alias"):
        monitor("clf/1", batch=X, retrain=__file__, promote="accuracy")
    with pytest.raises(mlops.ValidationError, match="give --retrain NOTEBOOK too"):
        monitor("clf@champion", batch=X, promote="accuracy")
    with pytest.raises(mlops.ValidationError, match="no label column 'label'"):
        monitor("clf@champion", batch=X, labels="label")
    with pytest.raises(mlops.ValidationError, match="does not fit clf/1: Missing column 'x3'"):
        monitor("clf@champion", batch=X.drop(columns="x3"))
    mlops.register_model(LogisticRegression().fit(X, y), "bare")
    with pytest.raises(mlops.ValidationError, match="has no reference sample"):
        monitor("bare", batch=X)


RETRAIN = """\
import os
import pandas as pd
from sklearn.linear_model import LogisticRegression
import jupyter_mlops as mlops

batch = pd.read_csv(os.environ["JUPYTER_MLOPS_MONITOR_BATCH"])
label = os.environ["JUPYTER_MLOPS_MONITOR_LABELS"]
X, y = batch.drop(columns=[label]), batch[label]
target = {target}
model = LogisticRegression().fit(X, target)
mlops.register_model(model, "clf", reference=X)
"""


def notebook(path, target):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(RETRAIN.format(target=target))]
    nbformat.write(nb, path)
    return str(path)


@pytest.mark.slow
@pytest.mark.kernel
def test_retrain_promotes_only_a_better_version(registered, tmp_path, capsys):
    # The concept moved: the label now follows x2. Retraining on the new batch learns it;
    # a notebook that learns the opposite produces a worse version, which is not promoted.
    batch = write_batch(tmp_path / "new.csv", *sample(600, seed=7, shift=1.0, concept="x2"))
    worse = notebook(tmp_path / "worse.ipynb", "1 - y")
    better = notebook(tmp_path / "better.ipynb", "y")

    assert main(["monitor", "clf@champion", "--batch", batch, "--labels", "label",
                 "--retrain", worse, "--promote", "accuracy"]) == 1
    out = capsys.readouterr().out
    assert "Retraining produced clf/2" in out and "Kept clf@champion on 1" in out
    assert mlops.get_model_version("clf@champion").version == 1

    assert main(["monitor", "clf@champion", "--batch", batch, "--labels", "label",
                 "--retrain", better, "--promote", "accuracy"]) == 1
    out = capsys.readouterr().out
    assert "Moved clf@champion from 1 to 3" in out
    assert mlops.get_model_version("clf@champion").version == 3

    store = mlops.get_store()
    retrains = store.query("SELECT notebook, status, old_version, new_version, promoted, "
                           "old_value < new_value FROM retrains ORDER BY started")
    assert retrains == [("worse.ipynb", "FINISHED", 1, 2, 0, 0),
                        ("better.ipynb", "FINISHED", 1, 3, 1, 1)]
    monitor_id = store.query("SELECT monitor_id FROM monitors ORDER BY created DESC LIMIT 1")
    steps = monitor_steps(monitor_id[0][0])
    assert steps["step"].tolist() == ["drift", "metrics", "alert", "retrain", "register",
                                      "promote"]
    assert json.dumps(steps["details"].tolist(), allow_nan=False)
    # No alert, no retraining.
    same = write_batch(tmp_path / "same.csv", *sample(600, seed=8, shift=1.0, concept="x2"))
    result = monitor("clf@champion", batch=same, labels="label", retrain=better,
                     promote="accuracy")
    assert not result.alert and result.retrain is None
    assert result.steps[-1]["message"] == "No alert: the model was not retrained."


@pytest.mark.kernel
def test_a_failing_notebook_is_recorded(registered, tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("raise RuntimeError('no data today')")]
    nbformat.write(nb, tmp_path / "broken.ipynb")
    X, y = sample(300, seed=9, shift=2.0)
    result = monitor("clf@champion", batch=X, retrain=str(tmp_path / "broken.ipynb"))
    assert result.alert and result.retrain.status == "FAILED"
    assert "RuntimeError: no data today" in result.retrain.message
    assert result.steps[-1]["status"] == "failed"
    assert mlops.get_store().query("SELECT status FROM retrains") == [("FAILED",)]


def _a_monitor(store) -> str:
    monitor_id = "ef" * 16
    with store.write() as conn:
        conn.execute("INSERT INTO monitors (monitor_id, created, name, version, model_uri, "
                     "source, n_rows) VALUES (?, 1.0, 'clf', 1, 'models:/clf/1', 'batch', 3)",
                     (monitor_id,))
    return monitor_id


def test_trail_details_keep_nan_and_odd_values_as_strict_json(store):
    monitor_id = _a_monitor(store)
    trail = Trail(store, monitor_id, [])
    trail("metrics", "ok", "scored", {"value": math.nan, "worst": -math.inf,
                                      "when": pd.Timestamp("2024-05-01 12:00"),
                                      "columns": ("x1", "x2"), "rows": np.int64(3)})
    (text,) = store.query("SELECT details FROM monitor_steps")[0]
    json.loads(text, parse_constant=lambda name: pytest.fail(f"bare {name}"))
    details = monitor_steps(monitor_id).loc[0, "details"]
    assert math.isnan(details["value"]) and details["worst"] == -math.inf
    assert details["when"] == datetime.datetime(2024, 5, 1, 12)
    assert details["columns"] == ["x1", "x2"] and details["rows"] == 3


def test_trail_lines_written_before_the_codec_still_read(store):
    # Before the codec a trail line held NaN as null and other odd values as str().
    monitor_id = _a_monitor(store)
    old = '{"value":null,"when":"2024-05-01 12:00:00","sampled":{"$set":3}}'
    with closing(sqlite3.connect(store.path / "mlops.db")) as raw, raw:
        raw.execute("INSERT INTO monitor_steps (monitor_id, seq, created, step, status, "
                    "message, details) VALUES (?, 1, 1.0, 'metrics', 'ok', 'scored', ?)",
                    (monitor_id, old))
    steps = monitor_steps(monitor_id)
    assert steps.loc[0, "details"] == {"value": None, "when": "2024-05-01 12:00:00",
                                       "sampled": {"$set": 3}}
