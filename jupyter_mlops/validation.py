"""Checks applied before anything is written, so a bad value never half-writes a run."""

from __future__ import annotations

import json
import math
import numbers
import re
import sys
import unicodedata
import warnings
from typing import Any

from .errors import ValidationError, shorten
from .store import jsoncodec

MAX_NAME_LENGTH = 250
MAX_PARAM_LENGTH = 6000
MAX_PARAM_DEPTH = 32  # lists and dicts inside each other; deeper is no hyperparameter
MAX_TAG_LENGTH = 8000
RUN_ID_RE = re.compile(r"^[0-9a-f]{32}\Z")  # \Z, not $: "$" lets a final "\n" in


def check_name(kind: str, name: object) -> str:
    """A key or name: non-empty text of at most 250 characters, no control characters."""
    if not isinstance(name, str):
        raise ValidationError(f"{kind} must be a string; got {type(name).__name__} {shorten(name)}.")
    if not name.strip():
        raise ValidationError(f"{kind} must not be empty or blank; got {shorten(name)}.")
    if len(name) > MAX_NAME_LENGTH:
        raise ValidationError(
            f"{kind} {shorten(name)} is {len(name)} characters long; the limit is {MAX_NAME_LENGTH}."
        )
    for char in name:
        category = unicodedata.category(char)
        if category == "Cc" or category == "Cs":
            raise ValidationError(
                f"{kind} {shorten(name)} contains the control or surrogate character "
                f"{char!r}; use printable text."
            )
    if name.startswith("/") or ".." in name.split("/"):
        raise ValidationError(
            f"{kind} {shorten(name)} must not start with '/' or contain a '..' segment."
        )
    return name


def check_run_id(run_id: object) -> str:
    if not isinstance(run_id, str) or not RUN_ID_RE.match(run_id):
        raise ValidationError(f"A run id is 32 lowercase hex characters; got {shorten(run_id)}.")
    return run_id


def metric_value(key: str, value: object) -> float:
    """A real number as float; NaN and ±inf allowed, bools, strings and arrays refused."""

    def refuse() -> ValidationError:
        return ValidationError(
            f"Metric {key!r} must be a real number; got {type(value).__name__} {shorten(value)}."
        )

    number: Any = value
    shape = getattr(number, "shape", ())
    if shape != () and shape is not None:
        if getattr(number, "size", None) != 1:
            raise ValidationError(
                f"Metric {key!r} must be a single number; got an array of shape {shape}. "
                "Log one value per step instead."
            )
        number = number.reshape(())
    if hasattr(number, "item") and not isinstance(number, (str, bytes)):
        number = number.item()  # numpy scalars and 0-d arrays to Python numbers
    if isinstance(number, bool) or not isinstance(number, numbers.Real):
        raise refuse()
    try:
        result = float(number)
        # A long double or a Fraction past float's range turns into inf without an error.
        overflowed = math.isinf(result) and number != result
    except OverflowError:  # an int past float's range
        overflowed = True
    if overflowed:
        raise ValidationError(
            f"Metric {key!r} is {_described(number)}, beyond what a "
            f"float holds (about ±{sys.float_info.max:.3g}); log its logarithm or a scaled "
            "value instead."
        )
    return result


def _described(number: Any) -> str:
    """``type value`` for a message, without writing out thousands of digits."""
    if isinstance(number, int) and abs(number) >= 10**40:
        digits = int(abs(number).bit_length() * math.log10(2)) + 1
        return f"an int of about {digits} digits"
    try:
        return f"{type(number).__name__} {shorten(number)}"
    except ValueError:  # a Fraction of ints too long to write out
        return f"a {type(number).__name__} too long to write out"


MIN_STEP, MAX_STEP = -(2**63), 2**63 - 1  # SQLite's INTEGER


def metric_step(step: object, key: str | None = None) -> int | None:
    """A metric step as an int SQLite can store, or None for "one past the last"."""
    if step is None:
        return None
    number = step
    if isinstance(step, bool) or not isinstance(step, int):
        try:
            number = int(step.__index__())  # type: ignore[attr-defined] - numpy integers
        except (AttributeError, TypeError):
            raise ValidationError(
                f"A metric step must be an integer; got {type(step).__name__} {shorten(step)}."
            ) from None
    if not MIN_STEP <= number <= MAX_STEP:
        of = f" of metric {key!r}" if key is not None else ""
        raise ValidationError(
            f"Step{of} is {_described(number)}, outside the range a step can hold "
            f"({MIN_STEP} to {MAX_STEP})."
        )
    return number


