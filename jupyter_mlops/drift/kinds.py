"""Column kinds, inferred the way Evidently infers them, and each column made ready to test.

Evidently (0.7) reads the kind from the current data: float columns are numeric; integer
columns are categorical when they hold at most 10 distinct values, else numeric; booleans
and pandas categoricals are categorical; text is categorical unless more than half of its
values are distinct (then it is free text); datetimes are not tested. We follow that so that
a report can be compared with Evidently's column by column, and go further where Evidently
gives up: nullable and unsigned integers count as integers, an object column of numbers is
numeric, and a column mixing types is compared as text (said so in its note) instead of
being dropped.

A prepared column (:class:`Side`) holds what every test needs and nothing more: numeric
data as one sorted array of its finite values, other data as distinct values with counts.
Missing values (None, NaN, NaT, ±inf) are dropped and counted, as Evidently drops them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import ValidationError, shorten

NUMERIC = "numeric"
CATEGORICAL = "categorical"
BOOLEAN = "boolean"
DATETIME = "datetime"
TEXT = "text"
UNKNOWN = "unknown"
TESTED_KINDS = (NUMERIC, CATEGORICAL, BOOLEAN)

INTEGER_CARDINALITY_LIMIT = 10
TEXT_DISTINCT_SHARE = 0.5

# Storage classes of a column's values, read from its dtype (or its values, for object).
_BOOL, _INT, _FLOAT, _DATETIME, _CATEGORY, _STRING, _MIXED, _EMPTY, _OTHER = (
    "bool", "integer", "float", "datetime", "category", "string", "mixed", "empty", "other"
)
_NUMBERS = (_INT, _FLOAT)


@dataclass
class Side:
    """One column of one dataset, ready for the tests.

    ``values`` is the sorted array of finite values (float64) when the data are numbers;
    otherwise ``keys`` and ``counts`` are the distinct values and how often each occurs.
    """

    n_rows: int
    n_missing: int
    values: Any = None
    integer: bool = False
    keys: Any = None
    counts: Any = None
    sampled_from: int | None = None  # a profile's sketch: how many values it stands for
    _unique: Any = field(default=None, repr=False)
    _n_unique: int | None = field(default=None, repr=False)

    @property
    def n(self) -> int:
        """How many values are tested: rows less missing ones."""
        return self.n_rows - self.n_missing

    @property
    def size(self) -> int:
        """How many values the side stands for (more than ``n`` for a sketch)."""
        return self.sampled_from or self.n

    def value_counts(self):
        """``(keys, counts)``: distinct values (sorted, for numbers) and their counts."""
        if self.values is None:
            return self.keys, self.counts
        if self._unique is None:
            import numpy as np

            values = self.values
            if values.size == 0:
                self._unique = (values[:0], np.zeros(0, dtype=np.int64))
            else:
                starts = np.flatnonzero(np.concatenate(([True], values[1:] != values[:-1])))
                counts = np.diff(np.append(starts, values.size))
                self._unique = (values[starts], counts)
        return self._unique

    @property
    def n_unique(self) -> int:
        if self.values is None:
            return 0 if self.keys is None else len(self.keys)
        if self._n_unique is None:
            import numpy as np

            values = self.values
            # Counted, not listed: choosing a test needs only the number.
            self._n_unique = int(np.count_nonzero(values[1:] != values[:-1])) + 1 \
                if values.size else 0
        return self._n_unique


@dataclass
class Column:
    """A column of the report: its kind and both prepared sides, or why it is not tested."""

    name: str
    kind: str
    reference: Side | None = None
    current: Side | None = None
    notes: list[str] = field(default_factory=list)
    role: str = "feature"


def storage_class(series) -> str:
    """What a pandas Series holds: bool, integer, float, datetime, category, string, mixed..."""
    import pandas as pd
    from pandas.api import types

    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return _CATEGORY
    if types.is_bool_dtype(dtype):
        return _BOOL
    if types.is_integer_dtype(dtype):
        return _INT
    if types.is_float_dtype(dtype):
        return _FLOAT
    if types.is_datetime64_any_dtype(dtype):
        return _DATETIME
    if types.is_string_dtype(dtype) and dtype != object:
        return _STRING
    if dtype == object:
        inferred = types.infer_dtype(series, skipna=True)
        return {
            "string": _STRING, "integer": _INT, "floating": _FLOAT, "decimal": _FLOAT,
            "mixed-integer-float": _FLOAT, "boolean": _BOOL, "datetime": _DATETIME,
            "datetime64": _DATETIME, "date": _DATETIME, "empty": _EMPTY,
        }.get(inferred, _MIXED)
    return _OTHER


def _numbers(series, name: str, where: str):
    """The series as float64 (a fresh array, NaN for missing); an error names a bad value."""
    import numpy as np
    import pandas as pd

    if series.dtype == object or isinstance(series.dtype, pd.StringDtype) or \
            pd.api.types.is_string_dtype(series.dtype):
        converted = pd.to_numeric(series, errors="coerce")
        bad = converted.isna() & series.notna()
        if bad.any():
            example = series[bad].iloc[0]
            raise ValidationError(
                f"Column {name!r} holds numbers, but the {where} data also hold "
                f"{shorten(example)}, which is not a number. Convert the column, or leave "
                "it out with columns=[...]."
            )
        series = converted
    if pd.api.types.is_bool_dtype(series.dtype):
        series = series.astype("float64")
    return series.to_numpy(dtype=np.float64, na_value=np.nan, copy=True)


def prepare_numbers(series, name: str, where: str, integer: bool = False) -> Side:
    """Sort once; NaN end up last and ±inf at the ends, so the finite values are one slice."""
    import numpy as np

    array = _numbers(series, name, where)
    array.sort()
    n_rows = array.size
    end = n_rows
    if n_rows and np.isnan(array[-1]):
        end = n_rows - int(np.count_nonzero(np.isnan(array)))
    start = int(np.searchsorted(array[:end], -np.inf, side="right"))
    stop = int(np.searchsorted(array[:end], np.inf, side="left"))
    return Side(n_rows=n_rows, n_missing=n_rows - (stop - start), values=array[start:stop],
                integer=integer)


def prepare_categories(series, as_text: bool = False) -> Side:
    """Distinct non-missing values and their counts (as text when ``as_text``)."""
    import numpy as np

    n_rows = len(series)
    present = series.dropna()
    if as_text:
        present = present.map(str)
    counts = present.value_counts(sort=False, dropna=True)
    counts = counts[counts.to_numpy() > 0]  # categoricals list unobserved categories too
    keys = np.empty(len(counts), dtype=object)
    keys[:] = [_plain(key) for key in counts.index]
    return Side(n_rows=n_rows, n_missing=n_rows - len(present), keys=keys,
                counts=counts.to_numpy(dtype=np.int64))


def _plain(value: Any) -> Any:
    # numpy scalars become Python ones, so keys compare, sort and print as users expect.
    item = getattr(value, "item", None)
    return item() if callable(item) and not isinstance(value, (str, bytes)) else value


def _resolve(name: str, ref_class: str, cur_class: str) -> tuple[str, str, list[str]]:
    """The pair's common storage class and kind hint, with notes on any coercion."""
    notes: list[str] = []
    if ref_class == _EMPTY and cur_class == _EMPTY:
        return _EMPTY, UNKNOWN, notes
    if ref_class == _EMPTY:
        ref_class = cur_class
    if cur_class == _EMPTY:
        cur_class = ref_class
    pair = {ref_class, cur_class}
    if _DATETIME in pair:
        return _DATETIME, DATETIME, notes
    if _OTHER in pair:
        return _OTHER, UNKNOWN, notes
    if pair <= {_INT, _FLOAT}:
        return cur_class, NUMERIC, notes
    if pair == {_BOOL}:
        return _BOOL, BOOLEAN, notes
    if pair <= {_BOOL, _INT, _FLOAT}:
        notes.append("booleans compared as 0/1 with numbers")
        return (_INT if cur_class == _BOOL else cur_class), NUMERIC, notes
    if pair & set(_NUMBERS) and pair & {_STRING, _MIXED}:
        notes.append("text converted to numbers")
        numeric_class = cur_class if cur_class in _NUMBERS else ref_class
        return numeric_class, NUMERIC, notes
    if pair <= {_STRING, _CATEGORY}:
        return (_CATEGORY if cur_class == _CATEGORY else _STRING), CATEGORICAL, notes
    notes.append("mixed types compared as text")
    return _MIXED, CATEGORICAL, notes


