"""``%mlops evaluate MODEL X Y [--name N]``: evaluate notebook variables, return the result.

MODEL, X and Y are names of variables in the notebook, looked up in the user namespace by
dictionary (never ``eval``), so ``%mlops evaluate clf X_test y_test`` evaluates exactly the
objects those names hold.
"""

from __future__ import annotations

from typing import Any

from IPython.core.error import UsageError


def _lookup(namespace: dict[str, Any], name: str, role: str) -> Any:
    if not name.isidentifier():
        raise UsageError(
            f"%mlops evaluate takes variable names; {role} {name!r} is not one. Assign the "
            "value to a variable first."
        )
    try:
        return namespace[name]
    except KeyError:
        raise UsageError(
            f"%mlops evaluate: no variable {name!r} ({role}) in the notebook."
        ) from None


def run(shell, args) -> Any:
    """Look MODEL, X and Y up and return ``evaluate(...)``'s EvaluationResult."""
    from ..evaluation import evaluate

    namespace = shell.user_ns
    model = _lookup(namespace, args.model, "MODEL")
    X = _lookup(namespace, args.X, "X")
    y = _lookup(namespace, args.y, "Y")
    return evaluate(model, X, y, name=args.name, model_uri=args.model_uri,
                    importance=not args.no_importance)