def encode_param(key: str, value: Any, *, warn: bool = True) -> str:
    """A param as JSON text; a value JSON cannot hold is kept as its repr, with a warning.

    The text is plain JSON (``jsoncodec.plain``: numpy scalars, arrays and tuples as the
    numbers and lists they hold), keys sorted, so SQL can compare it and the same value
    gives the same text. Refused: text longer than MAX_PARAM_LENGTH once encoded (an int
    too long to write out among them), lone surrogates, nesting deeper than
    MAX_PARAM_DEPTH, and dict keys that JSON would merge (``1``, ``"1"``).
    """
    try:
        plain = jsoncodec.plain(value, nonfinite="refuse", max_depth=MAX_PARAM_DEPTH)
        encoded = json.dumps(plain, allow_nan=False, ensure_ascii=False, sort_keys=True)
    except jsoncodec.KeyClash as clash:
        first, second = clash.keys
        raise ValidationError(
            f"Param {key!r} is a {type(value).__name__} whose keys {first!r} and {second!r} "
            "are the same key once stored as JSON text; keep one of them, or use distinct "
            "string keys."
        ) from None
    except jsoncodec.TooDeep:
        raise ValidationError(
            f"Param {key!r} is a {type(value).__name__} nested more than {MAX_PARAM_DEPTH} "
            "levels deep (or holding itself); log a flatter value, or the whole structure "
            "as an artifact with log_artifact()."
        ) from None
    except ValueError as exc:
        if not isinstance(exc, jsoncodec.NotPlain):  # an int Python will not write out
            digits = getattr(sys, "get_int_max_str_digits", lambda: 4300)()
            raise ValidationError(
                f"Param {key!r} holds an int too long to store as text (over {digits} "
                f"digits); the limit is {MAX_PARAM_LENGTH} characters once encoded. Log it "
                "as an artifact with log_artifact() instead."
            ) from None
        encoded = _as_repr(key, value, warn)
    if _has_surrogate(encoded):
        # SQLite text is UTF-8; JSON escapes would merge a surrogate pair into one character.
        raise ValidationError(
            f"Param {key!r} has a value with a lone surrogate character, which cannot be "
            f"stored as text; got {shorten(value)}. Decode it first, or log its repr()."
        )
    if len(encoded) > MAX_PARAM_LENGTH:
        raise ValidationError(
            f"Param {key!r} is {len(encoded)} characters once encoded; the limit is "
            f"{MAX_PARAM_LENGTH}. Log large values as an artifact with log_artifact()."
        )
    return encoded


def _as_repr(key: str, value: Any, warn: bool) -> str:
    """The JSON string of ``repr(value)``: params are plain JSON, which has no NaN."""
    number = value.item() if getattr(value, "shape", None) == () and hasattr(value, "item") \
        else value
    nonfinite = isinstance(number, float)  # shown as nan, not np.float64(nan)
    try:
        text = repr(number if nonfinite else value)
    except Exception as repr_exc:  # noqa: BLE001 - a __repr__ of the user's that fails
        raise ValidationError(
            f"Param {key!r} ({type(value).__name__}) is not JSON-serializable and its "
            f"repr() failed ({type(repr_exc).__name__}); log a string instead."
        ) from None
    if warn:
        why = ("is not a finite number, which JSON cannot hold" if nonfinite
               else "is not JSON-serializable")
        warnings.warn(
            f"Param {key!r} ({type(value).__name__} {shorten(value)}) {why}; stored as "
            f"its repr, the string {shorten(text)}.",
            stacklevel=5,
        )
    return json.dumps(text, allow_nan=False, ensure_ascii=False)


def decode_param(text: str) -> Any:
    return json.loads(text)


def check_tag(key: str, value: object) -> str:
    check_name("Tag key", key)
    text = value if isinstance(value, str) else str(value)
    if _has_surrogate(text):
        raise ValidationError(
            f"Tag {key!r} has a value with a lone surrogate character, which cannot be "
            f"stored as text; got {shorten(text)}. Decode it first, or log its repr()."
        )
    if len(text) > MAX_TAG_LENGTH:
        raise ValidationError(
            f"Tag {key!r} is {len(text)} characters long; the limit is {MAX_TAG_LENGTH}."
        )
    return text


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
