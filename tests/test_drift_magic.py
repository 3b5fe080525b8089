"""``%mlops drift REF CUR``: names looked up by dictionary, options parsed, report returned."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError

from jupyter_mlops.drift import DriftReport

DATA = """
import numpy as np, pandas as pd
rng = np.random.default_rng(0)
train = pd.DataFrame({"a": rng.normal(size=800), "b": rng.choice(list("xyz"), 800),
                      "y": rng.integers(0, 2, 800)})
new = train.copy()
new["a"] = new["a"] + 1
"""


def test_drift_subcommand_returns_the_report(shell, store):
    shell.run_cell(DATA)
    report = shell.run_line_magic("mlops", "drift train new")
    assert isinstance(report, DriftReport)
    assert report.drifted_columns == ["a"] and report.n_columns == 3
    assert store.query("SELECT count(*) FROM drift_reports")[0][0] == 1


def test_drift_options(shell, store):
    shell.run_cell(DATA)
    report = shell.run_line_magic(
        "mlops", "drift train new --columns a,b --stattest a=psi --stattest b=chisquare "
                 "--threshold a=2.5 --drift-share 0.9 --model models:/m/2")
    frame = report.columns.set_index("column")
    assert list(frame.index) == ["a", "b"]
    assert frame.loc["a", "test"] == "psi" and frame.loc["a", "threshold"] == 2.5
    assert frame.loc["b", "test"] == "chisquare"
    assert report.model_uri == "models:/m/2" and report.drift_share == 0.9
    report = shell.run_line_magic("mlops", "drift train new -c a b -s ks -t 0.01 --target y")
    frame = report.columns.set_index("column")
    assert frame.loc["a", "test"] == "ks" and frame.loc["a", "threshold"] == 0.01
    assert frame.loc["y", "role"] == "target"


def test_estimator_variable_adds_prediction_drift(shell, store):
    shell.run_cell(DATA + "from sklearn.linear_model import LogisticRegression\n"
                   "clf = LogisticRegression().fit(train[['a']], train['y'])")
    report = shell.run_line_magic("mlops", "drift train new --estimator clf --model models:/c/1")
    assert report.column("prediction")["role"] == "prediction"
    assert report.model_uri == "models:/c/1"


@pytest.mark.parametrize("line,message", [
    ("drift train missing", "No variable 'missing' in the notebook (CUR)"),
    ("drift train new.a", "CUR must be the name of a variable; got 'new.a'"),
    ("drift train new --stattest ks --stattest a=psi", "one value for every column, or"),
    ("drift train new --threshold high", "--threshold takes a number; got 'high'"),
    ("drift train new --columns nope", "not in the reference set: ['nope']"),
    ("drift train", "the following arguments are required: CUR"),
])
def test_mistakes_are_one_line_usage_errors(shell, store, line, message):
    shell.run_cell(DATA)
    with pytest.raises(UsageError) as caught:
        shell.run_line_magic("mlops", line)
    assert message in str(caught.value)


def test_names_are_never_evaluated(shell, store):
    shell.run_cell(DATA + "calls = []")
    with pytest.raises(UsageError):
        shell.run_line_magic("mlops", "drift train calls.append(1)")
    assert shell.user_ns["calls"] == []


@pytest.mark.kernel
@pytest.mark.timeout(180)
def test_in_a_kernel_the_report_is_a_widget_with_an_html_fallback(kernel):
    reply, _ = kernel.execute("%load_ext jupyter_mlops")
    assert reply["status"] == "ok"
    reply, _ = kernel.execute(DATA)
    assert reply["status"] == "ok"
    reply, outputs = kernel.execute("%mlops drift train new")
    assert reply["status"] == "ok", reply
    data = [m for m in outputs if m["msg_type"] == "execute_result"][0]["content"]["data"]
    assert "application/vnd.jupyter.widget-view+json" in data
    assert "1 of 3 columns drifted" in data["text/html"]
    assert data["text/plain"].startswith("<DriftReport ")
