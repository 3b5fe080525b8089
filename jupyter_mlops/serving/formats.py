"""MLflow's scoring payloads, parsed into the inputs a registered version expects.

``parse_payload`` reads a request body the way ``mlflow models serve`` does: JSON with one
of ``dataframe_split``, ``dataframe_records``, ``instances`` or ``inputs``, or CSV with a
header row. ``InputSpec.conform`` then checks what was sent against the version's signature
(missing, extra or mistyped columns, row width) and returns a DataFrame in the signature's
column order, or an array of the signature's dtype. Every refusal is a :class:`BadRequest`
whose one-line message names the column, the value and the row.

``jsonable`` and ``dumps`` turn predictions into strict JSON (NaN and infinities as null, as
``store.jsoncodec.plain`` writes them for readers that know no tags).
"""

from __future__ import annotations

import codecs
import io
import json
import math
from dataclasses import dataclass
from typing import Any

from ..errors import BadRequest, UnsupportedMediaType, shorten
from ..store import jsoncodec

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
JSON_TYPE = "application/json"
CSV_TYPE = "text/csv"
_TEXT = {"object", "str", "string", "category"}
_FORMAT_HINT = ("Send a JSON object with one of dataframe_split, dataframe_records, instances "
                "or inputs, or CSV with a header row.")


def _names(columns: tuple[str, ...] | list[str]) -> str:
    text = ", ".join(columns)
    return text if len(text) <= 120 else text[:117] + "..."


def _value(value: Any) -> str:
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()  # a numpy scalar: name the Python type the client sent
    return f"{type(value).__name__} {shorten(value, 40)}"


