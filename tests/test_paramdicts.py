"""Hyperparameters kept in a dict and handed to a fit or train call are params."""

import jupyter_mlops as mlops
from support import run_cell

SETUP = """
from sklearn.datasets import load_diabetes
from sklearn.ensemble import GradientBoostingRegressor
X, y = load_diabetes(return_X_y=True)
"""


def only_run():
    (run_id,) = mlops.search_runs().run_id
    return mlops.get_run(run_id)


def test_the_entries_of_a_dict_handed_to_fit_are_params(shell):
    run_cell(shell, SETUP + "import numpy as np\nweights = np.ones(len(y))")
    result = run_cell(shell, """%%track
params = {"n_estimators": 20, "learning_rate": 0.2, "max_depth": 2}
fit_params = {"sample_weight": weights}
model = GradientBoostingRegressor(**params).fit(X, y, **fit_params)
""")
    assert result.success
    run = only_run()
    assert {k: run.params[k] for k in ("n_estimators", "learning_rate", "max_depth")} == {
        "n_estimators": 20, "learning_rate": 0.2, "max_depth": 2}
    assert "sample_weight" not in run.params  # an array is data, not a hyperparameter
    assert run.params["model.max_depth"] == 2  # the estimator's own, as before


def test_a_train_call_a_dict_written_in_the_call_and_best_params(shell):
    run_cell(shell, SETUP + """
class Trainer:
    def train(self, params, data, num_boost_round=10):
        return dict(params, rounds=num_boost_round)
xgb = Trainer()
""")
    run_cell(shell, "base = {'objective': 'reg:squarederror', 'seed': 7}")  # an earlier cell
    result = run_cell(shell, """%%track
best_params = {"eta": 0.05, "subsample": 0.8}
booster = xgb.train(base, X, num_boost_round=5)
other = xgb.train({"max_leaves": 31, "objective": "other"}, X)
""")
    assert result.success
    params = only_run().params
    assert params["objective"] == "reg:squarederror"  # the first dict wins its keys
    assert params["seed"] == 7 and params["max_leaves"] == 31
    assert params["eta"] == 0.05 and params["subsample"] == 0.8


def test_explicit_params_win_and_a_dict_not_handed_over_is_not_params(shell):
    run_cell(shell, "import jupyter_mlops as mlops\n" + SETUP)
    run_cell(shell, """%%track
mlops.log_param("max_depth", 99)
params = {"max_depth": 2}
lookup = {"a": 1}
model = GradientBoostingRegressor(n_estimators=5).fit(X, y, **{})
model.set_params(**params)
""")
    params = only_run().params
    assert params["max_depth"] == 99
    assert "a" not in params
