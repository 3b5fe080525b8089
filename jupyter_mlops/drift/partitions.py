"""A Dask column prepared exactly as one pandas column would be: per-partition summaries
combined without loss.

Each partition is prepared on its worker as a profile prepares a reference column
(:func:`.kinds.prepare_reference`: numbers sorted, anything else counted). The client
merges them: sorted runs into one sorted array (a linear merge), counts by key in order of
first appearance. The result is the very ``Side`` the single-machine path builds, so every
test of :mod:`.stattests` (Kolmogorov–Smirnov, Wasserstein, PSI, chi-square, Anderson,
Cramér–von Mises...) and every verdict is the same to the last bit, not an estimate. The
cost: the client holds one column's sorted values (both sets) while that column is tested.
"""

from __future__ import annotations

from typing import Any

from .kinds import (
    _DATETIME, _EMPTY, _FLOAT, _INT, _MIXED, _NUMBERS, _OTHER, Side, StoredSide,
    prepare_categories, prepare_reference,
)


def _prepare(part: Any, name: str, as_text: bool) -> StoredSide:
    if as_text:
        return StoredSide(_MIXED, str(part.dtype), prepare_categories(part, as_text=True))
    return prepare_reference(name, part)


def _storage(classes: set[str]) -> str:
    """The class pandas would infer for the whole column from its partitions' classes."""
    classes = classes - {_EMPTY}
    if not classes:
        return _EMPTY
    if len(classes) == 1:
        return next(iter(classes))
    if classes <= set(_NUMBERS):
        return _FLOAT
    return _MIXED


def merge_sides(pieces: list[StoredSide], storage: str, dtype: str) -> StoredSide:
    """One column's partitions, merged in partition order."""
    import numpy as np

    n_rows = sum(p.side.n_rows for p in pieces)
    n_missing = sum(p.side.n_missing for p in pieces)
    if storage in _NUMBERS:
        runs = [p.side.values for p in pieces if p.side.values is not None]
        both = np.concatenate(runs) if runs else np.zeros(0)
        # Sorted runs: the stable sort (timsort) merges them in one pass.
        values = np.sort(both, kind="stable")
        side = Side(n_rows=n_rows, n_missing=n_missing, values=values,
                    integer=storage == _INT)
    elif storage in (_DATETIME, _OTHER, _EMPTY):
        side = Side(n_rows=n_rows, n_missing=n_rows if storage == _EMPTY else n_missing)
    else:
        counts: dict[Any, int] = {}
        for piece in pieces:
            if piece.side.keys is None:
                continue
            for key, count in zip(piece.side.keys.tolist(), piece.side.counts.tolist()):
                counts[key] = counts.get(key, 0) + count
        keys = np.empty(len(counts), dtype=object)
        keys[:] = list(counts)
        side = Side(n_rows=n_rows, n_missing=n_missing, keys=keys,
                    counts=np.fromiter(counts.values(), dtype=np.int64, count=len(counts)))
    return StoredSide(storage=storage, dtype=dtype, side=side)


def stored_side(series: Any, name: str, client: Any) -> StoredSide:
    """The Dask ``series`` prepared as ``prepare_reference`` prepares a pandas column."""
    from ..cluster import ordered

    parts = series.to_delayed()
    pieces = list(ordered(_prepare, parts, client, name, False))
    storage = _storage({p.storage for p in pieces})
    if storage == _MIXED and len({p.storage for p in pieces} - {_EMPTY}) > 1:
        # pandas reads the whole column as mixed: every partition compared as text.
        pieces = list(ordered(_prepare, parts, client, name, True))
    return merge_sides(pieces, storage, str(series.dtype))
