"""R4: every value is stored faithfully or refused before any write."""

import hashlib
import json
import math
import re
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jupyter_mlops as mlops
from jupyter_mlops.tracking import storage

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(300)]

# 500 examples in CI; the soak profile (--soak) raises the default above that.
EXAMPLES = max(500, settings.default.max_examples)
PROPERTY = settings(max_examples=EXAMPLES, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])
MB = 1 << 20

names = st.text(min_size=1, max_size=250).filter(
    lambda s: s.strip() and not s.startswith("/") and ".." not in s.split("/")
    and all(not (0xD800 <= ord(c) <= 0xDFFF) and ord(c) >= 32 and not (0x7F <= ord(c) < 0xA0)
            for c in s))


@PROPERTY
@given(key=names, value=st.floats(allow_nan=False), run_name=names)
def test_names_and_values_round_trip_exactly(store, key, value, run_name):
    with mlops.start_run(run_name) as run:
        mlops.log_metric(key, value)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            mlops.log_param(key, value)
        # An infinite param is kept as its repr, and the user is told so.
        assert len(caught) == (0 if math.isfinite(value) else 1)
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


@pytest.mark.parametrize("value", [2**63, 2**64 + 1, 10**300, -(10**300)])
def test_big_integers_become_floats_without_overflow(store, value):
    with mlops.start_run() as run:
        mlops.log_metric("big", value)
    assert mlops.get_run(run.run_id).metrics["big"] == float(value)


@pytest.mark.parametrize("value", [10**400, -(10**400), 10**5000], ids=["1e400", "-1e400", "1e5000"])
def test_integers_past_the_float_range_are_refused_not_made_infinite(store, value):
    with mlops.start_run() as run:
        before = row_counts(store)
        with pytest.raises(mlops.ValidationError) as caught:
            mlops.log_metrics({"fine": 1.0, "big": value})
        assert row_counts(store) == before
    message = str(caught.value)
    assert message.startswith("Metric 'big' is an int of about")
    assert "beyond what a float holds (about ±1.8e+308)" in message
    assert mlops.get_run(run.run_id).metrics == {}


def test_a_megabyte_param_is_refused_with_its_length(store):
    with mlops.start_run() as run:
        with pytest.raises(mlops.ValidationError, match="1000002 characters"):
            mlops.log_param("blob", "x" * 1_000_000)
    assert mlops.get_run(run.run_id).params == {}


# -- anything st.text() makes: stored exactly, or refused with nothing written ----------

def row_counts(store) -> tuple:
    """How many rows each table a run writes holds: unchanged after a refused value."""
    tables = ("runs", "params", "metrics", "latest_metrics", "tags", "artifacts",
              "run_datasets")
    return tuple(store.query(f"SELECT count(*) FROM {t}")[0][0] for t in tables)


def stored_or_refused(store, write) -> bool:
    """True when ``write()`` was accepted; a refusal must be a ValidationError that left
    every table as it was."""
    before = row_counts(store)
    try:
        write()
    except mlops.ValidationError:
        assert row_counts(store) == before
        return False
    return True


# st.text() leaves out lone surrogates; undecodable file names bring them into values.
with_surrogates = st.lists(st.one_of(st.characters(), st.characters(categories=["Cs"])),
                           max_size=40).map("".join)
any_value_text = st.one_of(st.text(max_size=300), with_surrogates)


@PROPERTY
@given(name=st.text(max_size=300), text=any_value_text, value=st.floats(allow_nan=False))
def test_any_text_is_stored_exactly_or_refused_before_any_write(store, name, text, value):
    named = stored_or_refused(store, lambda: mlops.start_run(name))
    run = mlops.active_run() if named else mlops.start_run("fallback")
    expected = {"metrics": {}, "params": {}, "tags": {}}
    try:
        if stored_or_refused(store, lambda: mlops.log_metric(name, value)):
            expected["metrics"][name] = value
        if stored_or_refused(store, lambda: mlops.log_param(name, text)):
            expected["params"][name] = text
        if stored_or_refused(store, lambda: mlops.set_tag(name, text)):
            expected["tags"][name] = text
    finally:
        mlops.end_run()  # whatever failed, the next example starts with no active run
    got = mlops.get_run(run.run_id)
    assert got.name == (name if named else "fallback")
    # == holds -0.0 and 0.0 equal: SQLite keeps an integral REAL as an integer.
    assert (got.metrics, got.params, got.tags) == (
        expected["metrics"], expected["params"], expected["tags"])


