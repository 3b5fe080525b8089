"""Every metric ``evaluate`` reports, in display order, and which way is better."""

from __future__ import annotations

#: metric name -> True when a higher value is better.
HIGHER_IS_BETTER: dict[str, bool] = {
    "accuracy": True,
    "balanced_accuracy": True,
    "precision_macro": True,
    "recall_macro": True,
    "f1_macro": True,
    "precision_weighted": True,
    "recall_weighted": True,
    "f1_weighted": True,
    "roc_auc": True,
    "average_precision": True,
    "log_loss": False,
    "brier_score": False,
    "mae": False,
    "mse": False,
    "rmse": False,
    "r2": True,
    "mape": False,
    "median_ae": False,
    "max_error": False,
    "explained_variance": True,
}

CLASSIFICATION_METRICS = (
    "accuracy", "balanced_accuracy", "precision_macro", "recall_macro", "f1_macro",
    "precision_weighted", "recall_weighted", "f1_weighted", "roc_auc", "average_precision",
    "log_loss", "brier_score",
)
REGRESSION_METRICS = (
    "mae", "mse", "rmse", "r2", "mape", "median_ae", "max_error", "explained_variance",
)
#: The metrics that need class probabilities (``predict_proba``).
PROBABILITY_METRICS = ("roc_auc", "average_precision", "log_loss", "brier_score")


def higher_is_better(metric: str) -> bool | None:
    """True, False, or None for a metric whose direction is unknown (such as a custom one)."""
    return HIGHER_IS_BETTER.get(metric)


def ordered(names) -> list[str]:
    """``names`` with the known metrics first, in their display order, then the others."""
    known = [m for m in HIGHER_IS_BETTER if m in names]
    return known + sorted(n for n in names if n not in HIGHER_IS_BETTER)
