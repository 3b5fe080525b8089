"""``data_quality`` on a Dask DataFrame: every number of the single-machine check, from
per-partition summaries combined without loss.

Per column, each partition sends its non-missing values sorted (numbers) or counted (any
other value); the client merges them, so counts, distinct values, min, max, quartiles, the
most common value and the out-of-range count are exact; mean and std are computed from the
merged values (the same to rounding). Duplicated rows: every row's hash is gathered, and
only rows whose hash occurs twice are fetched and compared, so a hash collision never
counts as a duplicate. Duplicated columns: pairs equal in every partition.
"""

from __future__ import annotations

from typing import Any


def _piece(part: Any, numeric: Any) -> dict[str, Any]:
    import numpy as np

    present = part.dropna()
    piece: dict[str, Any] = {"n": len(part), "count": len(present)}
    if numeric(part):
        piece["values"] = np.sort(present.to_numpy())
    else:
        counts = present.value_counts(sort=False)
        piece["counts"] = dict(zip(counts.index.tolist(), counts.tolist()))
    return piece


def _mode_first(keys: list[Any]) -> Any:
    try:
        return sorted(keys)[0]
    except TypeError:
        return sorted(keys, key=str)[0]


def summarize(series: Any, name: Any, client: Any, numeric: Any,
              bounds: tuple[float, float] | None = None) -> tuple[dict[str, Any], Any]:
    """One column's summary row (as ``column_summary`` makes it), and for numbers how many
    values lie outside ``bounds`` (or, without bounds, the distinct values as text), for
    anything else its distinct values as text. The merged values are dropped here."""
    import numpy as np
    import pandas as pd

    from ..cluster import ordered

    pieces = list(ordered(_piece, series.to_delayed(), client, numeric))
    n = sum(p["n"] for p in pieces)
    count = sum(p["count"] for p in pieces)
    row: dict[str, Any] = {"column": name, "dtype": str(series.dtype), "count": count,
                           "missing": n - count, "missing_share": (n - count) / n if n else 0.0,
                           "distinct": 0, "empty": count == 0, "constant": False}
    for stat in ("min", "max", "mean", "std", "q25", "q50", "q75"):
        row[stat] = float("nan")
    if "values" in pieces[0]:
        values = np.sort(np.concatenate([p["values"] for p in pieces]), kind="stable")
        if values.size:
            starts = np.flatnonzero(np.concatenate(([True], values[1:] != values[:-1])))
            runs = np.diff(np.append(starts, values.size))
            distinct, top = int(starts.size), values[starts[int(np.argmax(runs))]]
            quartiles = np.quantile(values, [0.25, 0.5, 0.75])
            row.update(min=float(values[0]), max=float(values[-1]),
                       mean=float(np.mean(values)),
                       std=float(np.std(values, ddof=1)) if count > 1 else float("nan"),
                       q25=float(quartiles[0]), q50=float(quartiles[1]),
                       q75=float(quartiles[2]))
        else:
            distinct, top = 0, None
        if bounds is not None:
            extra = int(np.searchsorted(values, bounds[0], side="left")
                        + values.size - np.searchsorted(values, bounds[1], side="right"))
        else:
            extra = {str(v) for v in pd.unique(pd.Series(values)).astype(str)}
        extra = (True, extra)
    else:
        counts: dict[Any, int] = {}
        for piece in pieces:
            for key, c in piece["counts"].items():
                counts[key] = counts.get(key, 0) + c
        counts = {k: c for k, c in counts.items() if c > 0}
        distinct = len(counts)
        most = max(counts.values()) if counts else 0
        top = _mode_first([k for k, c in counts.items() if c == most]) if counts else None
        extra = (False, {str(k) for k in counts})
    row.update(distinct=distinct, empty=count == 0,
               constant=count > 0 and distinct + (1 if n > count else 0) == 1,
               most_common=None if top is None else str(top))
    return row, extra


