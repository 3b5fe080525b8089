"""What ``evaluate`` is given: the task, the true values, and the model's predictions.

Each prediction method is called once on the whole of ``X``; every metric and curve is then
computed from those arrays. Missing or infinite values in ``y`` or in the predictions stop
the evaluation with a message naming them, because every metric would silently be wrong.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ValidationError, shorten

TASKS = ("binary", "multiclass", "regression")
_TASK_ALIASES = {"classification": "classifier", "classifier": "classifier",
                 "binary": "classifier", "multiclass": "classifier",
                 "regression": "regressor", "regressor": "regressor"}


@dataclass
class Predictions:
    pred: np.ndarray
    proba: np.ndarray | None
    #: Why there are no probabilities, when ``proba`` is None (a classifier only).
    no_proba: str | None
    seconds: float


def model_kind(model: Any, task: str | None) -> str:
    """'classifier' or 'regressor', from ``task`` when given, else from the model."""
    if task is not None:
        kind = _TASK_ALIASES.get(task)
        if kind is None:
            raise ValidationError(
                f"task must be one of 'classification', 'binary', 'multiclass' or "
                f"'regression'; got {shorten(task)}."
            )
        return kind
    try:
        from sklearn.base import is_classifier, is_regressor

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if is_classifier(model):
                return "classifier"
            if is_regressor(model):
                return "regressor"
    except Exception:  # noqa: BLE001 - not a scikit-learn estimator: fall back to duck typing
        pass
    declared = getattr(model, "_estimator_type", None)
    if declared in ("classifier", "regressor"):
        return declared
    if hasattr(model, "classes_") or hasattr(model, "predict_proba"):
        return "classifier"
    raise ValidationError(
        f"Cannot tell whether {type(model).__name__} is a classifier or a regressor; pass "
        "task='classification' or task='regression'."
    )


def n_samples(X: Any) -> int:
    shape = getattr(X, "shape", None)
    if shape is not None and len(shape) >= 1:
        return int(shape[0])
    try:
        return len(X)
    except TypeError:
        raise ValidationError(
            f"X must be a DataFrame, an array or a sequence of rows; got {type(X).__name__}."
        ) from None


def target_array(y: Any) -> np.ndarray:
    """``y`` as a 1-d numpy array, from a Series, a one-column DataFrame, an array or a list."""
    if hasattr(y, "columns"):  # a DataFrame
        if y.shape[1] != 1:
            raise ValidationError(
                f"y has {y.shape[1]} columns; evaluate takes one target (multi-output models "
                "are not supported). Pass one column, such as y['target']."
            )
        y = y.iloc[:, 0]
    if hasattr(y, "to_numpy"):
        array = y.to_numpy()
        if array.dtype.kind not in "biufcOUSM":  # pandas extension arrays with pd.NA
            array = np.asarray(y.astype(object))
    else:
        array = np.asarray(y)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise ValidationError(
            f"y must be one-dimensional; got shape {tuple(array.shape)}. Multi-output models "
            "are not supported."
        )
    return array


def _missing_mask(values: np.ndarray) -> np.ndarray | None:
    kind = values.dtype.kind
    if kind == "f" or kind == "c":
        return np.isnan(values)
    if kind == "O":
        import pandas as pd

        return np.asarray(pd.isna(values), dtype=bool)
    return None


def _rows(mask: np.ndarray, index: Any = None) -> str:
    positions = np.flatnonzero(mask)
    count = len(positions)
    shown = positions[:5].tolist()
    where = f"rows {shown}" + (" ..." if count > 5 else "") if count > 1 else f"row {shown[0]}"
    if index is not None and not _default_index(index, len(mask)):
        labels = [index[i] for i in shown]
        where += f" (index {shorten(labels if count > 1 else labels[0], 60)})"
    return f"{count} of {len(mask)} values, at {where}"


def _default_index(index: Any, n: int) -> bool:
    start, stop, step = (getattr(index, a, None) for a in ("start", "stop", "step"))
    return (start, stop, step) == (0, n, 1)


def check_target(y: np.ndarray, kind: str, index: Any = None) -> np.ndarray:
    """``y`` checked for missing (and, for a regressor, infinite or non-numeric) values;
    a regressor's numbers held as objects (pandas' nullable dtypes) come back as floats."""
    mask = _missing_mask(y)
    if mask is not None and mask.any():
        raise ValidationError(
            f"y has missing values (NaN or None): {_rows(mask, index)}. Drop or impute those "
            "rows before evaluating; no metric is defined for a row without its true value."
        )
    if kind == "regressor":
        if y.dtype.kind == "O":
            try:
                y = y.astype(np.float64)
            except (TypeError, ValueError):
                pass
        if y.dtype.kind not in "biuf":
            raise ValidationError(
                f"The model is a regressor but y holds {y.dtype} values such as "
                f"{shorten(y[0] if len(y) else None)}; pass numeric targets, or "
                "task='classification' if the model is a classifier."
            )
        if y.dtype.kind == "f" and not np.isfinite(y).all():
            raise ValidationError(
                f"y has infinite values: {_rows(~np.isfinite(y), index)}. Drop those rows "
                "before evaluating."
            )
    return y


def _check_predictions(values: np.ndarray, method: str, n: int) -> None:
    if values.shape[0] != n:
        raise ValidationError(
            f"model.{method} returned {values.shape[0]} rows for the {n} rows of X."
        )
    mask = _missing_mask(values)
    if mask is not None and mask.ndim > 1:
        mask = mask.any(axis=tuple(range(1, mask.ndim)))
    if mask is not None and mask.any():
        raise ValidationError(
            f"model.{method} returned NaN (or None): {_rows(mask)}. No metric can be "
            "computed from them; check X for missing values the model does not handle."
        )
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        bad = ~np.isfinite(values)
        if bad.ndim > 1:
            bad = bad.any(axis=1)
        raise ValidationError(f"model.{method} returned infinite values: {_rows(bad)}.")


def predict(model: Any, X: Any, kind: str, n: int) -> Predictions:
    """Call ``predict`` once, and ``predict_proba`` once for a classifier that has it."""
    if not hasattr(model, "predict"):
        raise ValidationError(
            f"{type(model).__name__} has no predict method; evaluate takes a fitted model."
        )
    started = time.perf_counter()
    pred = np.asarray(model.predict(X))
    if pred.ndim == 2 and pred.shape[1] == 1:
        pred = pred[:, 0]
    if pred.ndim != 1:
        raise ValidationError(
            f"model.predict returned shape {tuple(pred.shape)}; evaluate supports one target "
            "(multi-output models are not supported)."
        )
    _check_predictions(pred, "predict", n)
    proba = None
    no_proba = None
    if kind == "classifier":
        if hasattr(model, "predict_proba"):
            proba = np.asarray(model.predict_proba(X), dtype=float)
            if proba.ndim != 2:
                raise ValidationError(
                    f"model.predict_proba returned shape {tuple(proba.shape)}; expected one "
                    "column per class."
                )
            _check_predictions(proba, "predict_proba", n)
        else:
            no_proba = (
                f"{type(model).__name__} has no predict_proba, so the metrics and curves "
                "that need class probabilities were skipped (ROC AUC, average precision, log "
                "loss, Brier score; ROC, PR and calibration curves). Wrap it in "
                "sklearn.calibration.CalibratedClassifierCV to get them."
            )
    return Predictions(pred, proba, no_proba, time.perf_counter() - started)


def sample_rows(X: Any, index: np.ndarray) -> Any:
    """The rows of ``X`` at positions ``index``, keeping its type (DataFrame, array, list)."""
    if hasattr(X, "iloc"):
        return X.iloc[index]
    if hasattr(X, "shape"):
        return X[index]
    return [X[i] for i in index]


def feature_names(model: Any, X: Any) -> list[str]:
    width = X.shape[1] if hasattr(X, "shape") and len(X.shape) == 2 else len(X[0])
    if hasattr(X, "columns"):
        return [str(c) for c in X.columns]
    names = getattr(model, "feature_names_in_", None)
    if names is not None and len(names) == width:
        return [str(c) for c in names]
    return [f"x{i}" for i in range(width)]