@dataclass
class StoredSide:
    """A reference column kept in a profile: its storage class, dtype and prepared Side."""

    storage: str
    dtype: str
    side: Side


def _class_of(source) -> str:
    return source.storage if isinstance(source, StoredSide) else storage_class(source)


def _dtype_of(source) -> str:
    return source.dtype if isinstance(source, StoredSide) else str(source.dtype)


def _as_numbers(source, name: str, where: str, integer: bool) -> Side:
    if not isinstance(source, StoredSide):
        return prepare_numbers(source, name, where, integer)
    import numpy as np

    side = source.side
    if side.values is not None:
        return Side(n_rows=side.n_rows, n_missing=side.n_missing, values=side.values,
                    integer=integer, sampled_from=side.sampled_from)
    import pandas as pd

    keys = pd.to_numeric(pd.Series(side.keys, dtype=object), errors="coerce").to_numpy(
        dtype=np.float64, na_value=np.nan)
    if np.isnan(keys).any():
        example = side.keys[np.flatnonzero(np.isnan(keys))[0]]
        raise ValidationError(
            f"Column {name!r} holds numbers, but the {where} data also hold "
            f"{shorten(example)}, which is not a number. Convert the column, or leave it "
            "out with columns=[...]."
        )
    values = np.sort(np.repeat(keys, side.counts))
    finite = values[np.isfinite(values)]
    return Side(n_rows=side.n_rows, n_missing=side.n_rows - finite.size, values=finite,
                integer=integer)


