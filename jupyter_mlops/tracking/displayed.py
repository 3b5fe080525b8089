"""The number a cell displays last, when a metric function computed it, as a metric.

Notebooks end a training cell with ``root_mean_squared_error(y_val, y_pred)`` and read the
number; nothing binds it. That value becomes a metric under the name MLflow's scikit-learn
autolog gives its post-training metrics: ``<function>_<X>``, where ``X`` is the variable
the predictions were made from (``y_pred = model.predict(X_val)`` gives
``root_mean_squared_error_X_val``), ``<Class>_score_<X>`` for ``model.score(X, y)`` of a
trained model of any family (a CatBoost or XGBoost model too), and
``<function>-2_<X>`` for a second call of the same function in one run. The predictions
may come from an earlier cell. When no ``X`` can be told, the name is the function's alone.

Metric functions are those of ``sklearn.metrics`` (as MLflow patches them), found by what
the call's name refers to in the namespace, never by calling anything.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from . import storage
from .cellnames import DisplayedCall

# As MLflow: scorer factories are not metrics.
_NOT_METRICS = frozenset({"check_scoring", "get_scorer", "make_scorer", "get_scorer_names"})
_MISSING = object()


def _loggable(value: Any) -> bool:
    """MLflow's test: an int, a float or a numpy number, not a bool."""
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    numpy = sys.modules.get("numpy")
    return numpy is not None and isinstance(value, numpy.number) and not isinstance(
        value, numpy.bool_)


def _resolve(func: tuple[str, ...], namespace: Mapping[str, Any]) -> Any:
    value = namespace.get(func[0], _MISSING)
    for part in func[1:]:
        if value is _MISSING or isinstance(value, type):
            return _MISSING
        value = getattr(value, part, _MISSING)
    return value


def metric_function(func: tuple[str, ...], namespace: Mapping[str, Any]) -> str | None:
    """The name of the ``sklearn.metrics`` function ``func`` refers to, else None."""
    if "sklearn.metrics" not in sys.modules:
        return None
    target = _resolve(func, namespace)
    name = getattr(target, "__name__", None)
    module = getattr(target, "__module__", None) or ""
    if (target is _MISSING or isinstance(target, type) or not callable(target)
            or not module.startswith("sklearn.metrics") or not isinstance(name, str)
            or name in _NOT_METRICS or name.startswith("plot_")):
        return None
    return name


def _data_name(call: DisplayedCall, predictions: Mapping[str, str]) -> str | None:
    for name, predicted_from in call.args:
        if predicted_from is not None:
            return predicted_from
        if name is not None and name in predictions:
            return predictions[name]
    return None


def displayed_metrics(calls: list[DisplayedCall], value: Any, namespace: Mapping[str, Any],
                      predictions: Mapping[str, str]) -> dict[str, float]:
    """MLflow-named metrics for the metric calls among ``calls`` whose displayed ``value``
    (the cell's result; a tuple when it displayed several) is a number."""
    from .frameworks import family_of

    found: dict[str, float] = {}
    calls_of: dict[str, int] = {}
    for call in calls:
        if call.position is None:
            shown = value
        elif isinstance(value, tuple) and call.position < len(value):
            shown = value[call.position]
        else:
            continue
        if not _loggable(shown):
            continue
        name = metric_function(call.func, namespace)
        data = _data_name(call, predictions)
        if name is None and len(call.func) == 2 and call.func[1] == "score":
            model = namespace.get(call.func[0])
            # Any trained model with a score method (CatBoost, XGBoost, LightGBM too).
            if model is None or family_of(model) is None or not callable(
                    getattr(model, "score", None)):
                continue
            name = f"{type(model).__name__}_score"
            data = call.args[0][0] if call.args else None
        if name is None:
            continue
        index = calls_of.get(name, 0)
        calls_of[name] = index + 1
        key = name if index == 0 else f"{name}-{index + 1}"
        found[f"{key}_{data}" if data else key] = float(shown)
    return found


def log_displayed(store: Any, run_id: str, calls: list[DisplayedCall], value: Any,
                  namespace: Mapping[str, Any], predictions: Mapping[str, str]) -> int:
    """Log ``displayed_metrics`` at step 0, leaving keys the run has alone; returns how many."""
    import time

    found = displayed_metrics(calls, value, namespace, predictions)
    if not found:
        return 0
    existing = {k for (k,) in store.query(
        "SELECT key FROM latest_metrics WHERE run_id = ?", (run_id,))}
    rows = [(key, number, 0) for key, number in found.items() if key not in existing]
    if rows:
        storage.log_metrics(store, run_id, rows, time.time())
    return len(rows)
