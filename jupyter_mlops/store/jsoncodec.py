"""The one JSON codec: how NaN, the infinities and odd values are written, and read back.

Strict JSON has no NaN or infinity and SQLite keeps NaN as NULL, yet metrics, evaluations
and drift statistics hold all three; models and monitors hand us numpy, pandas, datetimes,
bytes and sets. Every JSON text that may hold such values is written here, so there is one
answer:

- ``dumps``/``loads`` (and ``encode``/``decode``, one step short of text) are for what we
  read back ourselves. A value JSON has no form for becomes an object with a single
  ``$``-key, a *tag*, and comes back as it was:

  - NaN, inf, -inf: ``{"$float": "nan" | "inf" | "-inf"}``, read back as the float;
  - bytes, bytearray: ``{"$bytes": "<base64>"}``, read back as bytes;
  - datetime (pd.Timestamp too): ``{"$datetime": "<ISO 8601>"}``, read back as a datetime
    to the microsecond, its UTC offset (to the second) as a fixed zone;
  - date: ``{"$date": "<ISO 8601>"}``; timedelta (pd.Timedelta too):
    ``{"$timedelta": [days, seconds, microseconds]}``;
  - set, frozenset: ``{"$set": [...]}``, read back as a set;
  - a dict of the user's that reads like a tag (one key, a tag name):
    ``{"$dict": [[key, value]]}``, read back as that dict.

  Without a tag: numpy scalars and arrays, pandas Series and other array-likes become the
  Python numbers and lists they hold (datetime64 to the µs); tuples become lists (JSON has
  one sequence); dict keys become ``str(key)``, and two keys that would become one text
  (``1`` and ``"1"``) are refused, never merged; ``None``, ``pd.NA`` and ``NaT`` become
  null; anything else becomes its ``str()``. Nesting deeper than ``MAX_DEPTH`` (or a
  container holding itself) is refused.

- ``plain`` is for readers that know no tags (HTTP clients of the model server, the
  sidebar, SQL over a params column): the same conversions, but NaN and the infinities
  become null (``nonfinite="null"``) or their names (``"name"``), datetimes ISO text,
  bytes base64 text, timedeltas seconds and sets lists. ``nonfinite="refuse"`` accepts
  only what JSON holds as itself and raises ``NotPlain`` on the rest (params use it).

The names ``"nan"``, ``"inf"`` and ``"-inf"`` (``nonfinite_name``) are the only spelling of
a non-finite number anywhere: in tags, in the sidebar's ``nonfinite`` markers, in the
formats stored before this codec. ``float(name)`` reads each back. Output is always strict
JSON (``allow_nan=False``): ``json.loads`` in any language accepts it.
"""

from __future__ import annotations

import base64
import datetime as _dt
import json
import numbers
from collections.abc import Mapping
from typing import Any, Literal

from ..errors import ValidationError, shorten

MAX_DEPTH = 200  # far past any value of ours, well inside Python's recursion limit
NONFINITE_NAMES = ("nan", "inf", "-inf")
TAGS = ("$float", "$bytes", "$datetime", "$date", "$timedelta", "$set", "$dict")
_SEPARATORS = (",", ":")
_INF = float("inf")


class CodecError(ValidationError):
    """A value the codec will not write as given."""


class TooDeep(CodecError):
    """Lists and dicts nested past the depth limit, or a container that holds itself."""


class KeyClash(CodecError):
    """Two dict keys that are one key once written as JSON text (``1`` and ``"1"``)."""

    def __init__(self, first: Any, second: Any) -> None:
        super().__init__(f"The dict keys {shorten(first)} and {shorten(second)} are the same "
                         "key once written as JSON text; keep one of them.")
        self.keys = (first, second)


class NotPlain(CodecError):
    """A value JSON cannot hold as itself (``plain(..., nonfinite="refuse")``)."""


def nonfinite_name(value: float) -> str | None:
    """``"nan"``, ``"inf"`` or ``"-inf"`` for a non-finite float; None for a finite one."""
    if value != value:
        return "nan"
    if value in (_INF, -_INF):
        return "inf" if value > 0 else "-inf"
    return None


# Protobuf's JSON mapping (MLflow's REST API) names them as strings.
_PROTOBUF_NAMES = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def protobuf_float(value: float) -> float | str:
    """A double as protobuf's JSON mapping writes it: NaN and the infinities by name."""
    name = nonfinite_name(value)
    return value if name is None else _PROTOBUF_NAMES[name]


def encode(value: Any, *, max_depth: int = MAX_DEPTH) -> Any:
    """``value`` as JSON-ready Python (dicts, lists, str, finite numbers, bools, None), with
    tags where JSON has no form for it; ``decode`` undoes it."""
    return _Walk("tags", max_depth).value(value, 0)


