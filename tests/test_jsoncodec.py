"""``store.jsoncodec``: the one strict-JSON codec. Whatever goes in, the text is strict JSON
and reads back as the documented value; the old stored formats are read in the tests of the
modules that stored them (test_search, test_evaluation_store, test_drift_report,
test_monitoring)."""

from __future__ import annotations

import datetime as dt
import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jupyter_mlops.errors import ValidationError
from jupyter_mlops.store import jsoncodec
from jupyter_mlops.store.jsoncodec import KeyClash, NotPlain, TooDeep


def refuse_constant(name):
    raise ValueError(f"bare {name} is not JSON")


def strict(text: str):
    """What a JSON parser that knows no NaN or Infinity (a browser's, Go's) makes of it."""
    text.encode("utf-8")  # storable as SQLite text, sendable as UTF-8
    return json.loads(text, parse_constant=refuse_constant)


# -- the property -------------------------------------------------------------------------

# UTC offsets to the second: Python 3.11 reads "+00:00:00.000001" as UTC (real zones, even
# the local mean times of the 1800s, are whole seconds).
offsets = st.integers(-86399, 86399).map(lambda s: dt.timezone(dt.timedelta(seconds=s)))
hashables = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
    | st.binary(max_size=8) | st.dates(),
    lambda inner: st.tuples(inner, inner) | st.frozensets(inner, max_size=3), max_leaves=6)
scalars = (
    st.none() | st.booleans() | st.integers() | st.floats() | st.text() | st.binary()
    | st.datetimes(timezones=st.none() | offsets) | st.dates() | st.timedeltas()
    | st.floats(width=32).map(np.float32) | st.integers(-2**63, 2**63 - 1).map(np.int64)
    | st.sampled_from([math.nan, math.inf, -math.inf])
)
keys = st.text() | st.sampled_from([*jsoncodec.TAGS, "$", "$$float", "nonfinite", "x"])
values = st.recursive(
    scalars,
    lambda inner: (st.lists(inner, max_size=4) | st.tuples(inner, inner)
                   | st.dictionaries(keys, inner, max_size=4) | st.sets(hashables, max_size=4)
                   | st.lists(st.floats(), max_size=4).map(np.array)),
    max_leaves=20,
)


