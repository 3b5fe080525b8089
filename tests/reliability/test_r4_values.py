"""R4: every value is stored faithfully or refused before any write."""

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jupyter_mlops as mlops

pytestmark = pytest.mark.reliability

names = st.text(min_size=1, max_size=250).filter(
    lambda s: s.strip() and not s.startswith("/") and ".." not in s.split("/")
    and all(not (0xD800 <= ord(c) <= 0xDFFF) and ord(c) >= 32 and not (0x7F <= ord(c) < 0xA0)
            for c in s))


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=names, value=st.floats(allow_nan=False), run_name=names)
def test_names_and_values_round_trip_exactly(store, key, value, run_name):
    with mlops.start_run(run_name) as run:
        mlops.log_metric(key, value)
        mlops.log_param(key, value)
        mlops.set_tag(key, run_name)
    got = mlops.get_run(run.run_id)
    assert got.name == run_name
    assert got.metrics == {key: value}
    assert got.params == ({key: value} if math.isfinite(value) else {key: repr(value)})
    assert got.tags == {key: run_name}


def test_nan_and_infinities_survive_search_and_history(store):
    with mlops.start_run() as run:
        mlops.log_metrics({"a": math.nan, "b": math.inf, "c": -math.inf})
        mlops.log_metric("a", 1.0)
        mlops.log_metric("a", math.nan)
    got = mlops.get_run(run.run_id)
    assert math.isnan(got.metrics["a"]) and got.metrics["b"] == math.inf
    values = [m.value for m in got.metric_history("a")]
    assert math.isnan(values[0]) and values[1] == 1.0 and math.isnan(values[2])
    frame = mlops.search_runs()
    assert frame.loc[0, "metrics.c"] == -math.inf


def test_a_huge_batch_is_all_or_nothing(store):
    with mlops.start_run() as run:
        good = {f"m{i}": float(i) for i in range(10_000)}
        mlops.log_metrics(good)
        with pytest.raises(mlops.ValidationError, match="m9999"):
            mlops.log_metrics({**{f"n{i}": 1.0 for i in range(9_999)}, "m9999": "bad"})
    assert len(mlops.get_run(run.run_id).metrics) == 10_000


@pytest.mark.parametrize("value", [2**63, 2**64 + 1, 10**400])
def test_big_integers_become_floats_without_overflow(store, value):
    with mlops.start_run() as run:
        mlops.log_metric("big", value)
    stored = mlops.get_run(run.run_id).metrics["big"]
    assert stored == (float(value) if value < 10**300 else math.inf)


def test_a_megabyte_param_is_refused_with_its_length(store):
    with mlops.start_run() as run:
        with pytest.raises(mlops.ValidationError, match="1000002 characters"):
            mlops.log_param("blob", "x" * 1_000_000)
    assert mlops.get_run(run.run_id).params == {}