def plain(value: Any, *, nonfinite: Literal["null", "name", "refuse"] = "null",
          max_depth: int = MAX_DEPTH) -> Any:
    """``value`` as JSON-ready Python without tags, for readers that do not know them.

    ``nonfinite``: ``"null"`` writes NaN and the infinities as None, ``"name"`` as their
    names; ``"refuse"`` raises NotPlain for them and for every other value JSON cannot
    hold as itself (bytes, datetimes, sets, objects of other types).
    """
    if nonfinite not in ("null", "name", "refuse"):
        raise ValueError(f"nonfinite must be 'null', 'name' or 'refuse'; got {nonfinite!r}")
    return _Walk(nonfinite, max_depth).value(value, 0)


def dumps(value: Any) -> str:
    """``value`` as strict, compact JSON text with tags (see the module's list).

    Non-ASCII text is written as is, except a lone surrogate (which UTF-8 cannot hold),
    which makes the whole text ASCII with ``\\u`` escapes.
    """
    encoded = encode(value)
    out = json.dumps(encoded, allow_nan=False, ensure_ascii=False, separators=_SEPARATORS)
    if not out.isascii():
        try:
            out.encode("utf-8")
        except UnicodeEncodeError:
            out = json.dumps(encoded, allow_nan=False, separators=_SEPARATORS)
    return out


def loads(data: str | bytes) -> Any:
    """The value ``dumps`` wrote (any JSON text reads: one without tags as it is)."""
    if isinstance(data, (bytes, bytearray)):
        data = data.decode("utf-8")
    if '"$' not in data:  # no tag can be in it: skip the hook
        return json.loads(data)
    return json.loads(data, object_hook=_untag)


def decode(value: Any) -> Any:
    """The value ``encode`` turned into ``value`` (parsed JSON in, tags resolved)."""
    if isinstance(value, list):
        return [decode(v) for v in value]
    if isinstance(value, dict):
        return _untag({k: decode(v) for k, v in value.items()})
    return value


def normalize(value: Any) -> Any:
    """``value`` as it will read back once stored (numpy as Python, tuples as lists...), so
    an object kept in memory equals the one read from the store."""
    return decode(encode(value))


class _Walk:
    """One pass over a value; ``mode`` is "tags" or a ``plain`` nonfinite policy."""

    __slots__ = ("mode", "max_depth", "tags")

    def __init__(self, mode: str, max_depth: int) -> None:
        self.mode = mode
        self.max_depth = max_depth
        self.tags = mode == "tags"

    def value(self, value: Any, depth: int) -> Any:
        kind = type(value)
        if kind is str or kind is int or kind is bool or value is None:
            return value
        if kind is float:
            return value if value - value == 0 else self.nonfinite(value)
        if kind is dict:
            return self.mapping(value, depth)
        if kind is list or kind is tuple:
            return self.sequence(value, depth)
        return self.other(value, depth)

    def nonfinite(self, value: float) -> Any:
        name = nonfinite_name(value)
        if self.tags:
            return {"$float": name}
        if self.mode == "null":
            return None
        if self.mode == "name":
            return name
        raise NotPlain(f"{name} is not a number JSON can hold.")

    def deeper(self, depth: int) -> int:
        if depth >= self.max_depth:
            raise TooDeep(f"The value is nested more than {self.max_depth} levels deep (or "
                          "holds itself).")
        return depth + 1

    def mapping(self, value: Mapping, depth: int) -> dict[str, Any]:
        depth = self.deeper(depth)
        out: dict[str, Any] = {}
        for key, item in value.items():
            name = key if type(key) is str else str(key)
            if name in out:
                raise KeyClash(next(k for k in value if (k if type(k) is str else str(k))
                                    == name), key)
            out[name] = self.value(item, depth)
        if self.tags and len(out) == 1 and name in TAGS:
            return {"$dict": [[name, out[name]]]}  # a user's dict that reads like a tag
        return out

    def sequence(self, value: Any, depth: int) -> list[Any]:
        depth = self.deeper(depth)
        return [self.value(item, depth) for item in value]

    def tagged(self, tag: str, payload: Any, shown: Any) -> Any:
        if self.tags:
            return {tag: payload}
        if self.mode == "refuse":
            raise NotPlain(f"A {tag[1:]} is not a value JSON can hold as itself.")
        return shown

    def other(self, value: Any, depth: int) -> Any:
        if isinstance(value, bool):
            return bool(value)
        if isinstance(value, int):
            return int(value)
        if isinstance(value, float):  # numpy's float64 among them
            value = float(value)
            return value if value - value == 0 else self.nonfinite(value)
        if isinstance(value, str):
            return str.__str__(value)
        if type(value).__name__ in ("NaTType", "NAType"):  # pandas' missing values
            return None
        if isinstance(value, Mapping):
            return self.mapping(value, depth)
        if isinstance(value, (list, tuple)):
            return self.sequence(value, depth)
        if isinstance(value, (set, frozenset)):
            items = self.sequence(value, depth)
            items.sort(key=lambda item: json.dumps(item, allow_nan=False, sort_keys=True))
            return self.tagged("$set", items, items)
        if isinstance(value, (bytes, bytearray, memoryview)):
            data = base64.b64encode(bytes(value)).decode("ascii")
            return self.tagged("$bytes", data, data)
        if isinstance(value, _dt.datetime):
            iso = value.isoformat()
            return self.tagged("$datetime", iso, iso)
        if isinstance(value, _dt.date):
            iso = value.isoformat()
            return self.tagged("$date", iso, iso)
        if isinstance(value, _dt.timedelta):
            parts = [value.days, value.seconds, value.microseconds]
            return self.tagged("$timedelta", parts, value.total_seconds())
        return self.array_like(value, depth)

    def array_like(self, value: Any, depth: int) -> Any:
        dtype = getattr(value, "dtype", None)
        tolist = getattr(value, "tolist", None)
        if dtype is not None and tolist is not None:
            if type(value).__module__ == "numpy" and getattr(dtype, "kind", "") in "Mm":
                # datetime64[ns] lists as ints: read it as microseconds, which Python holds.
                unit = "datetime64[us]" if dtype.kind == "M" else "timedelta64[us]"
                tolist = value.astype(unit).tolist
            items = tolist()
            if type(items).__module__ != "numpy":
                return self.value(items, depth)
            if isinstance(items, numbers.Real):  # a long double has no Python type
                return self.value(float(items), depth)
        if self.mode == "refuse":
            raise NotPlain(f"A {type(value).__name__} is not a value JSON can hold.")
        try:
            return str(value)
        except Exception:  # noqa: BLE001 - a user's __str__ that fails still gets a text
            return f"<{type(value).__name__} object>"


