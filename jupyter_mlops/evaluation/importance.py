"""What drives the predictions: scikit-learn's permutation importance on a bounded sample.

Permutation importance predicts ``1 + n_features × n_repeats`` times, so it runs on at most
``max_rows`` rows drawn at random (seeded), and over at most ``max_features`` features
(``MAX_FEATURES`` unless asked): the model's own most important ones when it has
``feature_importances_`` or ``coef_`` for its input columns, else a seeded random choice.
A one-hot encoded frame of 226 columns would otherwise cost 1,131 predictions. The scorer
is wrapped to count its calls: after the first one the remaining time is known, and a
progress bar is shown when it exceeds ``SLOW_S`` seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from .inputs import feature_names, sample_rows

SLOW_S = 2.0
MAX_FEATURES = 50
Progress = Callable[[int, int], None]
# Opens a display for ``total`` steps: an object with ``update(done, total)`` and ``close()``.
OpenDisplay = Callable[[int, str], Any]


def scoring_for(kind: str) -> str:
    """The estimator's usual score: accuracy for a classifier, R² for a regressor."""
    return "accuracy" if kind == "classifier" else "r2"


def permutation_importance(model: Any, X: Any, y: np.ndarray, kind: str, *, max_rows: int,
                           n_repeats: int, scoring: str | None, random_state: int | None,
                           progress: bool | Progress | None,
                           open_display: OpenDisplay | None = None,
                           max_features: int | None = MAX_FEATURES,
                           ) -> tuple[dict | None, str | None]:
    """``(importance record, None)``, or ``(None, why it was skipped)``.

    ``progress``: False never reports, a callable receives ``(done, total)``, None or True
    show a display made by ``open_display`` (when slow, or at once for True); computing
    never draws one itself. ``max_features=None`` runs over every feature."""
    from sklearn.inspection import permutation_importance as sk_permutation_importance
    from sklearn.metrics import check_scoring

    if "scipy.sparse" in type(X).__module__ or hasattr(X, "tocsr"):
        return None, "X is a sparse matrix; permutation importance needs dense columns."
    n = len(y)
    if n < 2:
        return None, "permutation importance needs at least 2 rows."
    if n > max_rows:
        rng = np.random.default_rng(random_state)
        rows = np.sort(rng.choice(n, max_rows, replace=False))
        X, y = sample_rows(X, rows), y[rows]
    names = feature_names(model, X)
    chosen, how = _chosen_features(model, len(names), max_features, random_state)
    full = None
    if chosen is not None:
        # scikit-learn permutes the columns it is given: give it the chosen ones, and let
        # the scorer put them back among the others before the model predicts.
        full = X if hasattr(X, "iloc") or isinstance(X, np.ndarray) else np.asarray(X)
        full = full.copy()
        X = full.iloc[:, chosen] if hasattr(full, "iloc") else full[:, chosen]
        names = [names[i] for i in chosen]
    scoring = scoring or scoring_for(kind)
    base = check_scoring(model, scoring=scoring)
    total = 1 + len(names) * n_repeats
    tracker = _Tracker(total, progress, open_display)

    def counted(estimator, X_, y_):
        score = base(model, X_ if full is None else _put_back(full, chosen, X_), y_)
        tracker.tick()
        return score

    started = time.perf_counter()
    try:
        result = sk_permutation_importance(model, X, y, scoring=counted, n_repeats=n_repeats,
                                           random_state=random_state)
    finally:
        tracker.close()
    record = {
        "features": names,
        "n_features": len(names) if chosen is None else len(feature_names(model, full)),
        "features_chosen": how,
        "mean": result.importances_mean,
        "std": result.importances_std,
        "scoring": scoring,
        "n_rows": len(y),
        "n_repeats": n_repeats,
        "seconds": time.perf_counter() - started,
    }
    return record, None


def _chosen_features(model: Any, n_features: int, max_features: int | None,
                     random_state: int | None) -> tuple[list[int] | None, str | None]:
    """Positions of the features to permute (None: all of them), and how they were chosen."""
    if max_features is None or n_features <= max_features:
        return None, None
    own = getattr(model, "feature_importances_", None)
    how = "the model's most important by its feature_importances_"
    if own is None and getattr(model, "coef_", None) is not None:
        own = np.abs(np.atleast_2d(np.asarray(model.coef_, dtype=float))).sum(axis=0)
        how = "the model's largest coefficients"
    try:
        own = np.asarray(own, dtype=float).reshape(-1) if own is not None else None
    except (TypeError, ValueError):
        own = None
    if own is not None and len(own) == n_features and np.isfinite(own).all():
        # A stable sort, so ties keep the columns' order; the chosen keep it too.
        top = np.argsort(-own, kind="stable")[:max_features]
    else:
        top = np.random.default_rng(random_state).choice(n_features, max_features, replace=False)
        how = "a random choice (the model ranks no input columns itself)"
    return sorted(int(i) for i in top), how


def _put_back(full: Any, chosen: list[int], part: Any) -> Any:
    """``full`` with its ``chosen`` columns replaced by ``part``'s, in place (the scorer is
    called once at a time, so one buffer serves every call)."""
    if hasattr(full, "iloc"):
        for k, position in enumerate(chosen):
            full.isetitem(position, part.iloc[:, k].to_numpy())
    else:
        full[:, chosen] = part
    return full


class _Tracker:
    """Counts scorer calls and drives a progress display once the work looks slow."""

    def __init__(self, total: int, progress: bool | Progress | None,
                 open_display: OpenDisplay | None) -> None:
        self.total = total
        self.done = 0
        self.mode = progress
        self.started = time.perf_counter()
        self.report: Progress | None = progress if callable(progress) else None
        self.open_display = open_display
        self.bar = None

    def tick(self) -> None:
        self.done += 1
        if self.done == 1 and self.mode is None:
            per_call = time.perf_counter() - self.started
            if per_call * (self.total - 1) > SLOW_S:
                self._open_bar()
        elif self.done == 1 and self.mode is True:
            self._open_bar()
        if self.report is not None:
            self.report(self.done, self.total)

    def _open_bar(self) -> None:
        if self.open_display is None:
            return
        self.bar = self.open_display(self.total, "permutation importance")
        self.report = self.bar.update

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
