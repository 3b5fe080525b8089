"""``EvaluationResult``: the numbers of one evaluation, as stored, and its lazy figures."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

from ..errors import MLOpsError


@dataclass(eq=False, repr=False)
class EvaluationResult:
    """One evaluation of a model on held-out data.

    ``metrics`` maps metric names to floats; ``details`` holds the per-class table, the
    confusion matrix, the curve data, the permutation importance, ``skipped`` (metric →
    why it was not computed) and ``notes``. ``figures`` is a mapping of figure names to
    matplotlib Figures, each drawn the first time it is asked for. In a notebook the result
    shows as a tabbed widget, with a static HTML and PNG copy for frontends without widgets.

    Examples
    --------
    >>> result = evaluate(clf, X_test, y_test, name="holdout")   # doctest: +SKIP
    >>> result.task, round(result.metrics["accuracy"], 3)         # doctest: +SKIP
    ('binary', 0.952)
    >>> sorted(result.figures)                                    # doctest: +SKIP
    ['calibration_curve', 'confusion_matrix', ...]
    """

    evaluation_id: str
    task: str
    metrics: dict[str, float]
    details: dict[str, Any]
    name: str | None = None
    model_uri: str | None = None
    run_id: str | None = None
    dataset_fingerprint: str | None = None
    target_fingerprint: str | None = None
    n_rows: int = 0
    created: float = 0.0
    #: figure name -> sha256 of the PNG kept in the store once the figure was drawn.
    stored_figures: dict[str, str] = field(default_factory=dict)
    _store: Any = field(default=None, compare=False)
    _figure_set: Any = field(default=None, compare=False)
    _warned: bool = field(default=False, compare=False)

    # -- what was computed ---------------------------------------------------------------

    @property
    def is_classification(self) -> bool:
        return self.task in ("binary", "multiclass")

    @property
    def skipped(self) -> dict[str, str]:
        """Metrics that were not computed, each with the reason."""
        return self.details.get("skipped", {})

    @property
    def notes(self) -> list[str]:
        """What a reader of the numbers should know (undefined ratios, absent classes...)."""
        return self.details.get("notes", [])

    @property
    def labels(self) -> list[Any] | None:
        """Class labels, sorted (classification only)."""
        return self.details.get("labels")

    @property
    def label(self) -> str:
        """A short human name: the evaluation's name and model URI, else its id."""
        named = " · ".join(part for part in (self.name, self.model_uri) if part)
        return named or f"evaluation {self.evaluation_id[:8]}"

    @property
    def per_class(self):
        """Precision, recall, F1, support and predicted count per class, as a DataFrame."""
        table = self.details.get("per_class")
        if table is None:
            return None
        import pandas as pd

        return pd.DataFrame(table).set_index("label")

    @property
    def confusion_matrix(self):
        """Counts as a DataFrame: one row per true label, one column per predicted label."""
        matrix = self.details.get("confusion_matrix")
        if matrix is None:
            return None
        import pandas as pd

        index = pd.Index(self.labels, name="actual")
        return pd.DataFrame(matrix, index=index, columns=pd.Index(self.labels, name="predicted"))

    @property
    def importance(self):
        """Permutation importance per feature (mean and std of the score drop), or None."""
        record = self.details.get("importance")
        if record is None:
            return None
        import pandas as pd

        frame = pd.DataFrame({"feature": record["features"], "importance_mean": record["mean"],
                              "importance_std": record["std"]})
        return frame.sort_values("importance_mean", ascending=False, kind="stable").reset_index(
            drop=True)

    # -- figures and display -------------------------------------------------------------

    @property
    def figures(self):
        """Figure name → matplotlib Figure, each drawn when first asked for."""
        if self._figure_set is None:
            from .figures import FigureSet

            self._figure_set = FigureSet(self)
        return self._figure_set

    def save_figures(self) -> dict[str, str]:
        """Draw every figure now and keep its PNG in the store; returns name → sha256."""
        for name in self.figures:
            self.figures.png(name)
        return dict(self.stored_figures)

    def keep_figure(self, figure: str, png: bytes) -> None:
        """Store a drawn figure's PNG with this evaluation (and its run). Display never
        fails because of it: a store that cannot be written gets one warning."""
        if self._store is None or getattr(self._store, "read_only", False):
            return
        from .storage import add_figure

        artifact = f"evaluation/{self.name or self.evaluation_id[:8]}/{figure}.png"
        try:
            self.stored_figures[figure] = add_figure(
                self._store, self.evaluation_id, self.run_id, artifact, figure, png)
        except MLOpsError as exc:
            if not self._warned:
                self._warned = True
                warnings.warn(f"The evaluation's figures were shown but not stored: {exc}",
                              stacklevel=3)

    def to_widget(self):
        """An ipywidgets Tab: Metrics | Curves | Confusion (or Residuals) | Importance."""
        from ..dashboards.evaluation import evaluation_widget

        return evaluation_widget(self)

    def _repr_html_(self) -> str:
        from ..dashboards.evaluation import evaluation_html

        return evaluation_html(self)

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict[str, Any]:
        from ..dashboards.evaluation import mimebundle

        return mimebundle(self)

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v:.4g}" for k, v in list(self.metrics.items())[:4])
        name = f" {self.name!r}" if self.name else ""
        return (f"<EvaluationResult {self.evaluation_id[:8]}{name} {self.task} "
                f"n={self.n_rows}: {shown}>")