def _untag(obj: dict[str, Any]) -> Any:
    """A parsed JSON object with its tag resolved; an object that is no well-formed tag
    (data written before this codec) is kept as it is."""
    if len(obj) != 1:
        return obj
    ((tag, payload),) = obj.items()
    reader = _READERS.get(tag)
    if reader is None:
        return obj
    try:
        return reader(payload)
    except (TypeError, ValueError):
        return obj


def _read_float(payload: Any) -> float:
    if payload not in NONFINITE_NAMES:
        raise ValueError(payload)
    return float(payload)


def _read_bytes(payload: Any) -> bytes:
    return base64.b64decode(payload.encode("ascii"), validate=True)


def _read_timedelta(payload: Any) -> _dt.timedelta:
    if not (isinstance(payload, list) and len(payload) == 3
            and all(type(n) is int for n in payload)):
        raise TypeError(payload)
    return _dt.timedelta(*payload)


def _read_set(payload: Any) -> set:
    if not isinstance(payload, list):
        raise TypeError(payload)
    return {_hashable(item) for item in payload}


def _hashable(item: Any) -> Any:
    # Only hashables live in a set: a list in one was a tuple, a set a frozenset.
    if isinstance(item, list):
        return tuple(_hashable(i) for i in item)
    if isinstance(item, set):
        return frozenset(item)
    return item


def _read_dict(payload: Any) -> dict[str, Any]:
    if not isinstance(payload, list) or not all(
            isinstance(p, list) and len(p) == 2 and isinstance(p[0], str) for p in payload):
        raise TypeError(payload)
    return dict(payload)


def _of_text(read):
    def reader(payload: Any) -> Any:
        if not isinstance(payload, str):
            raise TypeError(payload)
        return read(payload)
    return reader


_READERS = {
    "$float": _read_float,
    "$bytes": _of_text(_read_bytes),
    "$datetime": _of_text(_dt.datetime.fromisoformat),
    "$date": _of_text(_dt.date.fromisoformat),
    "$timedelta": _read_timedelta,
    "$set": _read_set,
    "$dict": _read_dict,
}

__all__ = ["MAX_DEPTH", "NONFINITE_NAMES", "TAGS", "CodecError", "KeyClash", "NotPlain",
           "TooDeep", "decode", "dumps", "encode", "loads", "nonfinite_name", "normalize",
           "plain"]