@dataclass(frozen=True)
class InputSpec:
    """What a version takes, from its registered signature.

    ``kind`` is ``"dataframe"`` (named ``columns`` with ``dtypes``, a dtype may be None when
    only the names are known), ``"ndarray"`` (``dtype`` and ``shape``, ``-1`` for any) or
    None when the version has no signature: then inputs pass unchecked.
    """

    kind: str | None
    columns: tuple[str, ...] = ()
    dtypes: tuple[str | None, ...] = ()
    dtype: str | None = None
    shape: tuple[int, ...] = ()

    @classmethod
    def from_signature(cls, signature: dict[str, Any] | None) -> InputSpec:
        if not signature:
            return cls(None)
        if signature.get("kind") == "dataframe":
            columns = signature.get("columns") or []
            return cls("dataframe", tuple(str(c["name"]) for c in columns),
                       tuple(c.get("dtype") for c in columns))
        if signature.get("kind") == "ndarray":
            return cls("ndarray", dtype=signature.get("dtype"),
                       shape=tuple(int(n) for n in signature.get("shape") or [-1]))
        return cls(None)

    @property
    def text_columns(self) -> list[str]:
        return [c for c, t in zip(self.columns, self.dtypes) if t in _TEXT]

    # -- checking ----------------------------------------------------------------------

    def conform(self, raw: Any, *, extra: str = "refuse") -> Any:
        """``raw`` (a DataFrame, or rows as a list or array) checked and converted.

        ``extra="refuse"`` answers an unexpected column with BadRequest; ``"drop"`` leaves
        it out (batch files often carry ids beside the features).
        """
        import numpy as np
        import pandas as pd

        if self.kind == "dataframe":
            if isinstance(raw, pd.DataFrame):
                return self._conform_frame(raw, extra)
            rows = raw.tolist() if isinstance(raw, np.ndarray) else raw
            return self._conform_frame(self._positional(rows), extra)
        if self.kind == "ndarray":
            return self._conform_array(raw)
        return _check_plain(_array(raw) if isinstance(raw, list) else raw)

    def _positional(self, rows: list) -> Any:
        import pandas as pd

        width = len(self.columns)
        for number, row in enumerate(rows):
            if not isinstance(row, (list, tuple)) or len(row) != width:
                got = f"{len(row)} values" if isinstance(row, (list, tuple)) else _value(row)
                raise BadRequest(
                    f"Row {number} has {got}; the model takes {width} columns in this order: "
                    f"{_names(self.columns)}."
                )
        return pd.DataFrame(rows, columns=list(self.columns))

    def _conform_frame(self, frame: Any, extra: str) -> Any:
        names = [str(c) for c in frame.columns]
        if len(set(names)) != len(names):
            seen: set[str] = set()
            dup = next(n for n in names if n in seen or seen.add(n))
            raise BadRequest(f"Column {dup!r} is given twice; send each column once.")
        present = set(names)
        missing = [c for c in self.columns if c not in present]
        if missing:
            raise BadRequest(
                f"Missing column {missing[0]!r}" + (f" (and {len(missing) - 1} more)"
                                                    if len(missing) > 1 else "")
                + f"; the model takes {_names(self.columns)}."
            )
        wanted = set(self.columns)
        unexpected = [n for n in names if n not in wanted]
        if unexpected and extra == "refuse":
            raise BadRequest(
                f"Unexpected column {unexpected[0]!r}" + (f" (and {len(unexpected) - 1} more)"
                                                         if len(unexpected) > 1 else "")
                + f"; the model takes {_names(self.columns)}."
            )
        if names != list(self.columns) or list(frame.columns) != names:
            frame = frame.set_axis(names, axis=1)[list(self.columns)]
        converted = {}
        for column, dtype in zip(self.columns, self.dtypes):
            series = frame[column]
            new = coerce_column(series, dtype, column)
            if new is not series:
                converted[column] = new
        if converted:
            frame = frame.assign(**converted)
        return frame

    def _conform_array(self, raw: Any) -> Any:
        import numpy as np
        import pandas as pd

        if isinstance(raw, pd.DataFrame):
            array = raw.to_numpy()
        elif isinstance(raw, np.ndarray):
            array = raw
        else:
            # Keep the values' own types until they are checked: "1" must not pass as 1.0.
            array = _array(raw, dtype=object if self.dtype else None)
        if array.ndim == 1 and len(self.shape) == 2:
            raise BadRequest(
                f"Each instance must be a row of {self.shape[1]} values; got a flat list."
                if self.shape[1] != -1 else "Each instance must be a row (a list of values)."
            )
        if array.ndim != len(self.shape):
            raise BadRequest(
                f"The model takes rows of shape {list(self.shape[1:])}; got inputs of shape "
                f"{list(array.shape)}."
            )
        for axis, (want, got) in enumerate(zip(self.shape[1:], array.shape[1:]), start=1):
            if want != -1 and want != got:
                raise BadRequest(
                    f"Each row must have {want} values; got {got}."
                    if axis == 1 else
                    f"Axis {axis} of the inputs must have length {want}; got {got}."
                )
        what = f"The model takes {self.dtype} values"
        if self.dtype is None:
            return _check_plain(array)
        if array.dtype == self.dtype:
            if array.dtype.kind == "f":
                _refuse_out_of_range_at(array, array.dtype, what)
            return array
        target = np.dtype(self.dtype)
        if target.kind not in "iuf":
            return array.astype(target) if array.dtype == object else array
        if array.dtype.kind not in "iuf":
            flat = array.reshape(-1)
            numbers = (int, float, np.integer, np.floating)
            for position, item in enumerate(flat):
                if isinstance(item, (bool, np.bool_)) or not isinstance(item, numbers):
                    index = [int(i) for i in np.unravel_index(position, array.shape)]
                    got = "a missing value" if item is None else _value(item)
                    raise BadRequest(f"{what}; got {got} at {index}.")
            _refuse_out_of_range_at(array, target, what)  # exact, before any float
            array = array.astype(np.float64 if target.kind == "f" else object)
        elif array.dtype != object:
            _refuse_out_of_range_at(array, target, what)
        if target.kind in "iu" and array.dtype.kind in "fO":
            values = array.astype(np.float64)
            bad = ~np.isfinite(values) | (values != np.round(values))
            if bad.any():
                index = tuple(int(i) for i in np.argwhere(bad)[0])
                raise BadRequest(f"{what}; got {array[index]!r} at {list(index)}.")
        return array.astype(target)


def _array(rows: Any, dtype: Any = None) -> Any:
    import numpy as np

    try:
        array = np.array(rows, dtype=dtype)
    except ValueError:
        raise BadRequest("Rows differ in length; every row must have the same number of "
                         "values.") from None
    if array.dtype == object and array.ndim == 1 and len(array) and \
            isinstance(array[0], (list, tuple)):
        raise BadRequest("Rows differ in length; every row must have the same number of values.")
    return array


# -- one column --------------------------------------------------------------------------

def _first_bad(series: Any, bad: Any) -> tuple[Any, Any]:
    """The row label (the position in a request; the file row in a batch chunk) and value."""
    import numpy as np

    position = int(np.flatnonzero(np.asarray(bad))[0])
    return series.index[position], series.iloc[position]


