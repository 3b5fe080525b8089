"""Metrics and curve data, computed from predictions made once.

Classification counts go through one confusion matrix (``np.bincount`` over label codes),
from which accuracy, balanced accuracy and the per-class and averaged precision, recall and
F1 follow with scikit-learn's own formulas: labels are the union of those in ``y`` and in
the predictions, an undefined ratio counts as 0 (``zero_division``'s default), F1 is
``2·tp / (2·tp + fp + fn)``. Each ROC and PR curve is computed once with scikit-learn and
gives both the curve and its area (``roc_auc_score`` and ``average_precision_score`` do the
same internally). Regression metrics are scikit-learn's functions, called directly.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ValidationError, shorten
from .directions import PROBABILITY_METRICS

#: A stored curve keeps at most this many points (enough to draw it; its area is computed
#: from every point first).
MAX_CURVE_POINTS = 1000
#: Curves are kept for at most this many classes: the ones with the most rows.
MAX_CURVE_CLASSES = 20
CALIBRATION_BINS = 10
#: Rows drawn in the regression scatter plots.
SCATTER_POINTS = 2000
HISTOGRAM_BINS = 50


@dataclass
class Computed:
    metrics: dict[str, float]
    details: dict[str, Any]
    skipped: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _label(value: Any) -> Any:
    """A class label as JSON can hold it: numpy scalars become Python ones, others text."""
    if hasattr(value, "item") and getattr(value, "shape", None) == ():
        value = value.item()
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    return str(value)


def _divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    # scikit-learn's _prf_divide with zero_division's default: 0 where undefined.
    mask = denominator == 0
    safe = np.where(mask, 1, denominator)
    result = numerator / safe
    result[mask] = 0.0
    return result


def _thin(n: int, limit: int = MAX_CURVE_POINTS) -> np.ndarray:
    """Evenly spaced indices (first and last included) to keep a curve of n points."""
    if n <= limit:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, limit).round().astype(np.int64))


def encode_labels(y: np.ndarray, pred: np.ndarray, classes: Any):
    """Sorted labels (model classes, then any other label in y or the predictions) and
    integer codes of y and of the predictions into them."""
    import pandas as pd

    y_codes, y_uniques = pd.factorize(y)
    p_codes, p_uniques = pd.factorize(pred)
    seen: dict[Any, None] = {}
    for value in (*(classes if classes is not None else ()), *y_uniques, *p_uniques):
        seen.setdefault(value, None)
    try:
        labels = sorted(seen)
    except TypeError:
        raise ValidationError(
            "y, the predictions and the model's classes mix label types that cannot be "
            f"ordered (such as strings and numbers): {shorten(list(seen), 120)}. Make y use "
            "the same type as the labels the model was trained on."
        ) from None
    position = {value: i for i, value in enumerate(labels)}
    y_map = np.fromiter((position[v] for v in y_uniques), np.int64, len(y_uniques))
    p_map = np.fromiter((position[v] for v in p_uniques), np.int64, len(p_uniques))
    return labels, y_map[y_codes], p_map[p_codes]


def classification(y: np.ndarray, pred: np.ndarray, proba: np.ndarray | None,
                   classes: Any, binary: bool, no_proba: str | None) -> Computed:
    labels, y_codes, p_codes = encode_labels(y, pred, classes)
    n_labels = len(labels)
    matrix = np.bincount(y_codes * n_labels + p_codes,
                         minlength=n_labels * n_labels).reshape(n_labels, n_labels)
    tp = np.diag(matrix)
    true_sum = matrix.sum(axis=1)
    pred_sum = matrix.sum(axis=0)
    precision = _divide(tp, pred_sum)
    recall = _divide(tp, true_sum)
    f1 = _divide(2.0 * tp, 1.0 * true_sum + pred_sum)
    # scikit-learn averages over the labels present in y or in the predictions.
    present = (true_sum + pred_sum) > 0
    in_y = true_sum > 0
    n = len(y)
    metrics = {
        "accuracy": float(tp.sum() / n),
        "balanced_accuracy": float(np.mean(recall[in_y])),
        "precision_macro": float(np.mean(precision[present])),
        "recall_macro": float(np.mean(recall[present])),
        "f1_macro": float(np.mean(f1[present])),
        "precision_weighted": float(np.average(precision[present], weights=true_sum[present])),
        "recall_weighted": float(np.average(recall[present], weights=true_sum[present])),
        "f1_weighted": float(np.average(f1[present], weights=true_sum[present])),
    }
    plain_labels = [_label(v) for v in labels]
    details: dict[str, Any] = {
        "labels": plain_labels,
        "confusion_matrix": matrix,
        "per_class": {"label": plain_labels, "precision": precision, "recall": recall,
                      "f1": f1, "support": true_sum, "predicted": pred_sum},
    }
    computed = Computed(metrics, details)
    _label_notes(computed, labels, plain_labels, classes, true_sum, pred_sum)
    if binary:
        # scikit-learn's positive class: the second of the sorted classes.
        known = sorted(labels.index(c) for c in classes) if classes is not None else None
        details["positive_label"] = plain_labels[known[1] if known and len(known) > 1 else -1]
    reason = no_proba or _probability_problem(proba, classes, labels, plain_labels, true_sum)
    if reason:
        for metric in PROBABILITY_METRICS:
            if binary or metric in ("roc_auc", "log_loss"):
                computed.skipped[metric] = reason
        return computed
    # Codes of y into the model's classes (proba's columns), which are sorted by position.
    class_position = np.array([labels.index(c) for c in classes])
    to_class = np.full(n_labels, -1, dtype=np.int64)
    to_class[class_position] = np.arange(len(classes))
    y_class = to_class[y_codes]
    order = np.argsort(class_position)  # proba columns in label order
    proba = proba[:, order]
    y_class = np.argsort(order)[y_class]
    sorted_classes = [plain_labels[i] for i in np.sort(class_position)]
    _probability_metrics(computed, y_class, proba, sorted_classes, binary)
    return computed


def _label_notes(computed: Computed, labels, shown, classes, true_sum, pred_sum) -> None:
    """Notes on labels; ``shown`` are the labels as plain Python values, for messages."""
    never = [shown[i] for i in np.flatnonzero((pred_sum == 0) & (true_sum > 0))]
    if never:
        computed.notes.append(
            f"No row was predicted as {shorten(never, 100)}: precision is undefined for "
            "that class and counted as 0, as scikit-learn does."
        )
    if classes is not None:
        known = set(classes)
        absent = [shown[i] for i, c in enumerate(labels) if c in known and true_sum[i] == 0]
        if absent:
            computed.notes.append(
                f"y has no row of class {shorten(absent, 100)}: its support is 0 and, as in "
                "scikit-learn, it counts in the macro averages only if it was predicted."
            )
        unknown = [shown[i] for i, c in enumerate(labels) if c not in known]
        if unknown:
            computed.notes.append(
                f"y holds labels the model was never trained on: {shorten(unknown, 100)}."
            )


def _probability_problem(proba, classes, labels, shown, true_sum) -> str | None:
    if proba is None:
        return "the model gave no class probabilities."
    if classes is None:
        return ("the model has predict_proba but no classes_, so its probability columns "
                "cannot be matched to labels.")
    if proba.shape[1] != len(classes):
        return (f"predict_proba returned {proba.shape[1]} columns for the model's "
                f"{len(classes)} classes.")
    known = set(classes)
    unknown = [shown[i] for i, c in enumerate(labels) if c not in known and true_sum[i] > 0]
    if unknown:
        return (f"y holds labels the model has no probability for: {shorten(unknown, 100)}.")
    return None


def _curve_entry(label, y01: np.ndarray, score: np.ndarray) -> tuple[dict, dict, float, float]:
    from sklearn.metrics import auc, precision_recall_curve, roc_curve

    fpr, tpr, roc_thresholds = roc_curve(y01, score)
    roc_auc = float(auc(fpr, tpr))
    precision, recall, pr_thresholds = precision_recall_curve(y01, score)
    # average_precision_score's step integral over the same curve.
    average_precision = float(max(0.0, -np.sum(np.diff(recall) * precision[:-1])))
    keep = _thin(len(fpr))
    roc = {"label": label, "fpr": fpr[keep], "tpr": tpr[keep],
           "thresholds": roc_thresholds[keep], "auc": roc_auc}
    keep = _thin(len(precision))
    thresholds = np.append(pr_thresholds, np.nan)  # the last point (recall 0) has none
    pr = {"label": label, "precision": precision[keep], "recall": recall[keep],
          "thresholds": thresholds[keep], "average_precision": average_precision,
          "prevalence": float(np.mean(y01))}
    return roc, pr, roc_auc, average_precision


def calibration(label, y01: np.ndarray, prob: np.ndarray, n_bins: int = CALIBRATION_BINS):
    """scikit-learn's ``calibration_curve`` (uniform bins), with the row count of each bin."""
    bins = np.linspace(0.0, 1.0, n_bins + 1)
    binids = np.searchsorted(bins[1:-1], prob)
    bin_sums = np.bincount(binids, weights=prob, minlength=n_bins)
    bin_true = np.bincount(binids, weights=y01, minlength=n_bins)
    bin_total = np.bincount(binids, minlength=n_bins)
    nonzero = bin_total != 0
    return {"label": label, "prob_true": bin_true[nonzero] / bin_total[nonzero],
            "prob_pred": bin_sums[nonzero] / bin_total[nonzero], "count": bin_total[nonzero],
            "n_bins": n_bins}