def _hashes(part: Any) -> Any:
    import pandas as pd

    try:
        return pd.util.hash_pandas_object(part, index=False).to_numpy()
    except TypeError:
        return pd.util.hash_pandas_object(part.astype(str), index=False).to_numpy()


def _rows_hashed(part: Any, wanted: Any) -> Any:
    import numpy as np

    return part[np.isin(_hashes(part), wanted)]


def duplicated_rows(frame: Any, client: Any) -> int:
    import numpy as np
    import pandas as pd

    from ..cluster import ordered, share

    hashes = np.concatenate(list(ordered(_hashes, frame.to_delayed(), client)))
    values, counts = np.unique(hashes, return_counts=True)
    twice = values[counts > 1]
    if twice.size == 0:
        return 0
    rows = pd.concat(list(ordered(_rows_hashed, frame.to_delayed(), client,
                                  share(twice, client))))
    try:
        return int(rows.duplicated().sum())
    except TypeError:
        return int(rows.astype(str).duplicated().sum())


def _equal_pairs(part: Any) -> set[tuple[int, int]]:
    pairs = set()
    columns = list(part.columns)
    for j in range(len(columns)):
        for i in range(j):
            a, b = part.iloc[:, i], part.iloc[:, j]
            if a.dtype == b.dtype and a.equals(b):
                pairs.add((i, j))
    return pairs


def duplicated_columns(frame: Any, client: Any) -> list[str]:
    from ..cluster import ordered

    pairs = None
    for found in ordered(_equal_pairs, frame.to_delayed(), client):
        pairs = found if pairs is None else pairs & found
    columns = list(frame.columns)
    return [str(columns[j]) for j in range(len(columns))
            if any((i, j) in (pairs or set()) for i in range(j))]


def quality_parts(frame: Any, reference: Any, client: Any) -> tuple[Any, Any, list, int]:
    """``(summary, reference summary, checks, rows)`` for Dask frames, as ``data_quality``
    computes them for pandas ones."""
    import math

    import pandas as pd

    from .qualityrules import numeric as _numeric, verdicts

    def summaries(data, ranges=None):
        rows, extras = [], {}
        for name in data.columns:
            row, extra = summarize(data[name], name, client, _numeric,
                                   (ranges or {}).get(name))
            rows.append(row)
            extras[name] = extra
        return pd.DataFrame(rows), extras

    def numbers(data, summary):
        n_rows = int(summary["count"].iloc[0] + summary["missing"].iloc[0]) if len(summary) \
            else 0
        cells = n_rows * len(data.columns)
        return n_rows, {
            "missing_share": float(summary["missing"].sum() / cells) if cells else 0.0,
            "duplicated_rows": duplicated_rows(data, client),
            "duplicated_columns": len(duplicated_columns(data, client)),
            "constant_columns": int(summary["constant"].sum()),
            "empty_columns": int(summary["empty"].sum()),
        }

    if reference is None:
        summary, _extras = summaries(frame)
        rows, found = numbers(frame, summary)
        return summary, None, verdicts(found, rows, len(frame.columns), summary), rows
    ref_summary, ref_extras = summaries(reference)
    ref_rows, ref_found = numbers(reference, ref_summary)
    ranges = {r.column: (r.min, r.max) for r in ref_summary.itertuples(index=False)
              if not math.isnan(r.min)}
    summary, extras = summaries(frame, ranges)
    rows, found = numbers(frame, summary)

    def column_check(column: Any, ref: Any) -> tuple[str, Any] | None:
        (numeric, mine), (ref_numeric, theirs) = extras[column], ref_extras[column]
        if numeric and ref_numeric and not math.isnan(ref["min"]):
            return "out_of_range", mine
        if not numeric:
            return "new_categories", sorted(mine - theirs)
        return None

    checks = verdicts(found, rows, len(frame.columns), summary,
                      (ref_found, ref_rows, len(reference.columns), ref_summary), column_check)
    return summary, ref_summary, checks, rows
