import math

import numpy as np
import pytest

import jupyter_mlops as mlops
from jupyter_mlops import ValidationError


def test_run_round_trip(store):
    with mlops.start_run("baseline", experiment="iris", tags={"team": "a"}) as run:
        mlops.log_params({"C": 0.5, "solver": "lbfgs", "layers": [64, 32], "flag": True})
        mlops.log_metric("acc", 0.93)
        mlops.set_tag("stage", "dev")
    got = mlops.get_run(run.run_id)
    assert got.status == "FINISHED"
    assert got.experiment == "iris" and got.name == "baseline"
    assert got.params == {"C": 0.5, "solver": "lbfgs", "layers": [64, 32], "flag": True}
    assert got.metrics == {"acc": 0.93}
    assert got.tags == {"team": "a", "stage": "dev"}
    assert got.end_time >= got.start_time
    assert mlops.get_run(run.run_id[:8]).run_id == run.run_id


def test_metric_steps_default_to_next_and_history_keeps_order(store):
    with mlops.start_run() as run:
        for value in (0.9, 0.5, 0.25):
            mlops.log_metric("loss", value)
        mlops.log_metric("loss", 0.1, step=10)
        mlops.log_metrics({"loss": 0.05, "lr": 1e-3})
    got = mlops.get_run(run.run_id)
    history = got.metric_history("loss")
    assert [(m.step, m.value) for m in history] == [
        (0, 0.9), (1, 0.5), (2, 0.25), (10, 0.1), (11, 0.05)]
    assert got.metrics == {"loss": 0.05, "lr": 1e-3}


def test_latest_metric_is_the_highest_step_not_the_last_logged(store):
    with mlops.start_run() as run:
        mlops.log_metric("auc", 0.8, step=5)
        mlops.log_metric("auc", 0.7, step=2)
    assert mlops.get_run(run.run_id).metrics["auc"] == 0.8


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, np.float32(0.25),
                                   np.int64(7), np.array(3.5), 2**70])
def test_metric_values_round_trip_exactly(store, value):
    with mlops.start_run() as run:
        mlops.log_metric("m", value)
    stored = mlops.get_run(run.run_id).metrics["m"]
    expected = float(np.asarray(value).item()) if not isinstance(value, int) else float(value)
    if math.isnan(expected):
        assert math.isnan(stored)
    else:
        assert stored == expected
    frame = mlops.search_runs()
    got = frame.loc[0, "metrics.m"]
    assert (math.isnan(got) and math.isnan(expected)) or got == expected


@pytest.mark.parametrize("bad", ["high", None, True, np.bool_(False), [1.0, 2.0], np.ones(3)])
def test_non_numeric_metric_is_refused_before_anything_is_written(store, bad):
    with mlops.start_run() as run:
        mlops.log_metric("ok", 1.0)
        with pytest.raises(ValidationError, match="Metric 'bad'"):
            mlops.log_metrics({"fine": 2.0, "bad": bad})
    assert mlops.get_run(run.run_id).metrics == {"ok": 1.0}


def test_params_are_write_once(store):
    with mlops.start_run() as run:
        mlops.log_param("lr", 0.1)
        mlops.log_param("lr", 0.1)  # the same value again is fine
        with pytest.raises(ValidationError, match="write-once"):
            mlops.log_param("lr", 0.2)
    assert mlops.get_run(run.run_id).params == {"lr": 0.1}


def test_unserializable_param_is_stored_as_repr_with_a_warning(store):
    class Thing:
        def __repr__(self):
            return "<Thing 42>"

    with mlops.start_run() as run:
        with pytest.warns(UserWarning, match="not JSON-serializable"):
            mlops.log_param("thing", Thing())
        for key, value in (("nan_param", math.nan), ("inf_param", np.float64(math.inf))):
            with pytest.warns(UserWarning, match=f"Param '{key}' .* not a finite number"):
                mlops.log_param(key, value)
    assert mlops.get_run(run.run_id).params == {"thing": "<Thing 42>", "nan_param": "nan",
                                                "inf_param": "inf"}


def test_oversized_param_is_refused_with_the_limit(store):
    with mlops.start_run():
        with pytest.raises(ValidationError, match="limit is 6000"):
            mlops.log_param("blob", "x" * 10_000)