# -- metrics ------------------------------------------------------------------------

def test_nan_is_a_flag_beside_null_and_infinities_are_real(store):
    with mlops.start_run() as run:
        mlops.log_metrics({"nan": math.nan, "inf": math.inf, "ninf": -math.inf})
    rows = store.query("SELECT key, value, is_nan, typeof(value) FROM metrics "
                       "WHERE run_id = ? ORDER BY key", (run.run_id,))
    assert rows == [("inf", math.inf, 0, "real"), ("nan", None, 1, "null"),
                    ("ninf", -math.inf, 0, "real")]
    got = mlops.get_run(run.run_id).metrics
    assert math.isnan(got["nan"]) and got["inf"] == math.inf and got["ninf"] == -math.inf


@pytest.mark.parametrize(("value", "message"), [
    ("high", "Metric 'auc' must be a real number; got str 'high'."),
    (None, "Metric 'auc' must be a real number; got NoneType None."),
    (True, "Metric 'auc' must be a real number; got bool True."),
    (np.bool_(True), "Metric 'auc' must be a real number; got bool"),
    (np.array([0.5, 0.6]), "Metric 'auc' must be a single number; got an array of shape (2,)"),
    (np.zeros((1, 2)), "Metric 'auc' must be a single number; got an array of shape (1, 2)"),
    (1 + 2j, "Metric 'auc' must be a real number; got complex (1+2j)."),
])
def test_a_bad_metric_is_refused_naming_key_and_type(store, value, message):
    with mlops.start_run():
        before = row_counts(store)
        with pytest.raises(mlops.ValidationError) as caught:
            mlops.log_metrics({"fine": 1.0, "auc": value})
        assert row_counts(store) == before
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize("value", [np.float32(0.25), np.float64(-3.5), np.int64(7),
                                   np.int8(-2), np.array(2.5), np.array([4.0]),
                                   np.float16(0.5)])
def test_numpy_numbers_are_stored_as_the_same_float(store, value):
    with mlops.start_run() as run:
        mlops.log_metric("m", value)
    assert mlops.get_run(run.run_id).metrics["m"] == float(np.asarray(value).reshape(()))


def test_autolog_leaves_out_a_number_past_the_float_range_and_keeps_the_rest(
        shell, store, capsys):
    cell = "%%track -n big\nhuge = 10**400\nscore = 0.5 + 0.25\nlr = 0.1"
    assert shell.run_cell(cell, store_history=True).success
    run = mlops.get_run(store.query("SELECT run_id FROM runs WHERE name = 'big'")[0][0])
    assert (run.status, run.metrics, run.params) == ("FINISHED", {"score": 0.75}, {"lr": 0.1})
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(("step", "shown"), [(2**63, "int 9223372036854775808"),
                                             (-(2**63) - 1, "int -9223372036854775809"),
                                             (10**5000, "an int of about 5001 digits")],
                         ids=["2**63", "-2**63-1", "1e5000"])
def test_a_step_sqlite_cannot_hold_is_refused_naming_key_and_range(store, step, shown):
    with mlops.start_run() as run:
        before = row_counts(store)
        with pytest.raises(mlops.ValidationError) as caught:
            mlops.log_metric("loss", 0.5, step=step)
        assert row_counts(store) == before
    assert str(caught.value) == (
        f"Step of metric 'loss' is {shown}, outside the range a step can hold "
        "(-9223372036854775808 to 9223372036854775807).")
    assert mlops.get_run(run.run_id).metric_history("loss") == []


def test_the_last_step_is_kept_and_the_one_after_refused(store):
    with mlops.start_run() as run:
        mlops.log_metric("loss", 0.5, step=2**63 - 1)
        before = row_counts(store)
        with pytest.raises(mlops.ValidationError, match="Metric 'loss' is at step "
                                                       "9223372036854775807, the last"):
            mlops.log_metrics({"other": 1.0, "loss": 0.25})  # one past the last step
        assert row_counts(store) == before
    (kept,) = mlops.get_run(run.run_id).metric_history("loss")
    assert (kept.step, kept.value) == (2**63 - 1, 0.5)