def expected(value):
    """The documented reading: tuples and arrays as lists, numpy as Python, the rest as is."""
    if isinstance(value, np.ndarray):
        return [expected(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [expected(v) for v in value]
    if isinstance(value, dict):
        return {k: expected(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return set(value)
    return value


def same(got, want) -> bool:
    """Equality that holds NaN equal to NaN and tells 1, 1.0 and True apart."""
    if isinstance(want, float) and math.isnan(want):
        return isinstance(got, float) and math.isnan(got)
    if type(got) is not type(want) and not (isinstance(got, set) and isinstance(want, set)):
        return False
    if isinstance(want, list):
        return len(got) == len(want) and all(same(g, w) for g, w in zip(got, want))
    if isinstance(want, dict):
        return got.keys() == want.keys() and all(same(got[k], want[k]) for k in want)
    if isinstance(want, dt.datetime):
        return got == want and got.utcoffset() == want.utcoffset()
    return got == want


@settings(max_examples=300, deadline=None)
@given(values)
def test_any_value_is_strict_json_and_reads_back(value):
    text = jsoncodec.dumps(value)
    strict(text)
    assert same(jsoncodec.loads(text), expected(value))
    assert same(jsoncodec.decode(jsoncodec.encode(value)), expected(value))


@settings(max_examples=200, deadline=None)
@given(values, st.sampled_from(["null", "name"]))
def test_plain_is_strict_json(value, nonfinite):
    strict(json.dumps(jsoncodec.plain(value, nonfinite=nonfinite), allow_nan=False))


# -- the documented forms, pinned ---------------------------------------------------------

@pytest.mark.parametrize(("value", "text"), [
    (math.nan, '{"$float":"nan"}'),
    (math.inf, '{"$float":"inf"}'),
    (-np.float64("inf"), '{"$float":"-inf"}'),
    ([1.5, np.float32(0.25), np.int64(3), np.array([[1, 2]])], "[1.5,0.25,3,[[1,2]]]"),
    (b"\x00\xff", '{"$bytes":"AP8="}'),
    (dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.timezone.utc),
     '{"$datetime":"2024-05-01T12:00:00+00:00"}'),
    (pd.Timestamp("2024-05-01 12:00:00.000001"), '{"$datetime":"2024-05-01T12:00:00.000001"}'),
    (np.datetime64("2024-05-01T12:00:00.000000001"), '{"$datetime":"2024-05-01T12:00:00"}'),
    (dt.date(2024, 5, 1), '{"$date":"2024-05-01"}'),
    (dt.timedelta(days=-1, seconds=5, microseconds=7), '{"$timedelta":[-1,5,7]}'),
    ({3, 1, 2}, '{"$set":[1,2,3]}'),
    ((1, "a"), '[1,"a"]'),
    ({1: "a", ("x", 2): "b"}, '{"1":"a","(\'x\', 2)":"b"}'),
    ({"$float": "nan"}, '{"$dict":[["$float","nan"]]}'),
    ({"$float": "nan", "other": 1}, '{"$float":"nan","other":1}'),
    ([None, pd.NaT, pd.NA, np.datetime64("NaT")], "[null,null,null,null]"),
    ("漢字 😀", '"漢字 😀"'),
    ("lone \ud800", '"lone \\ud800"'),
])
def test_each_form_is_the_documented_one(value, text):
    assert jsoncodec.dumps(value) == text


def test_other_objects_are_their_text():
    class Thing:
        def __str__(self):
            return "a thing"

    assert jsoncodec.loads(jsoncodec.dumps({"x": Thing(), "c": 1 + 2j})) == {
        "x": "a thing", "c": "(1+2j)"}


@pytest.mark.parametrize(("nonfinite", "shown"), [("null", None), ("name", "-inf")])
def test_plain_writes_what_readers_without_tags_understand(nonfinite, shown):
    value = {"v": -math.inf, "b": b"ab", "when": dt.datetime(2024, 1, 2),
             "d": dt.timedelta(seconds=1.5), "s": {2, 1}, "a": np.array([1.0, np.nan])}
    assert jsoncodec.plain(value, nonfinite=nonfinite) == {
        "v": shown, "b": "YWI=", "when": "2024-01-02T00:00:00", "d": 1.5, "s": [1, 2],
        "a": [1.0, None if nonfinite == "null" else "nan"]}


@pytest.mark.parametrize("value", [math.nan, [1.0, math.inf], b"x", {1}, dt.date(2024, 1, 1),
                                   object()])
def test_plain_refuse_takes_only_what_json_holds_as_itself(value):
    with pytest.raises(NotPlain):
        jsoncodec.plain(value, nonfinite="refuse")
    assert jsoncodec.plain([np.float64(0.5), (1, 2), {"k": None}], nonfinite="refuse") == [
        0.5, [1, 2], {"k": None}]


def test_keys_that_would_merge_are_refused_not_merged():
    with pytest.raises(KeyClash) as caught:
        jsoncodec.dumps({"a": {1: "int", "1": "text"}})
    assert caught.value.keys == (1, "1")
    assert isinstance(caught.value, ValidationError)


def test_a_value_holding_itself_or_nested_too_deep_is_refused():
    looped: list = []
    looped.append(looped)
    with pytest.raises(TooDeep):
        jsoncodec.dumps(looped)
    nested: list = [0]
    for _ in range(10):
        nested = [nested]
    with pytest.raises(TooDeep, match="more than 5 levels"):
        jsoncodec.encode(nested, max_depth=5)
    assert jsoncodec.encode(nested, max_depth=11) == json.loads(json.dumps(nested))


@pytest.mark.parametrize("text", [
    '{"$float":"NaN"}', '{"$float":1}', '{"$bytes":"not base64!"}', '{"$datetime":"soon"}',
    '{"$timedelta":[1,2]}', '{"$set":{"a":1}}', '{"$dict":[[1,2]]}', '{"$other":1}',
])
def test_an_object_that_is_no_well_formed_tag_reads_as_it_is(text):
    # JSON written before the codec (a column named "$float", say) reads unchanged.
    assert jsoncodec.loads(text) == json.loads(text)
    assert jsoncodec.decode(json.loads(text)) == json.loads(text)


def test_nonfinite_names_are_what_float_reads():
    assert [jsoncodec.nonfinite_name(v) for v in (math.nan, math.inf, -math.inf, 0.0)] == [
        "nan", "inf", "-inf", None]
    assert all(jsoncodec.nonfinite_name(float(n)) == n for n in jsoncodec.NONFINITE_NAMES)
