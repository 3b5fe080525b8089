"""Checks applied before anything is written, so a bad value never half-writes a run."""

from __future__ import annotations

import json
import math
import numbers
import re
import unicodedata
import warnings
from typing import Any

from .errors import ValidationError, shorten

MAX_NAME_LENGTH = 250
MAX_PARAM_LENGTH = 6000
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
        return float(number)
    except OverflowError:  # an int beyond float's range
        return math.inf if number > 0 else -math.inf


def _plain(value: Any) -> Any:
    """numpy scalars and tuples to their plain JSON counterparts."""
    if hasattr(value, "item") and getattr(value, "shape", None) == ():
        return value.item()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def encode_param(key: str, value: Any, *, warn: bool = True) -> str:
    """A param as JSON text; a value JSON cannot hold is kept as its repr, with a warning."""
    plain = _plain(value)
    if isinstance(plain, float) and not math.isfinite(plain):
        encoded = json.dumps(repr(plain))
    else:
        try:
            encoded = json.dumps(plain, allow_nan=False, ensure_ascii=False, sort_keys=True)
        except (TypeError, ValueError):
            if warn:
                warnings.warn(
                    f"Param {key!r} ({type(value).__name__}) is not JSON-serializable; "
                    "stored as its repr.",
                    stacklevel=4,
                )
            encoded = json.dumps(repr(value), ensure_ascii=False)
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
