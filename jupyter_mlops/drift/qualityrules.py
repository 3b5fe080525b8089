"""The rules that turn data-quality numbers into verdicts, shared by the pandas checks
(:mod:`.quality`) and the Dask ones (:mod:`.quality_partitions`), so that both give the
same verdicts on the same data."""

from __future__ import annotations

from typing import Any

MISSING_SHARE = 0.05  # without a reference, the share of missing cells allowed
ROW_COUNT_TOLERANCE = 0.1  # with one, how far the row count may move (Evidently's ±10 %)


def numeric(series: Any) -> bool:
    """A column of numbers (bools are categories here)."""
    import pandas as pd

    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def verdicts(numbers: dict[str, float], rows: int, n_columns: int, summary: Any,
             reference: tuple[dict[str, float], int, int, Any] | None = None,
             column_check: Any = None) -> list[tuple]:
    """The checks' rows, from the dataset ``numbers`` and column ``summary`` of the data
    and, when there is one, ``reference`` = (numbers, rows, columns, summary) of the
    reference. ``column_check(column, reference_row)`` gives a column's range or category
    check: ``("out_of_range", count)``, ``("new_categories", sorted new values)`` or None."""
    checks = []
    if reference is None:
        for name, value in numbers.items():
            limit = MISSING_SHARE if name == "missing_share" else 0
            checks.append((name, "", value, f"≤ {limit}", value <= limit))
        return checks
    ref_numbers, ref_rows, ref_n_columns, ref_summary = reference
    for name, value in numbers.items():
        limit = ref_numbers[name]
        checks.append((name, "", value, f"≤ {limit:g} (reference)", value <= limit + 1e-12))
    low, high = ref_rows * (1 - ROW_COUNT_TOLERANCE), ref_rows * (1 + ROW_COUNT_TOLERANCE)
    checks.append(("row_count", "", rows, f"{low:g}–{high:g} (reference ±10 %)",
                   low <= rows <= high))
    checks.append(("column_count", "", n_columns, f"= {ref_n_columns} (reference)",
                   n_columns == ref_n_columns))
    by_name = ref_summary.set_index("column")
    for row in summary.itertuples(index=False):
        if row.column not in by_name.index:
            continue
        ref = by_name.loc[row.column]
        checks.append(("column_missing_share", row.column, row.missing_share,
                       f"≤ {ref['missing_share']:g} (reference)",
                       row.missing_share <= ref["missing_share"] + 1e-12))
        found = column_check(row.column, ref)
        if found is None:
            continue
        kind, value = found
        if kind == "out_of_range":
            checks.append((kind, row.column, value,
                           f"0 outside [{ref['min']:g}, {ref['max']:g}] (reference)",
                           value == 0))
        else:
            checks.append((kind, row.column, len(value),
                           "0 values unseen in the reference" + (
                               f" (new: {', '.join(value[:5])})" if value else ""),
                           not value))
    return checks