# -- params -------------------------------------------------------------------------

def test_an_int_too_long_to_write_out_is_refused_naming_key_and_limit(store):
    with mlops.start_run() as run:
        before = row_counts(store)
        for value in (10**5000, [1, 10**5000], {"n": -(10**5000)}):
            with pytest.raises(mlops.ValidationError) as caught:
                mlops.log_params({"ok": 1, "n": value})
            message = str(caught.value)
            assert message.startswith("Param 'n' holds an int too long to store as text")
            assert "the limit is 6000 characters" in message
        assert row_counts(store) == before
        mlops.log_param("n", 10**4000)  # 4,001 digits: within the limit, kept exactly
    assert mlops.get_run(run.run_id).params == {"n": 10**4000}


@pytest.mark.parametrize("value", [{1: "a", "1": "b"}, {"outer": {None: 1, "None": 2}},
                                   [{2.5: "x", "2.5": "y"}]])
def test_dict_keys_that_json_would_merge_are_refused(store, value):
    with mlops.start_run() as run:
        before = row_counts(store)
        with pytest.raises(mlops.ValidationError,
                           match=r"^Param 'mapping' is a \w+ whose keys .* are the same key "
                                 "once stored as JSON text"):
            mlops.log_params({"ok": 1, "mapping": value})
        assert row_counts(store) == before
    assert mlops.get_run(run.run_id).params == {}


def _nested(depth):
    value = 1
    for _ in range(depth):
        value = [value]
    return value


def _holding_itself():
    value = []
    value.append(value)
    return value


@pytest.mark.parametrize("value", [_nested(2000), _nested(33), {"a": _nested(40)},
                                   _holding_itself()], ids=["2000", "33", "dict", "itself"])
def test_params_nested_too_deep_are_refused_before_any_write(store, value):
    # 2,000 levels used to escape as a raw RecursionError; a list holding itself too.
    with mlops.start_run() as run:
        before = row_counts(store)
        with pytest.raises(mlops.ValidationError, match=r"nested more than 32 levels deep"):
            mlops.log_params({"ok": 1, "deep": value})
        assert row_counts(store) == before
        mlops.log_param("flat", _nested(32))  # the limit itself is kept
    assert mlops.get_run(run.run_id).params == {"flat": _nested(32)}


@pytest.mark.parametrize(("value", "kept"), [(math.nan, "nan"), (np.float32("nan"), "nan"),
                                             (-math.inf, "-inf"), ([1.0, math.nan], "[1.0, nan]")])
def test_a_param_json_cannot_hold_is_kept_as_its_repr_with_a_warning(store, value, kept):
    warned = pytest.warns(UserWarning, match=f"Param 'p' .* stored as its repr, the string "
                                             f"'{re.escape(kept)}'")
    with mlops.start_run() as run, warned:
        mlops.log_param("p", value)
    assert mlops.get_run(run.run_id).params == {"p": kept}


def test_the_param_limit_is_exact_and_named(store):
    with mlops.start_run() as run:
        mlops.log_param("at_limit", "x" * 5998)  # 6,000 characters with its JSON quotes
        with pytest.raises(mlops.ValidationError) as caught:
            mlops.log_params({"ok": 1, "over": "x" * 5999})
    message = str(caught.value)
    assert "Param 'over'" in message and "6001 characters" in message
    assert "limit is 6000" in message
    assert mlops.get_run(run.run_id).params == {"at_limit": "x" * 5998}


def test_relogging_a_param_with_another_value_is_refused_whole(store):
    with mlops.start_run() as run:
        mlops.log_param("lr", 0.1)
        with pytest.raises(mlops.ValidationError) as caught:
            mlops.log_params({"momentum": 0.9, "lr": 0.2})
    message = str(caught.value)
    assert message.startswith("Param 'lr' was already logged as '0.1'; got '0.2'.")
    assert "Params are write-once" in message
    assert mlops.get_run(run.run_id).params == {"lr": 0.1}  # momentum not written either


def test_a_param_with_lone_surrogates_is_refused_naming_the_key(store):
    undecodable = b"data-\xff.csv".decode(errors="surrogateescape")
    with mlops.start_run() as run:
        with pytest.raises(mlops.ValidationError, match="Param 'path'.*surrogate"):
            mlops.log_params({"ok": 1, "path": undecodable})
        with pytest.raises(mlops.ValidationError, match="Param 'nested'.*surrogate"):
            mlops.log_param("nested", {"file": undecodable})
    assert mlops.get_run(run.run_id).params == {}


