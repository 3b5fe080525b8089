"""Which swept params moved the metric: a simple ranking over a sweep's finished trials.

A numeric param scores the absolute Spearman rank correlation with the metric (monotone
effects, whatever the scale); a categorical one the correlation ratio η (how much of the
metric's variance lies between its values). Both are in [0, 1]; with fewer than three
finished trials, or a param that never changed, there is nothing to rank.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any


def _ranks(values: list[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2  # ties share their mean rank
        i = j + 1
    return ranks


def _pearson(x: list[float], y: list[float]) -> float | None:
    n = len(x)
    mx, my = sum(x) / n, sum(y) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y))
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    if sxx == 0 or syy == 0:
        return None
    return sxy / math.sqrt(sxx * syy)


def _eta(groups: list[Any], y: list[float]) -> float | None:
    mean = sum(y) / len(y)
    total = sum((v - mean) ** 2 for v in y)
    if total == 0 or len(set(map(repr, groups))) < 2:
        return None
    by: dict[str, list[float]] = {}
    for g, v in zip(groups, y):
        by.setdefault(repr(g), []).append(v)
    between = sum(len(vs) * (sum(vs) / len(vs) - mean) ** 2 for vs in by.values())
    return math.sqrt(between / total)


def param_importance(trials: Iterable[Any], names: Iterable[str]) -> dict[str, float]:
    """``name -> score`` in [0, 1], highest first, from trials with ``.params`` and a finite
    ``.value``."""
    scored = [t for t in trials if t.value is not None and math.isfinite(t.value)]
    if len(scored) < 3:
        return {}
    y = [t.value for t in scored]
    found: dict[str, float] = {}
    for name in names:
        values = [t.params.get(name) for t in scored]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            rho = _pearson(_ranks([float(v) for v in values]), _ranks(y))
            score = None if rho is None else abs(rho)
        else:
            score = _eta(values, y)
        if score is not None:
            found[name] = round(score, 6)
    return dict(sorted(found.items(), key=lambda item: -item[1]))


__all__ = ["param_importance"]