def _as_categories(source, as_text: bool) -> Side:
    if not isinstance(source, StoredSide):
        return prepare_categories(source, as_text)
    import numpy as np

    side = source.side
    if side.values is not None:
        keys, counts = side.value_counts()
        plain = [int(k) if side.integer else float(k) for k in keys.tolist()]
    else:
        plain, counts = list(side.keys), side.counts
    if as_text:
        merged: dict[str, int] = {}
        for key, count in zip(plain, counts.tolist()):
            merged[str(key)] = merged.get(str(key), 0) + int(count)
        plain, counts = list(merged), np.array(list(merged.values()), dtype=np.int64)
    keys_array = np.empty(len(plain), dtype=object)
    keys_array[:] = plain
    return Side(n_rows=side.n_rows, n_missing=side.n_missing, keys=keys_array,
                counts=np.asarray(counts, dtype=np.int64))


def prepare_column(name: str, reference, current, role: str = "feature",
                   force_categorical: bool = False) -> Column:
    """Infer the column's kind from both sides (the current one decides, as in Evidently).

    Either side is a pandas Series or a :class:`StoredSide` (from a profile, or a Dask
    column's partitions merged). ``force_categorical`` tests free text as categories (used when a test is
    chosen for the column).
    """
    ref_class, cur_class = _class_of(reference), _class_of(current)
    common, kind, notes = _resolve(name, ref_class, cur_class)
    column = Column(name=name, kind=kind, notes=notes, role=role)
    if kind == DATETIME:
        column.notes.append("datetime column: reported, not tested")
        return column
    if kind == UNKNOWN:
        if common == _EMPTY:
            column.notes.append("no values in either set")
        else:
            column.notes.append(
                f"dtype {_dtype_of(reference)}/{_dtype_of(current)} is not tested"
            )
        return column
    if kind == NUMERIC:
        integer = common == _INT
        column.reference = _as_numbers(reference, name, "reference", integer)
        column.current = _as_numbers(current, name, "current", integer)
        if integer and column.current.n_unique <= INTEGER_CARDINALITY_LIMIT:
            column.kind = CATEGORICAL
            column.notes.append(
                f"integers with at most {INTEGER_CARDINALITY_LIMIT} distinct values: categorical"
            )
        return column
    as_text = common == _MIXED
    column.reference = _as_categories(reference, as_text)
    column.current = _as_categories(current, as_text)
    if common == _STRING and not force_categorical and \
            column.current.n_unique > column.current.n * TEXT_DISTINCT_SHARE:
        column.kind = TEXT
        column.notes.append(
            "free text (over half the current values distinct): not tested; choose a "
            "stattest for it to test it as categories"
        )
    return column


def prepare_reference(name: str, series) -> StoredSide:
    """A reference column on its own, for a profile: numbers sorted, anything else counted."""
    storage = storage_class(series)
    if storage in _NUMBERS:
        side = prepare_numbers(series, name, "reference", storage == _INT)
    elif storage in (_DATETIME, _OTHER):
        side = Side(n_rows=len(series), n_missing=int(series.isna().sum()))
    else:
        side = prepare_categories(series, as_text=storage == _MIXED)
    return StoredSide(storage=storage, dtype=str(series.dtype), side=side)