def coerce_column(series: Any, dtype: str | None, column: str) -> Any:
    """``series`` as ``dtype`` (the registered dtype name), or BadRequest naming the value.

    Returns ``series`` itself when it already has the right dtype.
    """
    if dtype is None:
        return series
    import numpy as np
    import pandas as pd

    current = series.dtype
    where = f"Column {column!r} must be {dtype}"
    if str(current) == dtype:
        if isinstance(current, np.dtype) and current.kind == "f":
            _refuse_out_of_range(series, current, where)
        return series
    if dtype in _TEXT:
        if dtype == "category":
            return series.astype("category")
        if pd.api.types.is_string_dtype(current) and not pd.api.types.is_object_dtype(current):
            return series
        if pd.api.types.is_object_dtype(current):
            inferred = pd.api.types.infer_dtype(series, skipna=True)
            if inferred in ("string", "empty"):
                return series
            bad = [not (isinstance(v, str) or v is None or (isinstance(v, float) and math.isnan(v)))
                   for v in series]
        else:
            bad = np.ones(len(series), dtype=bool)
            if series.isna().all():
                return series.astype(object)
        row, value = _first_bad(series, bad)
        raise BadRequest(f"{where} (text); got {_value(value)} in row {row}.")
    try:
        target = np.dtype(dtype)
    except TypeError:
        return series  # an extension dtype we do not check (e.g. Int64): the model decides
    kind = target.kind
    if kind == "b":
        if current.kind == "b":
            return series
        bad = [not isinstance(v, (bool, np.bool_)) for v in series]
        if any(bad):
            row, value = _first_bad(series, bad)
            raise BadRequest(f"{where} (true or false); got {_describe_missing(value)} in "
                             f"row {row}.")
        return series.astype(bool)
    if kind in "iuf":
        if current.kind == "b":
            raise BadRequest(f"{where}; got bool {bool(series.iloc[0])!r} in row "
                             f"{series.index[0]}.")
        if current.kind in "iuf":
            numbers = series
        else:
            if pd.api.types.is_object_dtype(current):
                inferred = pd.api.types.infer_dtype(series, skipna=True)
                if inferred in ("boolean", "mixed"):
                    flags = [isinstance(v, (bool, np.bool_)) for v in series]
                    if any(flags):
                        row, value = _first_bad(series, flags)
                        raise BadRequest(f"{where}; got {_value(value)} in row {row}.")
                if inferred in ("integer", "mixed-integer", "mixed-integer-float", "mixed"):
                    _refuse_out_of_range(series, target, where)
            numbers = pd.to_numeric(series, errors="coerce")
            bad = numbers.isna() & series.notna()
            if bad.any():
                row, value = _first_bad(series, bad)
                raise BadRequest(f"{where}; got {_value(value)} in row {row}.")
            numbers = numbers.astype("float64") if numbers.dtype.kind not in "iuf" else numbers
        if kind in "iu":
            if numbers.dtype.kind == "f":
                values = numbers.to_numpy()
                missing = np.isnan(values)
                if missing.any():
                    row, _ = _first_bad(series, missing)
                    raise BadRequest(f"{where}; got a missing value in row {row}.")
                fractional = values != np.round(values)
                if fractional.any():
                    row, value = _first_bad(numbers, fractional)
                    raise BadRequest(f"{where}; got {float(value)!r} in row {row}.")
        _refuse_out_of_range(numbers, target, where)
        try:
            return numbers.astype(target)
        except (TypeError, ValueError, OverflowError):
            raise BadRequest(f"{where}; a value in it does not fit.") from None
    if kind == "M":
        converted = pd.to_datetime(series, errors="coerce")
        bad = converted.isna() & series.notna()
        if bad.any():
            row, value = _first_bad(series, bad)
            raise BadRequest(f"{where} (a date and time); got {_value(value)} in row {row}.")
        return converted
    return series


# -- numbers a dtype cannot hold ---------------------------------------------------------
# numpy casts silently past a dtype's range (2**63 becomes -2**63, 1e39 a float32 inf) and
# cannot make a float of an integer beyond 1.8e308 at all; JSON's 1e400 parses as an
# infinity. Such values are refused, naming where they are, before any cast.

def _limits(target: Any) -> tuple[Any, Any]:
    """The smallest and largest values of ``target``, as exact Python numbers."""
    import numpy as np

    if target.kind in "iu":
        info = np.iinfo(target)
        return int(info.min), int(info.max)
    info = np.finfo(target)
    return -float(info.max), float(info.max)


