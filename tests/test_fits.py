"""Several fits in one tracked cell become child runs, one per fit, kept even if it fails."""

import pickle

import pytest

import jupyter_mlops as mlops
from jupyter_mlops.tracking.training_metrics import training_metrics
from support import run_cell

SETUP = """
from sklearn.datasets import load_diabetes
from sklearn.model_selection import train_test_split
from sklearn.linear_model import LinearRegression, Lasso, Ridge
from sklearn.ensemble import RandomForestRegressor
from sklearn.metrics import root_mean_squared_error
X, y = load_diabetes(return_X_y=True)
X_train, X_val, y_train, y_val = train_test_split(X, y, random_state=0)
"""

FOUR = """%%track -n four
for model in [LinearRegression(), Lasso(alpha=0.1), Ridge(alpha=2.0),
              RandomForestRegressor(n_estimators=5, random_state=0)]:
    model.fit(X_train, y_train)
    y_pred = model.predict(X_val)
    rmse = root_mean_squared_error(y_val, y_pred)
    scores.append(rmse)
"""


def runs_by_name():
    frame = mlops.search_runs(order_by=["start_time"])
    return {name: mlops.get_run(i) for name, i in zip(frame["name"], frame["run_id"])}


def children_of(parent):
    frame = mlops.search_runs(filter=f"parent_run_id = '{parent.run_id}'",
                              order_by=["start_time"])
    return [mlops.get_run(i) for i in frame.run_id]


def test_a_loop_fitting_four_regressors_keeps_all_four(shell, store):
    run_cell(shell, SETUP + "scores = []")
    result = run_cell(shell, FOUR)
    assert result.success
    parent = runs_by_name()["four"]
    children = children_of(parent)
    assert [c.name for c in children] == ["model: LinearRegression", "model: Lasso",
                                          "model: Ridge", "model: RandomForestRegressor"]
    scores = shell.user_ns["scores"]
    for child, score in zip(children, scores):
        assert child.status == "FINISHED"
        assert own_metrics(child) == {"rmse": score}  # its own iteration's number
        (artifact,) = [a for a in child.artifacts if a.kind == "model"]
        assert artifact.name == "model/model.pkl"
        restored = pickle.loads(store.artifacts.read_verified(artifact.sha256))
        assert root_mse(shell, restored) == pytest.approx(score)
        # MLflow's training metrics of that fit, and the data it was fitted on.
        assert training(child) == training_metrics(restored, shell.user_ns["X_train"],
                                                   shell.user_ns["y_train"])
        assert sorted((d.name, d.role) for d in child.inputs) == [("X_train", "train"),
                                                            ("y_train", "target")]
    assert children[1].params["alpha"] == 0.1 and children[2].params["alpha"] == 2.0
    assert children[3].params["n_estimators"] == 5
    # The parent keeps the curve over the four fits, and the model left in the namespace.
    assert [m.value for m in parent.metric_history("rmse")] == scores
    assert [a.name for a in parent.artifacts if a.kind == "model"] == ["model/model.pkl"]


def own_metrics(run):
    return {k: v for k, v in run.metrics.items() if not k.startswith("training_")}


def training(run):
    return {k: v for k, v in run.metrics.items() if k.startswith("training_")}


def root_mse(shell, model):
    ns = shell.user_ns
    return ns["root_mean_squared_error"](ns["y_val"], model.predict(ns["X_val"]))


def test_the_same_object_fitted_again_in_a_loop_keeps_each_state(shell, store):
    run_cell(shell, SETUP)
    run_cell(shell, """%%track -n refit
model = Ridge()
for alpha in (0.1, 10.0):
    model.set_params(alpha=alpha)
    model.fit(X_train, y_train)
    coef0 = float(model.coef_[0])
""")
    children = children_of(runs_by_name()["refit"])
    assert [c.params["alpha"] for c in children] == [0.1, 10.0]
    for child in children:
        (artifact,) = [a for a in child.artifacts if a.kind == "model"]
        restored = pickle.loads(store.artifacts.read_verified(artifact.sha256))
        assert restored.alpha == child.params["alpha"]
        assert float(restored.coef_[0]) == child.metrics["coef0"]
        # Read when that fit ended, not from the model as the loop left it.
        assert training(child) == training_metrics(restored, shell.user_ns["X_train"],
                                                   shell.user_ns["y_train"])