def _one_class_scores(metrics: dict, y01: np.ndarray, score: np.ndarray) -> None:
    """ROC AUC and average precision when y holds one class: scikit-learn's own answer
    (NaN for ROC AUC; older versions raise, which means the same)."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    for key, function in (("roc_auc", roc_auc_score),
                          ("average_precision", average_precision_score)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                metrics[key] = float(function(y01, score))
            except ValueError:
                metrics[key] = math.nan


def _probability_metrics(computed: Computed, y_class: np.ndarray, proba: np.ndarray,
                         classes: list, binary: bool) -> None:
    from sklearn.metrics import brier_score_loss, log_loss

    metrics, skipped = computed.metrics, computed.skipped
    n_classes = len(classes)
    counts = np.bincount(y_class, minlength=n_classes)
    curves: dict[str, list] = {"roc": [], "pr": [], "calibration": []}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # log_loss warns when rows do not sum to 1 exactly
        metrics["log_loss"] = float(log_loss(y_class, proba, labels=np.arange(n_classes)))
    if binary:
        y01 = (y_class == 1).astype(np.int64)
        score = proba[:, 1]
        metrics["brier_score"] = float(brier_score_loss(y01, score, pos_label=1))
        if counts.min() == 0:
            only = classes[int(np.argmax(counts))]
            _one_class_scores(metrics, y01, score)
            computed.notes.append(
                f"y has rows of one class only ({shorten(only)}): ROC AUC is undefined (NaN) "
                "and average precision is trivial, as in scikit-learn; there are no ROC or PR "
                "curves.")
        else:
            roc, pr, metrics["roc_auc"], metrics["average_precision"] = _curve_entry(
                classes[1], y01, score)
            curves["roc"].append(roc)
            curves["pr"].append(pr)
        curves["calibration"].append(calibration(classes[1], y01, score))
    else:
        shown = np.argsort(-counts, kind="stable")[:MAX_CURVE_CLASSES]
        aucs = []
        for k in range(n_classes):
            if counts[k] == 0 or counts[k] == len(y_class):
                continue
            y01 = (y_class == k).astype(np.int64)
            roc, pr, area, _ = _curve_entry(classes[k], y01, proba[:, k])
            aucs.append(area)
            if k in shown:
                curves["roc"].append(roc)
                curves["pr"].append(pr)
                curves["calibration"].append(calibration(classes[k], y01, proba[:, k]))
        missing = [classes[k] for k in range(n_classes) if counts[k] == 0]
        if not np.allclose(1, proba.sum(axis=1)):
            skipped["roc_auc"] = ("predict_proba's rows do not sum to 1, and the multiclass "
                                  "ROC AUC needs probabilities.")
        elif missing:
            metrics["roc_auc"] = math.nan
            computed.notes.append(
                f"y has no row of class {shorten(missing, 100)}: its one-vs-rest ROC AUC is "
                "undefined, so the macro ROC AUC is NaN, as in scikit-learn.")
        else:
            metrics["roc_auc"] = float(np.mean(aucs))
        if n_classes > MAX_CURVE_CLASSES:
            computed.notes.append(
                f"Curves are drawn for the {MAX_CURVE_CLASSES} classes with the most rows, of "
                f"{n_classes}; ROC AUC averages every class."
            )
    computed.details["curves"] = curves


def regression(y: np.ndarray, pred: np.ndarray, random_state: int | None) -> Computed:
    from sklearn import metrics as sk

    y = np.asarray(y, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    mse = sk.mean_squared_error(y, pred)
    rmse = (sk.root_mean_squared_error(y, pred) if hasattr(sk, "root_mean_squared_error")
            else math.sqrt(mse))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # r2 of a single row warns and gives NaN
        metrics = {
            "mae": float(sk.mean_absolute_error(y, pred)),
            "mse": float(mse),
            "rmse": float(rmse),
            "r2": float(sk.r2_score(y, pred)),
            "mape": float(sk.mean_absolute_percentage_error(y, pred)),
            "median_ae": float(sk.median_absolute_error(y, pred)),
            "max_error": float(sk.max_error(y, pred)),
            "explained_variance": float(sk.explained_variance_score(y, pred)),
        }
    n = len(y)
    residuals = y - pred
    counts, edges = np.histogram(residuals, bins=min(HISTOGRAM_BINS, max(1, n)))
    if n > SCATTER_POINTS:
        rng = np.random.default_rng(random_state)
        keep = np.sort(rng.choice(n, SCATTER_POINTS, replace=False))
    else:
        keep = np.arange(n)
    details = {
        "scatter": {"actual": y[keep], "predicted": pred[keep], "n_rows": n},
        "residual_histogram": {"counts": counts, "edges": edges},
    }
    computed = Computed(metrics, details)
    if np.any(np.abs(y) < np.finfo(np.float64).eps):
        computed.notes.append(
            "y has values at or near 0: MAPE divides by them (by machine epsilon at 0, as "
            "scikit-learn does) and is not meaningful here."
        )
    return computed
