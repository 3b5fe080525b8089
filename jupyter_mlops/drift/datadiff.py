"""What changed between two versions of a dataset: rows, schema and column summaries.

Rows are matched by a key when one is given (added, removed, and changed: same key, other
values), else by their whole content (a row counts as added or removed as many times as
it occurs more often on one side). The schema compares columns and dtypes; the summaries
compare each common column's count, missing values, mean, spread and range (numbers) or
distinct values (others). ``.drift()`` is the drift report of the same pair.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from typing import Any

from ..errors import ValidationError, shorten


@dataclass
class DataDiff:
    """``added``, ``removed`` and ``changed`` rows; ``schema`` and ``columns`` as
    DataFrames; ``a`` and ``b`` the two frames compared."""

    a: Any = field(repr=False)
    b: Any = field(repr=False)
    key: list[str] | None
    added: Any = field(repr=False)
    removed: Any = field(repr=False)
    changed: Any = field(repr=False)
    schema: Any = field(repr=False)
    columns: Any = field(repr=False)
    names: tuple[str, str] = ("a", "b")

    @property
    def counts(self) -> dict[str, int | None]:
        return {"rows_a": len(self.a), "rows_b": len(self.b), "added": len(self.added),
                "removed": len(self.removed),
                "changed": None if self.changed is None else len(self.changed)}

    @property
    def same(self) -> bool:
        return (not len(self.added) and not len(self.removed)
                and (self.changed is None or not len(self.changed)) and self.schema.empty)

    def to_frame(self) -> Any:
        """The per-column comparison (the summary shifts), one row a column."""
        return self.columns

    def drift(self, **options: Any) -> Any:
        """The drift report of the same pair, over their common columns (stored as any)."""
        from .report import drift_report

        common = [c for c in self.a.columns if c in self.b.columns and c not in (self.key or [])]
        return drift_report(self.a[common], self.b[common], **options)

    def __repr__(self) -> str:
        counts = ", ".join(f"{k} {v}" for k, v in self.counts.items() if v is not None)
        return f"<DataDiff {self.names[0]} → {self.names[1]}: {counts}; " \
               f"{len(self.schema)} schema changes>"

    def _repr_html_(self) -> str:
        from ..dashboards.datadiff import datadiff_html

        return datadiff_html(self)


def as_frame(value: Any) -> tuple[Any, str]:
    """A DataFrame from a DataFrame, a dataset reference (see ``get_dataset``) or a CSV or
    Parquet file path, with a name for it."""
    import pandas as pd

    if isinstance(value, pd.DataFrame):
        return value, "frame"
    if isinstance(value, pd.Series):
        return value.to_frame(), str(value.name)
    if isinstance(value, (str, os.PathLike)):
        text = os.fspath(value)
        if os.path.isfile(text):
            with open(text, "rb") as handle:
                return _read(handle.read(), text), text
        from ..tracking.getdata import get_dataset, resolve
        from ..store.current import get_store

        found = resolve(get_store(), text)
        data = get_dataset(text)
        if found.kind == "file":
            return _read(data, found.name or ""), text
        if found.kind == "series":
            return data.to_frame(), text
        if found.kind == "dataframe":
            return data, text
        return pd.DataFrame(data), text
    raise ValidationError(f"diff_datasets compares DataFrames, dataset references or CSV/"
                          f"Parquet paths; got {type(value).__name__} {shorten(value)}.")


def _read(data: bytes, name: str) -> Any:
    import pandas as pd

    if name.lower().endswith((".parquet", ".pq")):
        return pd.read_parquet(io.BytesIO(data))
    if name.lower().endswith(".feather"):
        return pd.read_feather(io.BytesIO(data))
    return pd.read_csv(io.BytesIO(data))


def _schema(a: Any, b: Any) -> Any:
    import pandas as pd

    rows = []
    for column in a.columns:
        if column not in b.columns:
            rows.append((column, str(a[column].dtype), None, "removed"))
        elif str(a[column].dtype) != str(b[column].dtype):
            rows.append((column, str(a[column].dtype), str(b[column].dtype), "dtype"))
    rows += [(c, None, str(b[c].dtype), "added") for c in b.columns if c not in a.columns]
    return pd.DataFrame(rows, columns=["column", "dtype_a", "dtype_b", "change"])


def _summary(series: Any) -> dict[str, Any]:
    import pandas as pd

    out: dict[str, Any] = {"count": int(series.count()), "missing": int(series.isna().sum())}
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        out.update(mean=float(series.mean()) if out["count"] else float("nan"),
                   std=float(series.std()) if out["count"] > 1 else float("nan"),
                   min=series.min(), max=series.max())
    else:
        out["distinct"] = int(series.nunique())
    return out


def _columns(a: Any, b: Any) -> Any:
    import pandas as pd

    rows = []
    for column in [c for c in a.columns if c in b.columns]:
        left, right = _summary(a[column]), _summary(b[column])
        for stat in left:
            if stat in right:
                before, after = left[stat], right[stat]
                try:
                    delta = after - before
                except TypeError:
                    delta = None
                rows.append((column, stat, before, after, delta))
    return pd.DataFrame(rows, columns=["column", "stat", "a", "b", "delta"])


def _row_hashes(frame: Any, columns: list[str]) -> Any:
    import pandas as pd

    part = frame[columns]
    try:
        return pd.util.hash_pandas_object(part, index=False)
    except TypeError:
        return pd.util.hash_pandas_object(part.astype(str), index=False)


def _by_content(a: Any, b: Any, common: list[str]) -> tuple[Any, Any]:
    """Rows of ``b`` not matched in ``a`` and rows of ``a`` not matched in ``b``, as
    multisets of their common columns' content."""
    ha, hb = _row_hashes(a, common), _row_hashes(b, common)
    # The n-th occurrence of a content on each side pairs with the n-th on the other.
    ka = list(zip(ha.to_numpy(), ha.groupby(ha.to_numpy()).cumcount().to_numpy()))
    kb = list(zip(hb.to_numpy(), hb.groupby(hb.to_numpy()).cumcount().to_numpy()))
    in_a, in_b = set(ka), set(kb)
    added = b[[k not in in_a for k in kb]]
    removed = a[[k not in in_b for k in ka]]
    return added, removed