@pytest.mark.parametrize("name", ["", "   ", "a\x00b", "/abs", "a/../b", "x" * 251, "bad\ud800"])
def test_bad_names_are_refused(store, name):
    with pytest.raises(ValidationError):
        mlops.start_run(name)
    with mlops.start_run():
        with pytest.raises(ValidationError):
            mlops.log_metric(name, 1.0)


@pytest.mark.parametrize("name", ["モデル", "😀 run", "שלום", "e\u0301", "<b>x</b>"])
def test_unicode_names_round_trip(store, name):
    with mlops.start_run(name) as run:
        mlops.log_metric(name, 1.0)
        mlops.log_param(name, name)
    got = mlops.get_run(run.run_id)
    assert got.name == name and got.metrics == {name: 1.0} and got.params == {name: name}


def test_exception_ends_run_failed_and_propagates(store):
    with pytest.raises(ZeroDivisionError):
        with mlops.start_run("boom") as run:
            1 / 0
    got = mlops.get_run(run.run_id)
    assert got.status == "FAILED"
    assert got.error_type == "ZeroDivisionError"
    assert "1 / 0" in got.traceback
    assert mlops.active_run() is None


def test_keyboard_interrupt_ends_run_killed(store):
    with pytest.raises(KeyboardInterrupt):
        with mlops.start_run() as run:
            raise KeyboardInterrupt
    assert mlops.get_run(run.run_id).status == "KILLED"


def test_start_and_end_across_calls_and_nesting(store):
    outer = mlops.start_run("outer")
    assert mlops.active_run() is outer
    with pytest.raises(ValidationError, match="still active"):
        mlops.start_run("second")
    with mlops.start_run("child", nested=True) as child:
        assert mlops.active_run() is child
    assert mlops.active_run() is outer
    mlops.end_run()
    assert mlops.active_run() is None
    assert mlops.get_run(child.run_id).tags["parent_run_id"] == outer.run_id
    assert mlops.get_run(outer.run_id).status == "FINISHED"


def test_logging_without_a_run_starts_one(store):
    mlops.log_metric("x", 1.0)
    run = mlops.active_run()
    assert run is not None
    mlops.end_run()
    assert mlops.get_run(run.run_id).metrics == {"x": 1.0}


def test_artifacts_are_content_addressed(store, tmp_path):
    source = tmp_path / "notes.txt"
    source.write_text("hello")
    with mlops.start_run() as first:
        digest = mlops.log_artifact(source)
    with mlops.start_run() as second:
        assert mlops.log_artifact(source, name="copy.txt") == digest
    assert digest == "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    files = [p for p in (store.path / "artifacts").rglob("*") if p.is_file()]
    assert len(files) == 1
    assert store.artifacts.read_verified(digest) == b"hello"
    assert mlops.get_run(first.run_id).artifacts[0].name == "notes.txt"
    assert mlops.get_run(second.run_id).artifacts[0].name == "copy.txt"


def test_changed_artifact_is_refused(store, tmp_path):
    with mlops.start_run():
        digest = mlops.log_bytes(b"payload", "p.bin")
    store.artifacts.path_for(digest).write_bytes(b"tampered")
    with pytest.raises(mlops.IntegrityError, match="changed on disk"):
        store.artifacts.read_verified(digest)


def test_log_figure_stores_png(store):
    from matplotlib.figure import Figure

    figure = Figure()
    figure.add_subplot().plot([1, 2, 3])
    with mlops.start_run() as run:
        digest = mlops.log_figure(figure, "curve")
    (artifact,) = mlops.get_run(run.run_id).artifacts
    assert artifact.name == "curve.png" and artifact.media_type == "image/png"
    assert store.artifacts.read_verified(digest).startswith(b"\x89PNG")


def test_log_dataset_fingerprints_content_not_name(store):
    import pandas as pd

    frame = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    with mlops.start_run() as run:
        first = mlops.log_dataset(frame, "train", role="train")
        same = mlops.log_dataset(frame.copy(), "again")
        changed = frame.copy()
        changed.loc[2, "a"] = 4
        other = mlops.log_dataset(changed, "changed")
        array = mlops.log_dataset(np.arange(6.0).reshape(3, 2), "array")
    assert first == same != other
    inputs = {d.name: d for d in mlops.get_run(run.run_id).inputs}
    assert inputs["train"].columns == ["a", "b"] and inputs["train"].shape == (3, 2)
    assert inputs["train"].role == "train"
    assert inputs["array"].shape == (3, 2) and array != first
    with pytest.raises(ValidationError, match="DataFrame"):
        mlops.log_dataset([1, 2], "list")