def test_a_tag_with_lone_surrogates_is_refused_naming_the_key(store):
    with mlops.start_run() as run:
        with pytest.raises(mlops.ValidationError, match="Tag 'path'.*surrogate"):
            mlops.set_tags({"ok": "fine", "path": "data-\udcff.csv"})
    assert mlops.get_run(run.run_id).tags == {}


# -- names and keys -----------------------------------------------------------------

HOSTILE_NAMES = [
    "", "   ", "a\x00b", "x" * 251, "bad\ud800", "\udfff", "/abs", "a/../b", "..", "../x",
    "x/..", "a\x1bb", "del\x7f", "line\nbreak", "tab\there", "next\x85line", "cr\r",
]

# Every place a name is given: (what the message calls it, how to give it). Those that
# start a run are given with no run active; the others log to an active run.
STARTS_A_RUN = {
    "Run name": lambda name: mlops.start_run(name),
    "Experiment name": lambda name: mlops.start_run("r", experiment=name),
    "Tag key": lambda name: mlops.start_run("r", tags={name: "v"}),
}
LOGS_TO_A_RUN = {
    "Param name": lambda name: mlops.log_param(name, 1),
    "Metric name": lambda name: mlops.log_metric(name, 1.0),
    "Tag key": lambda name: mlops.set_tag(name, "v"),
    "Artifact name": lambda name: mlops.log_bytes(b"bytes", name),
    "Dataset name": lambda name: mlops.log_dataset(np.zeros(3), name),
}


def assert_refused_before_any_write(store, kind: str, give) -> None:
    for name in HOSTILE_NAMES:
        before = row_counts(store)
        files = sorted(store.artifacts.root.rglob("*"))
        with pytest.raises(mlops.ValidationError) as caught:
            give(name)
        assert row_counts(store) == before, (kind, name)
        assert sorted(store.artifacts.root.rglob("*")) == files, (kind, name)
        assert str(caught.value).startswith(kind), (kind, name, str(caught.value))


@pytest.mark.parametrize("kind", STARTS_A_RUN)
def test_hostile_run_names_are_refused_before_any_write(store, kind):
    assert_refused_before_any_write(store, kind, STARTS_A_RUN[kind])
    assert mlops.active_run() is None


@pytest.mark.parametrize("kind", LOGS_TO_A_RUN)
def test_hostile_keys_are_refused_before_any_write(store, kind):
    with mlops.start_run("outer") as outer:
        assert_refused_before_any_write(store, kind, LOGS_TO_A_RUN[kind])
    assert mlops.get_run(outer.run_id).status == "FINISHED"


FRIENDLY_NAMES = ["モデル", "😀 run", "שלום עולם", "e\u0301", "\u202eevil", "a\u200db",
                  "👩\u200d👩\u200d👧", "漢字/かな", "Ωmega ≥ 1", "مرحبا"]


@pytest.mark.parametrize("name", FRIENDLY_NAMES)
def test_unicode_names_round_trip_byte_exact_everywhere(store, name):
    with mlops.start_run(name, experiment=name, tags={name: name}) as run:
        mlops.log_param(name, name)
        mlops.log_metric(name, 1.0)
        digest = mlops.log_bytes(b"bytes", name)
    got = mlops.get_run(run.run_id)
    encoded = name.encode()
    assert got.name.encode() == encoded and got.experiment.encode() == encoded
    assert [k.encode() for k in got.params] == [encoded] and got.params[name] == name
    assert [k.encode() for k in got.metrics] == [encoded]
    assert {k.encode(): v.encode() for k, v in got.tags.items()} == {encoded: encoded}
    (artifact,) = got.artifacts
    assert artifact.name.encode() == encoded and artifact.sha256 == digest


# -- batches ------------------------------------------------------------------------