def _by_key(a: Any, b: Any, key: list[str], common: list[str]) -> tuple[Any, Any, Any]:
    import pandas as pd

    for side, frame in (("a", a), ("b", b)):
        missing = [k for k in key if k not in frame.columns]
        if missing:
            raise ValidationError(f"Key column {missing[0]!r} is not in dataset {side}; "
                                  f"its columns are {list(frame.columns)[:20]}.")
        if frame.duplicated(key).any():
            raise ValidationError(f"Key {key} is not unique in dataset {side}; pick columns "
                                  "that name one row each, or compare by content (key=None).")
    left, right = a.set_index(key), b.set_index(key)
    added = b[~b.set_index(key).index.isin(left.index)]
    removed = a[~a.set_index(key).index.isin(right.index)]
    both = left.index.intersection(right.index)
    values = [c for c in common if c not in key]
    l_rows, r_rows = left.loc[both, values], right.loc[both, values]
    differs = ~((l_rows == r_rows) | (l_rows.isna() & r_rows.isna()))
    mask = differs.any(axis=1)
    changed = pd.DataFrame({
        "changed_columns": [
            [c for c, d in zip(values, row) if d] for row in differs[mask].to_numpy()]},
        index=both[mask.to_numpy()])
    for column in values:
        if differs[column].any():
            changed[f"{column}_a"] = l_rows.loc[mask, column]
            changed[f"{column}_b"] = r_rows.loc[mask, column]
    return added, removed, changed.reset_index()


def diff_datasets(a: Any, b: Any, key: str | list[str] | None = None) -> DataDiff:
    """Rows added, removed and changed from ``a`` to ``b``, schema and dtype changes, and
    per-column summary shifts. ``a`` and ``b``: DataFrames, dataset references
    (``"churn@champion:train"``, ``"RUN:data/train.csv"``) or CSV/Parquet paths.

    Examples
    --------
    >>> import jupyter_mlops as mlops
    >>> diff = mlops.diff_datasets("churn@champion:data/train.csv", "data/train.csv",
    ...                            key="customer_id")           # doctest: +SKIP
    >>> diff.counts                                              # doctest: +SKIP
    {'rows_a': 300, 'rows_b': 320, 'added': 20, 'removed': 0, 'changed': 3}
    """
    (fa, name_a), (fb, name_b) = as_frame(a), as_frame(b)
    keys = [key] if isinstance(key, str) else list(key) if key else None
    common = [c for c in fa.columns if c in fb.columns]
    if keys:
        added, removed, changed = _by_key(fa, fb, keys, common)
    else:
        (added, removed), changed = _by_content(fa, fb, common), None
    return DataDiff(fa, fb, keys, added, removed, changed, _schema(fa, fb),
                    _columns(fa, fb), (name_a, name_b))
