"""Native models behind scikit-learn's predict API.

A native Booster predicts from its own data container and answers with probabilities;
evaluation, serving and replay want ``predict`` (labels for a classifier) and
``predict_proba`` on a DataFrame or an array, and scikit-learn's scorers want an
estimator. These wrappers give a native model exactly that, computing every answer from
one call of the model's own predict (``scores``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin


class _Native(BaseEstimator):
    def __init__(self, model: Any = None, scores: Callable[[Any], Any] | None = None,
                 classes: Any = None) -> None:
        self.model = model
        self.scores = scores
        self.classes = classes

    def fit(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(f"{type(self.model).__name__} is already trained; this wrapper only "
                        "predicts.")

    def __sklearn_is_fitted__(self) -> bool:
        return True

    def _scores(self, X: Any) -> np.ndarray:
        return np.asarray(self.scores(X))


class NativeClassifier(ClassifierMixin, _Native):
    """A classifier whose model answers with class probabilities: one column (the
    positive class's) for a binary model, one per class otherwise."""

    @property
    def classes_(self) -> np.ndarray:
        return np.asarray(self.classes)

    def predict_proba(self, X: Any) -> np.ndarray:
        proba = self._scores(X).astype(float)
        if proba.ndim == 2 and proba.shape[1] == 1:
            proba = proba[:, 0]
        if proba.ndim == 1:
            return np.column_stack([1.0 - proba, proba])
        return proba

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class NativeLabeller(ClassifierMixin, _Native):
    """A classifier whose model answers with class labels, without probabilities."""

    @property
    def classes_(self) -> np.ndarray:
        return np.asarray(self.classes)

    def predict(self, X: Any) -> np.ndarray:
        labels = self._scores(X)
        return labels.reshape(len(labels), -1)[:, 0].astype(self.classes_.dtype)


class NativeRegressor(RegressorMixin, _Native):
    """A model that answers with one number per row."""

    def predict(self, X: Any) -> np.ndarray:
        values = self._scores(X)
        if values.ndim == 2 and values.shape[1] == 1:
            values = values[:, 0]
        return values


def native_predictor(model: Any, task: str, scores: Callable[[Any], Any],
                     classes: Any = None) -> _Native:
    """``task``: ``proba`` (probabilities), ``labels`` (class labels) or ``regression``."""
    kind = {"proba": NativeClassifier, "labels": NativeLabeller,
            "regression": NativeRegressor}[task]
    return kind(model=model, scores=scores, classes=classes)
