"""``evaluate``: every metric equals scikit-learn's own function, on binary, multiclass and
regression data, from numpy and pandas inputs, with string labels and absent classes."""

import math

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as sk
from sklearn.calibration import calibration_curve
from sklearn.datasets import make_classification, make_regression
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.svm import LinearSVC

from jupyter_mlops import ValidationError
from jupyter_mlops.evaluation import evaluate
from jupyter_mlops.evaluation.directions import CLASSIFICATION_METRICS, REGRESSION_METRICS

TOL = dict(rel=1e-12, abs=1e-12)


def approx(value):
    return pytest.approx(value, **TOL)


def classifier_data(n_classes, n=400, labels=None, frame=False, seed=0):
    X, y = make_classification(n, 6, n_informative=4, n_redundant=0, n_classes=n_classes,
                               flip_y=0.1, random_state=seed)
    if labels is not None:
        y = np.asarray(labels, dtype=object)[y]
    if frame:
        X = pd.DataFrame(X, columns=[f"feature {i}" for i in range(X.shape[1])])
        y = pd.Series(y, name="target")
    model = LogisticRegression(max_iter=1000).fit(X, y)
    return model, X, y


def sklearn_classification(model, X, y, one_class=False):
    """Every metric as scikit-learn computes it, from the same model and data."""
    pred = model.predict(X)
    proba = model.predict_proba(X)
    classes = model.classes_
    expected = {
        "accuracy": sk.accuracy_score(y, pred),
        "balanced_accuracy": sk.balanced_accuracy_score(y, pred),
        "log_loss": sk.log_loss(y, proba, labels=classes),
    }
    for average in ("macro", "weighted"):
        expected[f"precision_{average}"] = sk.precision_score(y, pred, average=average)
        expected[f"recall_{average}"] = sk.recall_score(y, pred, average=average)
        expected[f"f1_{average}"] = sk.f1_score(y, pred, average=average)
    if len(classes) == 2:
        positive = classes[1]
        expected["roc_auc"] = (sklearn_or_nan(sk.roc_auc_score, y, proba[:, 1]) if one_class
                               else sk.roc_auc_score(y, proba[:, 1]))
        expected["average_precision"] = sk.average_precision_score(y, proba[:, 1],
                                                                   pos_label=positive)
        expected["brier_score"] = sk.brier_score_loss(y, proba[:, 1], pos_label=positive)
    else:
        expected["roc_auc"] = sk.roc_auc_score(y, proba, multi_class="ovr", average="macro",
                                               labels=classes)
    return expected


def assert_metrics(result, expected):
    assert set(result.metrics) == set(expected)
    for key, value in expected.items():
        if math.isnan(value):
            assert math.isnan(result.metrics[key]), key
        else:
            assert result.metrics[key] == approx(value), key


def sklearn_or_nan(function, *args, **kwargs):
    """scikit-learn's value for an undefined metric: NaN (older versions raise instead)."""
    try:
        return function(*args, **kwargs)
    except ValueError:
        return math.nan