def _out_of_range(values: Any, target: Any) -> Any:
    """A mask of the values (any numpy array) that ``target`` cannot hold, or None."""
    import numpy as np

    kind = values.dtype.kind
    low, high = _limits(target)
    if kind == "O":
        flat = values.reshape(-1)
        bad = [(isinstance(v, int) and not isinstance(v, bool) and not low <= v <= high)
               or (isinstance(v, float) and math.isinf(v)) for v in flat]
        return np.array(bad, dtype=bool).reshape(values.shape) if any(bad) else None
    if kind == "f":
        if target.kind in "iu":
            # 2**63 - 1 is no float: compare with the powers of two at the range's ends.
            return (values < float(low)) | (values >= float(high) + 1)
        return np.isinf(values) | (np.abs(values) > high)
    if kind in "iu" and target.kind in "iu" and not np.can_cast(values.dtype, target):
        return (values < low) | (values > high)
    return None


def _range_text(target: Any) -> str:
    low, high = _limits(target)
    bounds = f"{low:,} to {high:,}" if target.kind in "iu" else f"±{high:.4g}"
    return f"{target.name}'s range ({bounds})"


def _out_of_range_message(value: Any, target: Any) -> str:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isinf(value):
        return f"an infinite number (or one beyond {_range_text(target)})"
    text = repr(value)
    shown = text if len(text) <= 40 else f"{text[:20]}... ({len(text)} digits)"
    return f"{shown}, beyond {_range_text(target)}"


def _refuse_out_of_range(series: Any, target: Any, where: str) -> None:
    """BadRequest naming the first value of ``series`` that ``target`` cannot hold."""
    bad = _out_of_range(series.to_numpy(), target)
    if bad is not None and bad.any():
        row, value = _first_bad(series, bad)
        raise BadRequest(f"{where}; got {_out_of_range_message(value, target)} in row {row}.")


def _refuse_out_of_range_at(array: Any, target: Any, what: str) -> None:
    """The same for an array of inputs, naming the value's index."""
    import numpy as np

    bad = _out_of_range(array, target)
    if bad is not None and bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        raise BadRequest(f"{what}; got {_out_of_range_message(array[index], target)} at "
                         f"{list(index)}.")


def _check_plain(raw: Any) -> Any:
    """Inputs of a version without a signature still meet 64-bit limits."""
    import numpy as np
    import pandas as pd

    widest = np.dtype("float64")
    if isinstance(raw, pd.DataFrame):
        for column in raw.columns:
            if raw[column].dtype.kind in "fO":
                _refuse_out_of_range(raw[column], widest,
                                     f"Column {str(column)!r} must hold 64-bit numbers")
    elif isinstance(raw, np.ndarray) and raw.dtype.kind in "fO":
        _refuse_out_of_range_at(raw, widest, "The inputs must be 64-bit numbers")
    return raw


def _describe_missing(value: Any) -> str:
    return "a missing value" if value is None else _value(value)


# -- payloads ----------------------------------------------------------------------------

def media_type(content_type: str | None) -> str:
    """``application/json`` or ``text/csv`` from a Content-Type header, else 415."""
    if not content_type:
        raise UnsupportedMediaType(
            f"No Content-Type header; send {JSON_TYPE} or {CSV_TYPE}.")
    parts = [p.strip() for p in content_type.split(";")]
    mime = parts[0].lower()
    for parameter in parts[1:]:
        key, _, value = parameter.partition("=")
        if key.strip().lower() == "charset" and value.strip().strip('"').lower() not in (
                "utf-8", "utf8"):
            raise UnsupportedMediaType(
                f"Only UTF-8 bodies are read; got charset {value.strip()!r}.")
    if mime not in (JSON_TYPE, CSV_TYPE):
        raise UnsupportedMediaType(
            f"Content-Type {shorten(mime)} is not scored; send {JSON_TYPE} or {CSV_TYPE}.")
    return mime


def decode_body(body: bytes) -> str:
    """The body as text: UTF-8 only, with no byte order mark and no NUL byte.

    The predictions log keeps exactly the text that was parsed; a body in another encoding
    (which ``json.loads`` would guess its way through) is refused instead.
    """
    if body.startswith(codecs.BOM_UTF8):
        raise BadRequest("The body starts with a byte order mark (EF BB BF); send UTF-8 "
                         "without one.")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        guess = " (UTF-16?)" if body[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE) else ""
        raise BadRequest(f"The body is not UTF-8 text{guess}: byte {exc.start} is "
                         f"{body[exc.start:exc.start + 1]!r}. Send UTF-8.") from None
    if "\x00" in text:
        raise BadRequest(f"The body holds a NUL byte at {text.index(chr(0))} (UTF-16?); "
                         "send UTF-8 text.")
    return text


