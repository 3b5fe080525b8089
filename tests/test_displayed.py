"""A metric a cell displays without binding it is logged under MLflow's post-training name."""

import json
import subprocess
import sys
import textwrap

import pytest

import jupyter_mlops as mlops
from support import run_cell

SETUP = """
from sklearn.datasets import load_diabetes
from sklearn.model_selection import train_test_split
from sklearn.linear_model import LinearRegression, Lasso
from sklearn.metrics import root_mean_squared_error
import sklearn.metrics as metrics
X, y = load_diabetes(return_X_y=True)
X_train, X_val, y_train, y_val = train_test_split(X, y, random_state=0)
"""

TRAIN = """
las = Lasso(alpha=0.5).fit(X_train, y_train)
y_pred = las.predict(X_val)
root_mean_squared_error(y_val, y_pred)
"""

SEVERAL = """
(metrics.r2_score(y_val, las.predict(X_val)), metrics.r2_score(y_train, las.predict(X_train)),
 las.score(X_val, y_val))
"""


def runs():
    return [mlops.get_run(i) for i in mlops.search_runs(order_by=["start_time"]).run_id]


def test_a_displayed_metric_is_named_after_the_function_and_the_data(shell):
    run_cell(shell, SETUP)
    result = run_cell(shell, "%%track -n rmse" + TRAIN)
    (run,) = runs()
    shown = {k: v for k, v in run.metrics.items() if not k.startswith("training_")}
    assert shown == {"root_mean_squared_error_X_val": result.result}
    assert mlops.search_runs()["metrics.root_mean_squared_error_X_val"][0] == result.result


def test_several_displayed_metrics_and_a_score_and_predictions_from_an_earlier_cell(shell):
    run_cell(shell, SETUP + TRAIN)  # untracked: the model and y_pred come from here
    result = run_cell(shell, "%%track -n several" + SEVERAL)
    shown = run_cell(shell, "%%track -n earlier\nroot_mean_squared_error(y_val, y_pred)")
    several, earlier = runs()
    assert several.metrics == {"r2_score_X_val": result.result[0],
                               "r2_score-2_X_train": result.result[1],
                               "Lasso_score_X_val": result.result[2]}
    assert earlier.metrics == {"root_mean_squared_error_X_val": shown.result}


def test_what_is_not_a_displayed_metric_is_left_alone(shell):
    run_cell(shell, SETUP + TRAIN)
    run_cell(shell, "%%track -n quiet\nroot_mean_squared_error(y_val, y_pred);")  # not shown
    run_cell(shell, "%%track -n other\nround(float(y_val.mean()), 2)")  # not a metric function
    run_cell(shell, "%%track -n unknown\nmetrics.mean_absolute_error(y_val, y_val * 0.9)")
    run_cell(shell, "import jupyter_mlops as mlops")
    run_cell(shell, "%%track -n explicit\nmlops.log_metric('root_mean_squared_error_X_val', 1.0)"
                    "\nroot_mean_squared_error(y_val, y_pred)")
    quiet, other, unknown, explicit = runs()
    assert quiet.metrics == {} and other.metrics == {}
    assert list(unknown.metrics) == ["mean_absolute_error"]  # no data name to tell
    assert explicit.metrics == {"root_mean_squared_error_X_val": 1.0}


MLFLOW_SCRIPT = """
import json, mlflow, mlflow.sklearn
mlflow.set_tracking_uri("sqlite:///" + {db!r})
mlflow.sklearn.autolog(log_models=False, log_datasets=False, log_input_examples=False)
{setup}
with mlflow.start_run() as run:
{train}
    shown = {several}
keys = mlflow.get_run(run.info.run_id).data.metrics
print(json.dumps(sorted(keys)))
"""


@pytest.mark.timeout(300)
def test_the_names_are_mlflows(shell, tmp_path):
    run_cell(shell, SETUP)
    run_cell(shell, "%%track -n one" + TRAIN)
    run_cell(shell, "%%track -n two" + SEVERAL)
    ours = sorted(key for run in runs() for key in run.metrics)
    script = MLFLOW_SCRIPT.format(db=str(tmp_path / "mlflow.db"), setup=SETUP,
                                  train=textwrap.indent(TRAIN.strip(), "    "),
                                  several=" ".join(SEVERAL.split()))
    env = {"MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_ENABLE_ASYNC_LOGGING": "false",
           "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    theirs = json.loads(done.stdout.strip().splitlines()[-1])
    assert ours == theirs


def test_displayed_metrics_of_boosting_models(shell):
    """A CatBoost model's ``score`` and a metric of a native Booster's predictions."""
    pytest.importorskip("catboost")
    xgb = pytest.importorskip("xgboost")
    run_cell(shell, SETUP + "from catboost import CatBoostRegressor\nimport xgboost as xgb\n"
                            "dval = xgb.DMatrix(X_val, label=y_val)")
    score = run_cell(shell, "%%track -n cat\ncat = CatBoostRegressor(iterations=5, "
                            "verbose=False).fit(X_train, y_train)\ncat.score(X_val, y_val)")
    rmse = run_cell(shell, "%%track -n bst\nbst = xgb.train({'max_depth': 2}, "
                           "xgb.DMatrix(X_train, label=y_train), num_boost_round=4)\n"
                           "root_mean_squared_error(y_val, bst.predict(dval))")
    cat, bst = runs()
    assert cat.metrics["CatBoostRegressor_score_X_val"] == score.result
    assert bst.metrics["root_mean_squared_error_dval"] == rmse.result
    assert xgb.__name__ == "xgboost"