def test_a_huge_batch_failing_inside_the_transaction_leaves_nothing(store):
    """The 10,000 values pass validation; the store fails at the 9,999th row."""
    with mlops.start_run() as run:
        store.connection().execute(
            "CREATE TEMP TRIGGER fail_late BEFORE INSERT ON metrics WHEN NEW.key = 'm9998' "
            "BEGIN SELECT RAISE(ABORT, 'injected failure'); END")
        try:
            with pytest.raises(Exception, match="injected failure"):
                mlops.log_metrics({f"m{i}": float(i) for i in range(10_000)})
        finally:
            store.connection().execute("DROP TRIGGER fail_late")
        counts = store.query("SELECT (SELECT count(*) FROM metrics WHERE run_id = ?), "
                             "(SELECT count(*) FROM latest_metrics WHERE run_id = ?)",
                             (run.run_id, run.run_id))
        assert counts == [(0, 0)]
        mlops.log_metrics({f"m{i}": float(i) for i in range(10_000)})  # then all of it
    assert len(mlops.get_run(run.run_id).metrics) == 10_000


# -- huge artifacts: streamed, in bounded memory; a failed write leaves nothing ---------

def run_child(script: str, *args: str) -> dict:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(script), *map(str, args)],
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def sparse_file(path, size: int):
    """A file of ``size`` zero bytes that takes no disk space until copied."""
    with open(path, "wb") as out:
        out.truncate(size)
    return path


def sha256_of(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(4 * MB):
            digest.update(chunk)
    return digest.hexdigest()


HUGE_ARTIFACT = """
    import json, resource, sys, tracemalloc
    import jupyter_mlops as mlops

    mlops.set_store(sys.argv[1])
    with mlops.start_run("huge"):
        mlops.log_bytes(b"warm-up", "warm.bin")  # imports and first writes done before
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        tracemalloc.start()
        digest = mlops.log_artifact(sys.argv[2], name="huge.bin")
        traced_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"digest": digest, "traced_peak": traced_peak,
                      "rss_growth": (rss_after - rss_before) * 1024}))
"""


def test_a_huge_artifact_is_hashed_and_copied_in_bounded_memory(tmp_path, scale):
    size = (2048 if scale.soak else 256) * MB
    source = sparse_file(tmp_path / "huge.bin", size)
    store_path = tmp_path / ".mlops"
    measured = run_child(HUGE_ARTIFACT, store_path, source)
    assert measured["digest"] == sha256_of(source)
    assert measured["traced_peak"] < 50 * MB, measured
    assert measured["rss_growth"] < 50 * MB, measured
    from jupyter_mlops.store import Store

    store = Store(store_path, read_only=True)
    try:
        assert store.artifacts.path_for(measured["digest"]).stat().st_size == size
        assert store.query("SELECT size FROM artifacts WHERE name = 'huge.bin'") == [(size,)]
    finally:
        store.close()


FILE_SIZE_LIMIT = """
    import json, resource, signal, sys
    import jupyter_mlops as mlops

    mlops.set_store(sys.argv[1])
    limit = int(sys.argv[3])
    run = mlops.start_run("limited")
    # Past the limit a write fails with EFBIG instead of the process being killed.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    errors = []
    for write in (lambda: mlops.log_artifact(sys.argv[2]),
                  lambda: mlops.log_bytes(b"\\1" * (4 * limit), "bytes.bin")):
        try:
            write()
            errors.append(None)
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
    mlops.end_run()
    print(json.dumps({"errors": errors, "run_id": run.run_id}))
"""


def test_a_write_cut_by_the_file_size_limit_leaves_no_file_and_no_row(tmp_path):
    from jupyter_mlops.store import Store

    store_path = tmp_path / ".mlops"
    Store(store_path).close()  # created at full size before the limit applies
    source = sparse_file(tmp_path / "big.bin", 8 * MB)
    outcome = run_child(FILE_SIZE_LIMIT, store_path, source, 2 * MB)
    for error in outcome["errors"]:  # EFBIG, as StoreFullError naming the folder and why
        assert error.startswith(f"StoreFullError: No room to store an artifact in "
                                f"{store_path / 'artifacts'} (File too large)"), error
    leftovers = [p.name for p in (store_path / "artifacts").rglob("*") if p.is_file()]
    assert leftovers == []
    store = Store(store_path, read_only=True)
    try:
        assert store.query("SELECT count(*) FROM artifacts")[0][0] == 0
        assert storage.get_run(store, outcome["run_id"]).status == "FINISHED"
    finally:
        store.close()
