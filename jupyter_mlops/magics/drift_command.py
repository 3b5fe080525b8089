"""``%mlops drift REF CUR``: a drift report between two DataFrames of the notebook.

``REF`` and ``CUR`` (and ``--estimator VAR``) are variable names, looked up in the user
namespace by dictionary, never evaluated. The subcommand returns the DriftReport, so
``report = %mlops drift train new`` keeps it and a bare call displays the dashboard.
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import ValidationError, shorten

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")


def _lookup(namespace: dict[str, Any], name: str, what: str) -> Any:
    if not _NAME.match(name):
        raise ValidationError(
            f"{what} must be the name of a variable; got {shorten(name)}. Assign the data to "
            "a variable first."
        )
    try:
        return namespace[name]
    except KeyError:
        raise ValidationError(
            f"No variable {name!r} in the notebook ({what}); run the cell that defines it."
        ) from None


def _split_columns(values: list[str] | None) -> list[str] | None:
    if values is None:
        return None
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _per_column(values: list[str] | None, option: str, convert) -> Any:
    """``["ks"]`` → ``"ks"``; ``["a=ks", "b=psi"]`` → ``{"a": "ks", "b": "psi"}``."""
    if not values:
        return None
    pairs = [v for v in values if "=" in v]
    if pairs and len(pairs) != len(values) or not pairs and len(values) > 1:
        raise ValidationError(
            f"{option} takes one value for every column, or COLUMN=VALUE pairs; got "
            f"{shorten(values)}."
        )
    if not pairs:
        return convert(values[0], option)
    result = {}
    for pair in pairs:
        column, _, value = pair.partition("=")
        result[column.strip()] = convert(value.strip(), option)
    return result


def _text(value: str, option: str) -> str:
    return value


def _number(value: str, option: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ValidationError(f"{option} takes a number; got {shorten(value)}.") from None


def run(shell, args) -> Any:
    """Look REF and CUR up in the namespace, compute the report and return it."""
    from ..drift import drift_report

    namespace = shell.user_ns
    reference = _lookup(namespace, args.reference, "REF")
    current = _lookup(namespace, args.current, "CUR")
    model: Any = args.model
    if args.estimator is not None:
        model = _lookup(namespace, args.estimator, "--estimator")
    return drift_report(
        reference, current,
        columns=_split_columns(args.columns),
        stattest=_per_column(args.stattest, "--stattest", _text),
        threshold=_per_column(args.threshold, "--threshold", _number),
        drift_share=args.drift_share,
        model=model,
        model_uri=args.model if args.estimator is not None else None,
        target=args.target,
        save_profile=args.save_profile,
    )