def test_fits_outside_loops_get_the_numbers_computed_from_them(shell):
    run_cell(shell, SETUP)
    run_cell(shell, """%%track -n two
lr = LinearRegression().fit(X_train, y_train)
lasso = Lasso(alpha=0.5)
lasso.fit(X_train, y_train)
lr_rmse = root_mean_squared_error(y_val, lr.predict(X_val))
pred = lasso.predict(X_val)
lasso_rmse = root_mean_squared_error(y_val, pred)
n_val = len(y_val)
""")
    parent = runs_by_name()["two"]
    lr, lasso = children_of(parent)
    assert (lr.name, lasso.name) == ("lr: LinearRegression", "lasso: Lasso")
    assert own_metrics(lr) == {"lr_rmse": parent.metrics["lr_rmse"]}
    assert own_metrics(lasso) == {"lasso_rmse": parent.metrics["lasso_rmse"]}
    ns = shell.user_ns
    assert training(lr) == training_metrics(ns["lr"], ns["X_train"], ns["y_train"])
    assert lasso.params["alpha"] == 0.5
    assert lr.end_time >= lr.start_time and lasso.start_time >= lr.end_time


def test_fits_that_finished_before_the_cell_failed_are_kept(shell):
    run_cell(shell, SETUP)
    result = run_cell(shell, """%%track -n broken
lr = LinearRegression().fit(X_train, y_train)
ridge = Ridge().fit(X_train, y_train)
forest = RandomForestRegressor(n_estimators=3, random_state=0).fit(X_train, y_train)
raise RuntimeError("after three fits")
never = Lasso().fit(X_train, y_train)
""")
    assert isinstance(result.error_in_exec, RuntimeError)
    parent = runs_by_name()["broken"]
    assert parent.status == "FAILED"
    children = children_of(parent)
    assert [c.name for c in children] == ["lr: LinearRegression", "ridge: Ridge",
                                          "forest: RandomForestRegressor"]
    assert {c.status for c in children} == {"FINISHED"}
    assert all(any(a.kind == "model" for a in c.artifacts) for c in children)


def test_a_failed_loop_keeps_the_fits_of_its_iterations(shell):
    run_cell(shell, SETUP)
    result = run_cell(shell, """%%track -n partial
for alpha in (0.1, 1.0, -1.0):
    model = Lasso(alpha=alpha).fit(X_train, y_train)
""")
    assert result.error_in_exec is not None  # a negative alpha is refused by scikit-learn
    children = children_of(runs_by_name()["partial"])
    assert [c.params["alpha"] for c in children] == [0.1, 1.0]


def test_one_fit_stays_the_runs_own(shell):
    run_cell(shell, SETUP)
    run_cell(shell, "%%track -n single\nlr = LinearRegression().fit(X_train, y_train)")
    parent = runs_by_name()["single"]
    assert children_of(parent) == []
    assert [a.name for a in parent.artifacts if a.kind == "model"] == ["model/lr.pkl"]


def test_a_fit_inside_a_function_is_the_functions_business(shell):
    run_cell(shell, SETUP)
    run_cell(shell, """%%track -n helper
def train(model):
    return model.fit(X_train, y_train)
a = train(LinearRegression())
b = train(Ridge())
""")
    assert children_of(runs_by_name()["helper"]) == []  # no fit statement in the cell itself


def test_partial_fit_steps_of_one_training_are_not_fits_of_their_own(shell):
    run_cell(shell, SETUP + "from sklearn.linear_model import SGDRegressor")
    run_cell(shell, """%%track -n epochs
model = SGDRegressor(random_state=0)
for epoch in range(5):
    model.partial_fit(X_train, y_train)
    score = model.score(X_val, y_val)
""")
    parent = runs_by_name()["epochs"]
    assert children_of(parent) == []
    assert len(parent.metric_history("score")) == 5


def test_estimator_params_are_get_params_read_once_per_class():
    """The names come from the class once; the values, nesting and order stay scikit-learn's."""
    from sklearn.ensemble import BaggingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    from jupyter_mlops.tracking.frameworks.sklearn import estimator_params

    models = [DecisionTreeClassifier(max_depth=3),
              make_pipeline(StandardScaler(), LogisticRegression(C=0.5)),
              BaggingClassifier(estimator=DecisionTreeClassifier(max_depth=2)),
              GridSearchCV(LogisticRegression(), {"C": [1.0]})]
    for model in models:
        ours, theirs = estimator_params(model), model.get_params(deep=True)
        assert list(ours) == list(theirs) and all(ours[k] is theirs[k] for k in ours)
    tree = models[0]
    tree.set_params(max_depth=7)
    assert estimator_params(tree)["max_depth"] == 7