def assert_per_class(result, model, X, y):
    pred = model.predict(X)
    labels = result.labels
    precision, recall, f1, support = sk.precision_recall_fscore_support(
        y, pred, labels=labels, zero_division=0)
    table = result.per_class
    assert list(table.index) == labels
    np.testing.assert_allclose(table["precision"], precision, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(table["recall"], recall, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(table["f1"], f1, rtol=1e-12, atol=1e-12)
    assert list(table["support"]) == list(support)
    matrix = sk.confusion_matrix(y, pred, labels=labels)
    assert result.confusion_matrix.to_numpy().tolist() == matrix.tolist()


@pytest.mark.parametrize("frame", [False, True], ids=["numpy", "pandas"])
def test_binary_metrics_equal_sklearn(store, frame):
    model, X, y = classifier_data(2, frame=frame)
    result = evaluate(model, X, y, importance=False)
    assert result.task == "binary"
    assert set(result.metrics) == set(CLASSIFICATION_METRICS)
    assert_metrics(result, sklearn_classification(model, X, y))
    assert_per_class(result, model, X, y)
    assert result.skipped == {}


def test_binary_string_labels_and_curves_equal_sklearn(store):
    model, X, y = classifier_data(2, labels=["no", "yes"], frame=True)
    result = evaluate(model, X, y, importance=False)
    assert_metrics(result, sklearn_classification(model, X, y))
    assert result.details["positive_label"] == "yes"
    score = model.predict_proba(X)[:, 1]
    (roc,) = result.details["curves"]["roc"]
    fpr, tpr, thresholds = sk.roc_curve(y, score, pos_label="yes")
    assert roc["label"] == "yes"
    np.testing.assert_array_equal(roc["fpr"], fpr)
    np.testing.assert_array_equal(roc["tpr"], tpr)
    assert roc["thresholds"][0] == math.inf and roc["thresholds"][1:] == thresholds[1:].tolist()
    (pr,) = result.details["curves"]["pr"]
    precision, recall, _ = sk.precision_recall_curve(y, score, pos_label="yes")
    np.testing.assert_array_equal(pr["precision"], precision)
    np.testing.assert_array_equal(pr["recall"], recall)
    (calibration,) = result.details["curves"]["calibration"]
    prob_true, prob_pred = calibration_curve(y, score, n_bins=10, pos_label="yes")
    np.testing.assert_allclose(calibration["prob_true"], prob_true, rtol=1e-12)
    np.testing.assert_allclose(calibration["prob_pred"], prob_pred, rtol=1e-12)
    assert sum(calibration["count"]) == len(y)


@pytest.mark.parametrize("labels", [None, ["cat", "dog", "emu", "yak"]], ids=["int", "str"])
def test_multiclass_metrics_equal_sklearn(store, labels):
    model, X, y = classifier_data(4, labels=labels, frame=labels is not None)
    result = evaluate(model, X, y, importance=False)
    assert result.task == "multiclass"
    expected = sklearn_classification(model, X, y)
    assert set(expected) == set(CLASSIFICATION_METRICS) - {"average_precision", "brier_score"}
    assert_metrics(result, expected)
    assert_per_class(result, model, X, y)
    proba = model.predict_proba(X)
    for k, curve in enumerate(result.details["curves"]["roc"]):
        assert curve["label"] == result.labels[k]
        assert curve["auc"] == approx(sk.roc_auc_score(np.asarray(y) == model.classes_[k],
                                                       proba[:, k]))
    assert len(result.details["curves"]["pr"]) == 4


def test_regression_metrics_equal_sklearn(store):
    X, y = make_regression(300, 5, noise=10.0, random_state=1)
    y = y + 500  # away from 0, so MAPE is meaningful
    model = Ridge(alpha=3.0).fit(X, y)
    result = evaluate(model, X, y, importance=False)
    pred = model.predict(X)
    assert result.task == "regression"
    expected = {
        "mae": sk.mean_absolute_error(y, pred),
        "mse": sk.mean_squared_error(y, pred),
        "rmse": sk.root_mean_squared_error(y, pred),
        "r2": sk.r2_score(y, pred),
        "mape": sk.mean_absolute_percentage_error(y, pred),
        "median_ae": sk.median_absolute_error(y, pred),
        "max_error": sk.max_error(y, pred),
        "explained_variance": sk.explained_variance_score(y, pred),
    }
    assert set(expected) == set(REGRESSION_METRICS)
    assert_metrics(result, expected)
    assert result.details["scatter"]["actual"] == y.tolist()
    assert sum(result.details["residual_histogram"]["counts"]) == len(y)


def test_regression_from_pandas_with_an_integer_target(store):
    X, y = make_regression(200, 3, noise=5.0, random_state=2)
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    target = pd.Series(np.round(y).astype(int), name="y")
    model = LinearRegression().fit(frame, target)
    result = evaluate(model, frame, target, importance=False)
    assert result.metrics["r2"] == approx(sk.r2_score(target, model.predict(frame)))
    assert result.metrics["mae"] == approx(sk.mean_absolute_error(target, model.predict(frame)))


@pytest.mark.filterwarnings("ignore::UserWarning",
                            "ignore::sklearn.exceptions.UndefinedMetricWarning")
def test_classes_missing_from_y(store):
    model, X, y = classifier_data(3, labels=["a", "b", "c"])
    keep = y != "c"
    X_eval, y_eval = X[keep], y[keep]
    result = evaluate(model, X_eval, y_eval, importance=False)
    pred = model.predict(X_eval)
    assert "c" in set(pred), "the model still predicts the absent class"
    proba = model.predict_proba(X_eval)
    expected = {"accuracy": sk.accuracy_score(y_eval, pred),
                "balanced_accuracy": sk.balanced_accuracy_score(y_eval, pred),
                "log_loss": sk.log_loss(y_eval, proba, labels=model.classes_),
                "roc_auc": sklearn_or_nan(sk.roc_auc_score, y_eval, proba, multi_class="ovr",
                                          labels=model.classes_)}
    for average in ("macro", "weighted"):
        for metric in ("precision", "recall", "f1"):
            score = getattr(sk, f"{metric}_score")
            expected[f"{metric}_{average}"] = score(y_eval, pred, average=average)
    assert_metrics(result, expected)
    assert math.isnan(result.metrics["roc_auc"]) and result.skipped == {}
    assert any("'c'" in note and "ROC AUC" in note for note in result.notes)
    per_class = result.per_class
    assert per_class.loc["c", "support"] == 0 and per_class.loc["c", "predicted"] > 0
    assert any("no row of class" in note for note in result.notes)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.UndefinedMetricWarning",
                            "ignore::UserWarning")
@pytest.mark.parametrize("only", [0, 1])
def test_binary_with_one_class_in_y(store, only):
    model, X, y = classifier_data(2)
    keep = y == only
    X_eval, y_eval = X[keep], y[keep]
    result = evaluate(model, X_eval, y_eval, importance=False)
    proba = model.predict_proba(X_eval)
    expected = sklearn_classification(model, X_eval, y_eval, one_class=True)
    assert_metrics(result, expected)
    assert math.isnan(result.metrics["roc_auc"])
    assert result.skipped == {} and any("one class only" in n for n in result.notes)
    assert result.metrics["average_precision"] == sk.average_precision_score(y_eval, proba[:, 1])
    assert "roc_curve" not in result.figures and "calibration_curve" in result.figures


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.UndefinedMetricWarning")
def test_labels_the_model_never_saw(store):
    model, X, y = classifier_data(2, labels=["no", "yes"])
    y = y.copy()
    y[:5] = "maybe"
    result = evaluate(model, X, y, importance=False)
    pred = model.predict(X)
    assert result.labels == ["maybe", "no", "yes"]
    for average in ("macro", "weighted"):
        assert result.metrics[f"f1_{average}"] == approx(sk.f1_score(y, pred, average=average))
    assert result.metrics["balanced_accuracy"] == approx(sk.balanced_accuracy_score(y, pred))
    assert set(result.skipped) == {"roc_auc", "average_precision", "log_loss", "brier_score"}
    assert "'maybe'" in result.skipped["log_loss"]
    assert any("never trained on: ['maybe']" in note for note in result.notes)


def test_labels_of_mixed_types_are_refused(store):
    model, X, y = classifier_data(2)
    y = y.astype(object)
    y[0] = "one"
    with pytest.raises(ValidationError, match="mix label types"):
        evaluate(model, X, y)


def test_model_without_predict_proba(store):
    X, y = make_classification(300, 5, random_state=3)
    model = LinearSVC().fit(X, y)
    result = evaluate(model, X, y, importance=False)
    assert set(result.skipped) == {"roc_auc", "average_precision", "log_loss", "brier_score"}
    assert all("has no predict_proba" in reason for reason in result.skipped.values())
    assert result.metrics["f1_macro"] == approx(sk.f1_score(y, model.predict(X),
                                                            average="macro"))
    assert "curves" not in result.details
    assert sorted(result.figures) == ["confusion_matrix", "confusion_matrix_normalized"]
    assert "has no predict_proba" in result._repr_html_()


def test_large_curves_are_thinned_but_areas_use_every_point(store):
    model, X, y = classifier_data(2, n=5000, seed=4)
    result = evaluate(model, X, y, importance=False)
    score = model.predict_proba(X)[:, 1]
    assert len(sk.precision_recall_curve(y, score)[0]) > 1000
    (pr,) = result.details["curves"]["pr"]
    assert len(pr["precision"]) <= 1000 and pr["recall"][0] == 1.0 and pr["recall"][-1] == 0
    assert result.metrics["average_precision"] == approx(sk.average_precision_score(y, score))
    assert result.metrics["roc_auc"] == approx(sk.roc_auc_score(y, score))


class CountingClassifier(LogisticRegression):
    """A real estimator that counts its prediction calls on the full evaluation data."""

    full_rows = None
    calls: dict

    def predict(self, X):
        self._count("predict", X)
        return super().predict(X)

    def predict_proba(self, X):
        self._count("predict_proba", X)
        return super().predict_proba(X)

    def _count(self, method, X):
        if len(X) == self.full_rows:
            self.calls[method] = self.calls.get(method, 0) + 1


@pytest.mark.parametrize("importance", [False, True])
def test_each_prediction_method_runs_once_on_the_data(store, importance):
    X, y = make_classification(600, 4, random_state=5)
    model = CountingClassifier(max_iter=500).fit(X, y)
    model.full_rows, model.calls = len(X), {}
    evaluate(model, X, y, importance=importance, importance_rows=100, n_repeats=2)
    assert model.calls == {"predict": 1, "predict_proba": 1}


def test_nan_in_y_is_named(store):
    model, X, y = classifier_data(2)
    y = y.astype(float)
    y[[3, 7]] = np.nan
    with pytest.raises(ValidationError, match=r"y has missing values.*2 of 400.*\[3, 7\]"):
        evaluate(model, X, y)


def test_missing_label_in_a_pandas_series_is_named_with_its_index(store):
    model, X, y = classifier_data(2, labels=["no", "yes"], frame=True)
    y = y.astype("string")
    y.index = [f"id{i}" for i in range(len(y))]
    y.iloc[5] = pd.NA
    with pytest.raises(ValidationError, match=r"missing values.*row 5.*id5"):
        evaluate(model, X, y)


class NaNRegressor(Ridge):
    def predict(self, X):
        pred = super().predict(X)
        pred[::50] = np.nan
        return pred


def test_nan_in_predictions_is_named(store):
    X, y = make_regression(100, 3, random_state=6)
    model = NaNRegressor().fit(X, y)
    with pytest.raises(ValidationError, match=r"model\.predict returned NaN.*2 of 100"):
        evaluate(model, X, y)


def test_infinite_target_and_mismatched_lengths(store):
    X, y = make_regression(50, 2, random_state=7)
    model = Ridge().fit(X, y)
    bad = y.copy()
    bad[4] = np.inf
    with pytest.raises(ValidationError, match="infinite"):
        evaluate(model, X, bad)
    with pytest.raises(ValidationError, match="X has 50 rows but y has 49"):
        evaluate(model, X, y[:-1])


def test_string_target_for_a_regressor_is_refused(store):
    X, y = make_regression(30, 2, random_state=8)
    model = Ridge().fit(X, y)
    with pytest.raises(ValidationError, match="regressor"):
        evaluate(model, X, np.array(["a"] * 30))


def test_permutation_importance_on_a_bounded_sample(store):
    model, X, y = classifier_data(2, n=600, frame=True)
    seen = []
    result = evaluate(model, X, y, importance_rows=150, n_repeats=2,
                      progress=lambda done, total: seen.append((done, total)))
    record = result.details["importance"]
    assert record["n_rows"] == 150 and record["n_repeats"] == 2
    assert record["features"] == list(X.columns)
    total = 1 + X.shape[1] * 2
    assert seen[-1] == (total, total) and len(seen) == total
    frame = result.importance
    assert frame["importance_mean"].is_monotonic_decreasing
    # The same seeded sample and repeats as scikit-learn's own function give the same numbers.
    from sklearn.inspection import permutation_importance

    rows = np.sort(np.random.default_rng(0).choice(600, 150, replace=False))
    direct = permutation_importance(model, X.iloc[rows], y.iloc[rows], scoring="accuracy",
                                    n_repeats=2, random_state=0)
    np.testing.assert_allclose(record["mean"], direct.importances_mean, rtol=1e-12)


@pytest.mark.parametrize("frame", [False, True])
def test_permutation_importance_runs_over_a_bounded_number_of_features(store, frame):
    # 80 one-hot-like columns: by default only the model's 50 most important are permuted.
    X, y = make_classification(300, 80, n_informative=6, random_state=3)
    X = (X > 0).astype(float)
    if frame:
        X = pd.DataFrame(X, columns=[f"onehot_{i}" for i in range(80)])
    model = LogisticRegression(max_iter=2000).fit(X, y)
    seen = []
    result = evaluate(model, X, y, n_repeats=2, progress=lambda d, t: seen.append(t))
    record = result.details["importance"]
    ranked = np.argsort(-np.abs(model.coef_[0]), kind="stable")[:50]
    chosen = sorted(int(i) for i in ranked)
    assert record["n_features"] == 80 and len(record["features"]) == 50
    assert record["features"] == [(f"onehot_{i}" if frame else f"x{i}") for i in chosen]
    assert seen[-1] == 1 + 50 * 2
    assert "ran over 50 of 80 features" in " ".join(result.notes)
    assert "importance_features=None" in " ".join(result.notes)
    # The same numbers scikit-learn gives those columns when it permutes all 80.
    from sklearn.inspection import permutation_importance

    direct = permutation_importance(model, X, y, scoring="accuracy", n_repeats=2,
                                    random_state=0)
    np.testing.assert_allclose(record["mean"], direct.importances_mean[chosen], rtol=1e-12)
    every = evaluate(model, X, y, n_repeats=2, importance_features=None)
    assert len(every.details["importance"]["features"]) == 80
    assert not any("ran over" in note for note in every.notes)
    with pytest.raises(ValidationError, match="importance_features"):
        evaluate(model, X, y, importance_features=0)


def test_without_its_own_ranking_the_bounded_features_are_a_seeded_choice(store):
    from sklearn.neighbors import KNeighborsClassifier

    X, y = make_classification(200, 60, random_state=4)
    model = KNeighborsClassifier().fit(X, y)
    first = evaluate(model, X, y, n_repeats=1, importance_features=10)
    again = evaluate(model, X, y, n_repeats=1, importance_features=10)
    assert first.details["importance"]["features"] == again.details["importance"]["features"]
    assert len(first.details["importance"]["features"]) == 10
    assert "random choice" in " ".join(first.notes)


def test_progress_bar_outside_a_kernel_writes_to_stderr(store, capsys):
    X, y = make_regression(80, 3, random_state=9)
    evaluate(Ridge().fit(X, y), X, y, n_repeats=1, progress=True)
    assert "permutation importance: 100% (4/4)" in capsys.readouterr().err


@pytest.mark.parametrize("progress, shown", [(None, True), (False, False)])
def test_progress_bar_appears_by_itself_when_importance_looks_slow(store, capsys, monkeypatch,
                                                                   progress, shown):
    from jupyter_mlops.evaluation import importance

    monkeypatch.setattr(importance, "SLOW_S", 0.0)  # any work counts as slow
    X, y = make_regression(80, 3, random_state=9)
    evaluate(Ridge().fit(X, y), X, y, n_repeats=1, progress=progress)
    assert ("permutation importance: 100%" in capsys.readouterr().err) is shown


def test_unknown_model_kind_and_task_override(store):
    class Threshold:
        def predict(self, X):
            return (np.asarray(X)[:, 0] > 0).astype(int)

    X, y = make_classification(100, 4, n_informative=2, random_state=10)
    with pytest.raises(ValidationError, match="task='classification'"):
        evaluate(Threshold(), X, y)
    result = evaluate(Threshold(), X, y, task="classification", importance=False)
    assert result.task == "binary"
    assert result.metrics["accuracy"] == approx(sk.accuracy_score(y, Threshold().predict(X)))
    assert "log_loss" in result.skipped
