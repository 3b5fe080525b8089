"""``validation``: the checks run before any write, and the messages that name the key, the
type and the limit (R4). The end-to-end side is in tests/reliability/test_r4_values.py."""

import json
import math
from fractions import Fraction

import numpy as np
import pytest

from jupyter_mlops.errors import ValidationError
from jupyter_mlops.validation import (
    MAX_NAME_LENGTH,
    MAX_PARAM_LENGTH,
    MAX_TAG_LENGTH,
    check_name,
    check_run_id,
    check_tag,
    decode_param,
    encode_param,
    metric_value,
)


@pytest.mark.parametrize(("name", "says"), [
    ("", "must not be empty"),
    (" \t", "must not be empty"),
    ("x" * (MAX_NAME_LENGTH + 1), f"is {MAX_NAME_LENGTH + 1} characters long; the limit is "
                                  f"{MAX_NAME_LENGTH}"),
    ("a\x00b", "control or surrogate character '\\x00'"),
    ("a\x1bb", "control or surrogate character '\\x1b'"),
    ("bad\ud800", "control or surrogate character '\\ud800'"),
    ("/abs", "must not start with '/'"),
    ("a/../b", "'..' segment"),
    (42, "must be a string; got int 42"),
    (None, "must be a string; got NoneType None"),
])
def test_check_name_refuses_and_says_why(name, says):
    with pytest.raises(ValidationError) as caught:
        check_name("Metric name", name)
    message = str(caught.value)
    assert message.startswith("Metric name") and says in message


@pytest.mark.parametrize("name", ["x" * MAX_NAME_LENGTH, "a/b/c", "..x", "x..", "e\u0301",
                                  "\u202eevil", "😀", "漢字"])
def test_check_name_accepts_and_keeps_the_text(name):
    assert check_name("Run name", name) is name


@pytest.mark.parametrize("run_id", ["0" * 31, "0" * 33, "A" * 32, "0" * 32 + "\n", "../x",
                                    None, 7])
def test_run_ids_are_exactly_32_lowercase_hex(run_id):
    with pytest.raises(ValidationError, match="32 lowercase hex"):
        check_run_id(run_id)


def test_a_run_id_passes_unchanged():
    assert check_run_id("0123456789abcdef" * 2) == "0123456789abcdef" * 2


@pytest.mark.parametrize(("value", "expected"), [
    (np.float32(0.25), 0.25), (np.int64(-7), -7.0), (np.array(2.5), 2.5),
    (np.array([[3.0]]), 3.0), (2**63, 2.0**63), (True + 0, 1.0), (math.inf, math.inf),
])
def test_metric_values_become_floats(value, expected):
    assert metric_value("m", value) == expected


# A long double holds 1e400 where it is wider than a double (x86): float() makes it inf.
WIDE_LONG_DOUBLE = [np.longdouble("1e400")] if np.finfo(np.longdouble).maxexp > 1024 else []


@pytest.mark.parametrize("value", [10**400, -(10**400), Fraction(10**400, 3),
                                   *WIDE_LONG_DOUBLE])
def test_a_metric_past_the_float_range_is_refused_not_made_infinite(value):
    with pytest.raises(ValidationError, match=r"Metric 'm' is .*beyond what a float holds"):
        metric_value("m", value)


@pytest.mark.parametrize(("value", "says"), [
    ("0.5", "must be a real number; got str '0.5'"),
    (False, "must be a real number; got bool False"),
    (np.ones(2), "must be a single number; got an array of shape (2,)"),
    ({"a": 1}, "must be a real number; got dict"),
])
def test_metric_refusals_name_key_and_type(value, says):
    with pytest.raises(ValidationError) as caught:
        metric_value("auc", value)
    assert str(caught.value).startswith(f"Metric 'auc' {says}")


@pytest.mark.parametrize("value", [0.1, 3, "adam", None, True, [64, 32], {"b": 1, "a": [1]},
                                   "漢字 😀", "a\x00b"])
def test_params_round_trip_through_json(value):
    assert decode_param(encode_param("p", value)) == value


def test_param_encoding_is_plain_and_stable():
    assert encode_param("p", (1, 2)) == "[1, 2]"
    assert encode_param("p", np.float64(0.5)) == "0.5"
    assert encode_param("p", {"b": 1, "a": 2}) == '{"a": 2, "b": 1}'
    assert encode_param("p", np.array([[1, 2]])) == "[[1, 2]]"  # the codec's lists
    with pytest.warns(UserWarning, match="not a finite number"):
        assert json.loads(encode_param("p", math.inf)) == "inf"


def test_the_param_limit_counts_the_encoded_text():
    assert len(encode_param("p", "x" * (MAX_PARAM_LENGTH - 2))) == MAX_PARAM_LENGTH
    with pytest.raises(ValidationError, match=f"is {MAX_PARAM_LENGTH + 1} characters once "
                                              f"encoded; the limit is {MAX_PARAM_LENGTH}"):
        encode_param("p", "x" * (MAX_PARAM_LENGTH - 1))


@pytest.mark.parametrize("value", ["\udcff", ["ok", "\ud800"], {"k": "\udfff"},
                                   "\ud800\udc00"])
def test_params_sqlite_cannot_store_are_refused(value):
    # '\ud800\udc00' would come back as one character through JSON escapes.
    with pytest.raises(ValidationError, match="Param 'path' .*surrogate"):
        encode_param("path", value)


def test_tags_are_text_with_a_limit():
    assert check_tag("k", 3) == "3"
    assert check_tag("k", "x" * MAX_TAG_LENGTH) == "x" * MAX_TAG_LENGTH
    with pytest.raises(ValidationError, match=f"the limit is {MAX_TAG_LENGTH}"):
        check_tag("k", "x" * (MAX_TAG_LENGTH + 1))
    with pytest.raises(ValidationError, match="Tag 'k' .*surrogate"):
        check_tag("k", "bad\udcff")
    with pytest.raises(ValidationError, match="Tag key"):
        check_tag("", "v")