def load_json(body: bytes) -> Any:
    """A JSON body parsed, or BadRequest naming what is wrong with it."""
    text = decode_body(body)
    try:
        return json.loads(text)
    except RecursionError:
        raise BadRequest("The JSON nests lists or objects too deeply to be read; send rows "
                         "of plain values.") from None
    except ValueError as exc:
        if "integer string conversion" in str(exc):
            raise BadRequest("A number in the JSON has more than 4,300 digits; send numbers "
                             "a model can take.") from None
        raise BadRequest(f"Malformed JSON: {exc}.") from None


def parse_payload(body: bytes, content_type: str | None, spec: InputSpec) -> Any:
    """The inputs a request body carries: a DataFrame, or a list of rows (not yet checked)."""
    mime = media_type(content_type)
    if not body or not body.strip():
        raise BadRequest(f"The request body is empty. {_FORMAT_HINT}")
    if mime == CSV_TYPE:
        return parse_csv(body, spec)
    return parse_json(load_json(body), spec)


def parse_csv(body: bytes, spec: InputSpec) -> Any:
    """A CSV body as a DataFrame: UTF-8, one value per header column on every row.

    ``index_col=False``: pandas would otherwise take a first row with one value too many
    as carrying an index, and shift every column by one.
    """
    import pandas as pd

    from .csvrows import check_rows, parser_error

    decode_body(body)
    try:
        check_rows(body)
    except BadRequest as exc:
        raise BadRequest(f"Malformed CSV: {exc}") from None
    try:
        return pd.read_csv(io.BytesIO(body), index_col=False,
                           dtype={c: str for c in spec.text_columns} or None)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        raise BadRequest(f"Malformed CSV: {parser_error(exc)}") from None


def parse_json(payload: Any, spec: InputSpec) -> Any:
    if not isinstance(payload, dict):
        raise BadRequest(f"The body must be a JSON object; got a {_json_type(payload)}. "
                         f"{_FORMAT_HINT}")
    keys = [k for k in payload if k in FORMATS]
    others = [k for k in payload if k not in FORMATS]
    if len(keys) != 1:
        raise BadRequest(
            ("The body names several formats: " + ", ".join(keys) + "; send exactly one."
             if keys else f"The body has none of the keys {', '.join(FORMATS)}"
             + (f" (it has {shorten(others, 60)})" if others else "") + ".")
        )
    for key in others:
        if key == "params" and not payload[key]:
            continue
        raise BadRequest(
            f"Unknown key {shorten(key)} beside {keys[0]!r}; this model takes no params."
            if key == "params" else f"Unknown key {shorten(key)} beside {keys[0]!r}.")
    key = keys[0]
    value = payload[key]
    if key == "dataframe_split":
        return _split(value)
    if key == "dataframe_records":
        return _records(value, key)
    if isinstance(value, dict) and key == "inputs":
        return _columnar(value)
    if not isinstance(value, list):
        raise BadRequest(f"{key!r} must be a list of rows; got a {_json_type(value)}.")
    if not value:
        raise BadRequest(f"{key!r} is empty; send at least one row.")
    if isinstance(value[0], dict):
        return _records(value, key)
    if spec.kind == "dataframe" and not isinstance(value[0], list):
        raise BadRequest(
            f"Each item of {key!r} must be a row: an object of columns or a list of "
            f"{len(spec.columns)} values; got {_value(value[0])}.")
    return value


def _json_type(value: Any) -> str:
    return {dict: "object", list: "list", str: "string", bool: "boolean", int: "number",
            float: "number", type(None): "null"}.get(type(value), type(value).__name__)


def _split(value: Any) -> Any:
    import pandas as pd

    if not isinstance(value, dict) or not isinstance(value.get("data"), list):
        raise BadRequest("'dataframe_split' must be an object with 'columns' and 'data' "
                         "(a list of rows), as DataFrame.to_dict(orient='split') gives.")
    data, columns = value["data"], value.get("columns")
    if not data:
        raise BadRequest("'dataframe_split' has no rows in 'data'; send at least one.")
    if columns is None:
        return data
    if not isinstance(columns, list):
        raise BadRequest("'dataframe_split' 'columns' must be a list of column names.")
    width = len(columns)
    for number, row in enumerate(data):
        if not isinstance(row, list) or len(row) != width:
            got = f"{len(row)} values" if isinstance(row, list) else _value(row)
            raise BadRequest(f"Row {number} of 'dataframe_split' has {got}; 'columns' names "
                             f"{width}.")
    return pd.DataFrame(data, columns=[str(c) for c in columns])


