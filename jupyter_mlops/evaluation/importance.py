"""What drives the predictions: scikit-learn's permutation importance on a bounded sample.

Permutation importance predicts ``1 + n_features × n_repeats`` times, so it runs on at most
``max_rows`` rows drawn at random (seeded). The scorer is wrapped to count its calls: after
the first one the remaining time is known, and a progress bar is shown when it exceeds
``SLOW_S`` seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from .inputs import feature_names, sample_rows

SLOW_S = 2.0
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
                           ) -> tuple[dict | None, str | None]:
    """``(importance record, None)``, or ``(None, why it was skipped)``.

    ``progress``: False never reports, a callable receives ``(done, total)``, None or True
    show a display made by ``open_display`` (when slow, or at once for True); computing
    never draws one itself."""
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
    scoring = scoring or scoring_for(kind)
    base = check_scoring(model, scoring=scoring)
    total = 1 + len(names) * n_repeats
    tracker = _Tracker(total, progress, open_display)

    def counted(estimator, X_, y_):
        score = base(estimator, X_, y_)
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
        "mean": result.importances_mean,
        "std": result.importances_std,
        "scoring": scoring,
        "n_rows": len(y),
        "n_repeats": n_repeats,
        "seconds": time.perf_counter() - started,
    }
    return record, None


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
