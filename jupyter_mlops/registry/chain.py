"""Several fitted objects registered as one model that predicts through them in order.

Notebooks often keep a model as a tuple: the course's ``(dv, lr)``, a DictVectorizer and the
regression that reads its output. Neither alone scores raw records, so the registry takes
them together, as ``register_model((dv, lr), name)`` or ``%mlops register NAME --var dv,lr``,
and keeps them as a scikit-learn ``Pipeline`` of the fitted steps: it predicts, serves and
exports as any other model. The replay rebuilds the same pipeline from the same names.
"""

from __future__ import annotations

import re
import sys
from typing import Any

from ..errors import ValidationError

_STEP_NAME = re.compile(r"[^A-Za-z0-9_]")


def is_chain(model: Any) -> bool:
    return isinstance(model, (tuple, list)) and len(model) >= 2


def variable_parts(variable: str | None) -> list[str]:
    """``"dv,lr"`` → ``["dv", "lr"]``."""
    return [part.strip() for part in (variable or "").split(",") if part.strip()]


def as_pipeline(parts: list[Any], names: list[str] | None = None) -> Any:
    """A ``Pipeline`` of the fitted ``parts``, in order; refused, with what to do, when they
    are not all scikit-learn estimators (the last one predicting)."""
    kinds = ", ".join(type(p).__name__ for p in parts)
    base = sys.modules.get("sklearn.base")
    if base is None or not all(isinstance(p, base.BaseEstimator) for p in parts) or not all(
            hasattr(p, "transform") for p in parts[:-1]) or not hasattr(parts[-1], "predict"):
        raise ValidationError(
            f"A model that is a tuple ({kinds}) is registered as one pipeline only when all "
            "are scikit-learn estimators, each but the last with transform and the last with "
            "predict; register the object that predicts, or wrap them in a class of yours "
            "with a predict method."
        )
    from sklearn.pipeline import Pipeline

    steps, seen = [], set()
    for i, part in enumerate(parts):
        name = _STEP_NAME.sub("_", (names or [])[i] if names and i < len(names) else
                              type(part).__name__.lower()) or f"step{i}"
        while name in seen:
            name = f"{name}_{i}"
        seen.add(name)
        steps.append((name, part))
    return Pipeline(steps)


def chain_model(store: Any, parts: Any, variable: str | None, run_id: str | None
                ) -> tuple[Any, str | None, Any]:
    """The pipeline registered for ``parts``, its variable (``"dv,lr"``) and the execution
    it comes from: the latest of the executions that made its parts."""
    from .origin import find_origin, refuse_unfitted, variable_of

    parts = list(parts)
    names = variable_parts(variable)
    if len(names) != len(parts):
        names = [variable_of(part) or "" for part in parts]
    origins = []
    for part, name in zip(parts, names):
        origin = find_origin(store, part, name) if run_id is None and name else None
        refuse_unfitted(part, f"Model {name!r}" if name else f"Model part "
                        f"{type(part).__name__}", origin)
        origins.append(origin)
    known = [o for o in origins if o is not None]
    latest = max(known, key=lambda o: o.cell) if known else None
    complete = all(names)
    return (as_pipeline(parts, names if complete else None),
            ",".join(names) if complete else None, latest)