def _records(value: Any, key: str) -> Any:
    import pandas as pd

    if not isinstance(value, list) or not value:
        raise BadRequest(f"{key!r} must be a non-empty list of objects (one per row).")
    first = value[0]
    if not isinstance(first, dict):
        raise BadRequest(f"Each row of {key!r} must be an object of columns; got "
                         f"{_value(first)} in row 0.")
    keys = first.keys()
    for number, record in enumerate(value):
        if not isinstance(record, dict):
            raise BadRequest(f"Each row of {key!r} must be an object of columns; got "
                             f"{_value(record)} in row {number}.")
        if record.keys() != keys:
            lacking = [k for k in keys if k not in record]
            if lacking:
                raise BadRequest(f"Row {number} of {key!r} has no column {lacking[0]!r}; every "
                                 "row must have the same columns.")
            surplus = next(k for k in record if k not in keys)
            raise BadRequest(f"Row {number} of {key!r} has an unexpected column {surplus!r}; "
                             "every row must have the same columns.")
    return pd.DataFrame({str(k): [record[k] for record in value] for k in keys})


def _columnar(value: dict) -> Any:
    import pandas as pd

    if not value:
        raise BadRequest("'inputs' is an empty object; send columns with values.")
    lengths = {k: len(v) if isinstance(v, list) else None for k, v in value.items()}
    if all(n is None for n in lengths.values()):
        return pd.DataFrame({str(k): [v] for k, v in value.items()})
    if any(n is None for n in lengths.values()) or len(set(lengths.values())) != 1:
        raise BadRequest("Every column of 'inputs' must be a list of the same length (or every "
                         f"one a single value); got lengths {shorten(lengths, 100)}.")
    if next(iter(lengths.values())) == 0:
        raise BadRequest("'inputs' has no rows; send at least one.")
    return pd.DataFrame({str(k): v for k, v in value.items()})


def rows_of(body: str, content_type: str, spec: InputSpec) -> tuple[list[str] | None, list]:
    """A logged body as ``(columns, rows)`` (columns None for positional rows), cheaply.

    The body was accepted when it was served, so no checks are repeated here; many
    requests' rows are gathered this way and conformed once, as one frame.
    """
    if content_type == CSV_TYPE:
        frame = parse_csv(body.encode(), spec)
        return [str(c) for c in frame.columns], frame.to_numpy(dtype=object).tolist()
    payload = json.loads(body)
    key = next(k for k in FORMATS if k in payload)
    value = payload[key]
    if key == "dataframe_split":
        return ([str(c) for c in value["columns"]] if value.get("columns") is not None
                else None), value["data"]
    if isinstance(value, dict):
        columns = [str(k) for k in value]
        if all(not isinstance(v, list) for v in value.values()):
            return columns, [list(value.values())]
        return columns, [list(row) for row in zip(*value.values())]
    if value and isinstance(value[0], dict):
        keys = list(value[0])
        return [str(k) for k in keys], [[record[k] for k in keys] for record in value]
    return None, value


# -- outputs -----------------------------------------------------------------------------

def jsonable(predictions: Any) -> Any:
    """Predictions as lists and plain numbers for any client (``jsoncodec.plain``): NaN and
    infinities as null, datetimes as ISO 8601 text."""
    import numpy as np
    import pandas as pd

    if isinstance(predictions, pd.DataFrame):
        return jsoncodec.plain(predictions.to_dict(orient="records"))
    if isinstance(predictions, pd.Series):
        predictions = predictions.to_numpy()
    if isinstance(predictions, (list, tuple)):
        return jsoncodec.plain(list(predictions))
    array = np.asarray(predictions)
    if array.dtype.kind in "biu" or (array.dtype.kind == "f" and np.isfinite(array).all()):
        return array.tolist()  # the usual answer, without a walk over every value
    return jsoncodec.plain(array)


def dumps(value: Any) -> str:
    """Strict JSON: NaN or infinity never reaches the wire."""
    return json.dumps(value, allow_nan=False, separators=(",", ":"))
