"""MLflow's ``training_*`` metrics for a scikit-learn model, from the data it was fitted on.

Same names, same arguments, same values as ``mlflow.sklearn.autolog``: for a classifier
``training_precision_score``, ``training_recall_score``, ``training_f1_score`` (weighted
averages), ``training_accuracy_score`` and, with ``predict_proba``, ``training_log_loss`` and
``training_roc_auc`` (weighted, one-vs-one); for a regressor ``training_mean_squared_error``,
``training_root_mean_squared_error``, ``training_mean_absolute_error`` and
``training_r2_score``; and ``training_score`` from the model's own ``score``.

They cost a prediction over the training data, so they are computed once per tracked cell,
for the cell's last fit of a scikit-learn model whose X and y are plain names, and skipped
(with a ``training_metrics_skipped`` tag saying why) above ``MAX_ROWS`` rows.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Mapping
from typing import Any

from ..errors import warn as _warn
from .cellnames import CellNames

PREFIX = "training_"
MAX_ROWS = 100_000
SKIPPED_TAG = "training_metrics_skipped"


def _rows(data: Any) -> int | None:
    shape = getattr(data, "shape", None)
    if shape is not None and len(shape) > 0:
        return int(shape[0])
    try:
        return len(data)
    except TypeError:
        return None


def _each(metrics: dict[str, tuple[Any, dict[str, Any]]]) -> dict[str, float]:
    """Every metric that can be computed; one that cannot (a single class, say) is left out,
    as MLflow leaves it out.

    The finiteness checks are skipped (a third of the time): the labels passed the fit's
    own checks and the predictions are the model's, so only a model predicting infinities
    gets a metric here that MLflow would leave out.
    """
    from sklearn import config_context

    values = {}
    with config_context(assume_finite=True):
        for name, (function, arguments) in metrics.items():
            try:
                values[PREFIX + name] = function(**arguments)
            except Exception:  # noqa: BLE001 - undefined for this data: MLflow skips it too
                continue
    return values


def _classifier(model: Any, X: Any, y: Any, sample_weight: Any) -> dict[str, float]:
    from sklearn import metrics

    y_pred = model.predict(X)
    # precision_score, recall_score and f1_score each compute this and keep one of its
    # numbers: one call gives the three, bit for bit.
    averaged = {"y_true": y, "y_pred": y_pred, "pos_label": None, "average": "weighted",
                "sample_weight": sample_weight, "beta": 1.0}
    chosen: dict[str, tuple[Any, dict[str, Any]]] = {
        "prfs": (metrics.precision_recall_fscore_support, averaged),
        "accuracy_score": (metrics.accuracy_score, {"y_true": y, "y_pred": y_pred,
                                                    "normalize": True,
                                                    "sample_weight": sample_weight}),
    }
    if hasattr(model, "predict_proba"):
        proba = model.predict_proba(X)
        chosen["log_loss"] = (metrics.log_loss, {"y_true": y, "y_pred": proba,
                                                 "sample_weight": sample_weight})
        # Binary: the score of the greater label, as roc_auc_score expects.
        score = proba[:, 1] if len(proba[0]) == 2 else proba
        chosen["roc_auc"] = (metrics.roc_auc_score, {
            "y_true": y, "y_score": score, "average": "weighted",
            "sample_weight": sample_weight, "multi_class": "ovo"})
    values = _each(chosen)
    prfs = values.pop(PREFIX + "prfs", None)
    if prfs is not None:
        for name, value in zip(("precision_score", "recall_score", "f1_score"), prfs):
            values[PREFIX + name] = value
    return values


def _regressor(model: Any, X: Any, y: Any, sample_weight: Any) -> dict[str, float]:
    import numpy as np
    from sklearn import metrics

    arguments = {"y_true": y, "y_pred": model.predict(X), "sample_weight": sample_weight,
                 "multioutput": "uniform_average"}
    values = _each({"mean_squared_error": (metrics.mean_squared_error, arguments),
                    "mean_absolute_error": (metrics.mean_absolute_error, arguments),
                    "r2_score": (metrics.r2_score, arguments)})
    values[PREFIX + "root_mean_squared_error"] = np.sqrt(values[PREFIX + "mean_squared_error"])
    return values


def training_metrics(model: Any, X: Any, y: Any, sample_weight: Any = None) -> dict[str, float]:
    """MLflow's ``training_*`` metrics of a fitted scikit-learn model on its fit data.

    Examples
    --------
    >>> model = LogisticRegression().fit(X, y)                      # doctest: +SKIP
    >>> training_metrics(model, X, y)["training_accuracy_score"]    # doctest: +SKIP
    0.97
    """
    from sklearn.base import is_classifier, is_regressor

    if y is None:
        return {}
    values: dict[str, float] = {}
    failure = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ill-defined precision and the like: not the user's cell
        try:
            if is_classifier(model):
                values = _classifier(model, X, y, sample_weight)
            elif is_regressor(model):
                values = _regressor(model, X, y, sample_weight)
        except Exception as exc:  # noqa: BLE001 - the model cannot predict its own fit data
            failure = f"{type(exc).__name__}: {exc}"
            values = {}
        if hasattr(model, "score"):
            try:
                takes_weight = "sample_weight" in inspect.signature(model.score).parameters
                values[PREFIX + "score"] = (model.score(X, y, sample_weight) if takes_weight
                                            else model.score(X, y))
            except Exception:  # noqa: BLE001 - no score for this data: MLflow skips it too
                pass
    if failure is not None:
        _warn(f"Training metrics of {type(model).__name__} were not computed ({failure}); "
              "the run has its other values.")
    return {key: float(value) for key, value in values.items()}


def cell_training_metrics(names: CellNames, namespace: Mapping[str, Any],
                          fitted: Mapping[str, Any]) -> tuple[dict[str, float], dict[str, str]]:
    """``(metrics, tags)`` for the cell's last fit of a scikit-learn model on named data.

    ``fitted`` holds the fitted models (and searches) autolog found, by variable. Only
    scikit-learn's own classes count (a Pipeline or a search around any model does), as
    only they get these metrics from ``mlflow.sklearn.autolog``.
    """
    for call in reversed(names.fit_calls):
        model = fitted.get(call.model)
        # A search that did not refit its best candidate has nothing to predict with.
        if (model is None or call.x is None or call.y is None
                or not type(model).__module__.startswith("sklearn.")
                or not hasattr(model, "predict")):
            continue
        X, y = namespace.get(call.x), namespace.get(call.y)
        if X is None or y is None:
            continue
        rows = _rows(X)
        if rows is not None and rows > MAX_ROWS:
            return {}, {SKIPPED_TAG: f"{call.x} has {rows:,} rows, above the {MAX_ROWS:,} "
                                     "rows training metrics are computed for"}
        weight = namespace.get(call.sample_weight) if call.sample_weight else None
        return training_metrics(model, X, y, weight), {}
    return {}, {}


__all__ = ["MAX_ROWS", "cell_training_metrics", "training_metrics"]
