"""Model evaluation: the numbers a reviewer asks for, the standard curves, what drives the
predictions, and a comparison with the previous version, stored with the run.

``evaluate(model, X, y)`` calls each prediction method once and computes every metric and
curve from those predictions (values equal to scikit-learn's functions); it stores the
result as strict JSON and links it to the active run, the model URI and the fingerprint of
the data. Figures are drawn only when shown, by ``jupyter_mlops.dashboards.evaluation``.

Importing this package loads neither numpy, pandas, scikit-learn nor matplotlib.
"""

from .api import evaluate, get_evaluation
from .compare import EvaluationComparison, compare_evaluations
from .directions import HIGHER_IS_BETTER
from .result import EvaluationResult

__all__ = [
    "HIGHER_IS_BETTER", "EvaluationComparison", "EvaluationResult", "compare_evaluations",
    "evaluate", "get_evaluation",
]
