import json
import math
import sqlite3
from contextlib import closing

import pytest

import jupyter_mlops as mlops
from jupyter_mlops import ValidationError
from jupyter_mlops.tracking import storage


@pytest.fixture
def runs(store):
    made = {}
    for i, (solver, acc) in enumerate([("lbfgs", 0.9), ("saga", 0.95), ("lbfgs", 0.7)]):
        with mlops.start_run(f"run-{i}", experiment="exp-a" if i < 2 else "exp-b",
                             tags={"owner": "ann" if i else "bob"}) as run:
            mlops.log_params({"C": [0.1, 1.0, 10.0][i], "solver": solver, "seed": i})
            mlops.log_metrics({"acc": acc, "loss": 1 - acc})
        made[i] = run.run_id
    with mlops.start_run("nan-run", experiment="exp-b") as run:
        mlops.log_metric("acc", math.nan)
    made["nan"] = run.run_id
    return made


def test_columns_follow_mlflow_naming(runs):
    frame = mlops.search_runs()
    assert list(frame.columns[:10]) == ["run_id", "experiment", "name", "status", "start_time",
                                        "end_time", "duration_s", "session_id", "cell_id",
                                        "execution_count"]
    assert {"params.C", "params.solver", "metrics.acc", "tags.owner"} <= set(frame.columns)
    assert len(frame) == 4
    assert list(frame["name"]) == ["nan-run", "run-2", "run-1", "run-0"]  # newest first
    assert frame["params.seed"].tolist()[1:] == [2, 1, 0]


@pytest.mark.parametrize("filter_text, expected", [
    ("metrics.acc > 0.8", {0, 1}),
    ("metrics.acc >= 0.9 and params.solver = 'lbfgs'", {0}),
    ("params.C = '0.1'", {0}),
    ("params.C < 5", {0, 1}),
    ("params.solver != 'lbfgs'", {1}),
    ("tags.owner = 'ann'", {1, 2}),
    ("status = 'FINISHED' and experiment = 'exp-b'", {2, "nan"}),
    ("name LIKE 'run-%'", {0, 1, 2}),
    ("name ILIKE 'RUN-1'", {1}),
    ("params.solver IN ('saga', 'none')", {1}),
    ("metrics.loss IS NULL", {"nan"}),
    ("tags.owner IS NOT NULL and metrics.acc < 0.8", {2}),
    ("attributes.run_name = \"run-0\"", {0}),
    ("metrics.acc < 99999999999999999999999999", {0, 1, 2}),  # beyond 64-bit integers
    ("params.seed > -99999999999999999999999999", {0, 1, 2}),
    ("params.seed = 9007199254740993", set()),  # exact, not rounded to 2**53
    ("acc > 0.8", {0, 1}),  # a bare name: the metric of that name
    ("solver = 'saga' and acc > 0.5", {1}),  # ... or the param
])
def test_filters(runs, filter_text, expected):
    frame = mlops.search_runs(filter=filter_text)
    assert set(frame["run_id"]) == {runs[k] for k in expected}


def test_experiment_order_and_limit(runs):
    frame = mlops.search_runs("exp-a", order_by=["metrics.acc DESC"])
    assert list(frame["run_id"]) == [runs[1], runs[0]]
    frame = mlops.search_runs(order_by="metrics.acc", max_results=2)
    assert list(frame["run_id"]) == [runs[2], runs[0]]
    frame = mlops.search_runs(["exp-a", "exp-b"], order_by=["params.C DESC"])
    assert list(frame["run_id"])[:3] == [runs[2], runs[1], runs[0]]


def test_nan_metric_comes_back_as_nan(runs):
    frame = mlops.search_runs(filter="name = 'nan-run'")
    assert math.isnan(frame.loc[0, "metrics.acc"])


@pytest.mark.parametrize("bad", ["metrics.acc >", "bogus > 1", "metrics.acc ~ 1",
                                 "metrics.acc > 1 or metrics.acc < 0", "'unterminated"])
def test_bad_filters_say_how_to_write_them(runs, bad):
    with pytest.raises(ValidationError):
        mlops.search_runs(filter=bad)


def test_empty_store_gives_empty_frame(store):
    frame = mlops.search_runs()
    assert frame.empty and "run_id" in frame.columns


def test_finished_and_running_runs_read_the_same(store):
    values = {"params": {"C": 0.1, "flag": True, "layers": [64, 32], "name": 'a"b\\',
                         "big": 2**40, "none": None},
              "metrics": {"acc": 0.1 + 0.2, "nan": math.nan, "inf": math.inf,
                          "ninf": -math.inf, "tiny": 5e-324}}
    for name in ("finished", "running"):
        mlops.start_run(name, tags={"t": "<x>"})
        mlops.log_params(values["params"])
        mlops.log_metrics(values["metrics"])
        if name == "finished":
            mlops.end_run()
    finished, running = (mlops.search_runs(filter=f"name = '{n}'").iloc[0]
                         for n in ("finished", "running"))
    assert store.query("SELECT count(*) FROM runs WHERE summary IS NOT NULL")[0][0] == 1
    for column in [c for c in finished.index if c.startswith(("params.", "metrics.", "tags."))]:
        a, b = finished[column], running[column]
        assert (a == b and type(a) is type(b)) or (a != a and b != b), column
    assert finished["params.layers"] == [64, 32] and finished["params.flag"] is True
    assert finished["metrics.acc"] == 0.1 + 0.2 and finished["metrics.ninf"] == -math.inf
    mlops.end_run()


def test_a_write_after_the_end_clears_the_summary(store):
    with mlops.start_run("r") as run:
        mlops.log_metric("m", 1.0)
    storage.set_tags(store, run.run_id, {"late": "yes"})
    assert store.query("SELECT summary FROM runs")[0][0] is None
    assert mlops.search_runs().loc[0, "tags.late"] == "yes"


# A summary as runs.summary held it before the one JSON codec: params spliced in as stored,
# NaN and infinities null in "m" and named in "x".
OLD_SUMMARY = ('{"p":{"C":0.1,"spec":{"$float": "nan"},"layers":[64, 32]},'
               '"m":{"acc":0.5,"loss":null,"gain":null,"up":null},'
               '"x":{"loss":"nan","gain":"-inf","up":"inf"},"t":{"team":"blue"}}')


def test_a_summary_written_before_the_codec_still_reads(store):
    with mlops.start_run("old") as run:
        pass
    with closing(sqlite3.connect(store.path / "mlops.db")) as raw, raw:
        raw.execute("UPDATE runs SET summary = ? WHERE run_id = ?", (OLD_SUMMARY, run.run_id))
    row = mlops.search_runs().iloc[0]
    assert row["params.C"] == 0.1 and row["params.layers"] == [64, 32]
    assert row["params.spec"] == {"$float": "nan"}  # a param of the user's, not a tag
    assert row["metrics.acc"] == 0.5 and math.isnan(row["metrics.loss"])
    assert row["metrics.gain"] == -math.inf and row["metrics.up"] == math.inf
    assert row["tags.team"] == "blue"


def test_a_summary_is_strict_json_in_the_codec(store):
    with mlops.start_run("new") as run:
        mlops.log_params({"spec": {"$float": "nan"}, "when": "2024"})
        mlops.log_metrics({"loss": math.nan, "gain": -math.inf})
    (text,) = store.query("SELECT summary FROM runs WHERE run_id = ?", (run.run_id,))[0]
    parsed = json.loads(text, parse_constant=lambda name: pytest.fail(f"bare {name}"))
    assert parsed["m"] == {"loss": {"$float": "nan"}, "gain": {"$float": "-inf"}}
    row = mlops.search_runs().iloc[0]
    assert row["params.spec"] == {"$float": "nan"} and row["params.when"] == "2024"
    assert math.isnan(row["metrics.loss"]) and row["metrics.gain"] == -math.inf


def test_a_bare_name_the_store_lacks_says_how_to_write_it(runs):
    with pytest.raises(ValidationError, match=r"no metric or param has that name\. Write "
                                              r"metrics\.accuracy, params\.accuracy"):
        mlops.search_runs(filter="accuracy > 0.95")
    with mlops.start_run("both") as run:
        mlops.log_param("acc", 1)
    with pytest.raises(ValidationError, match="'acc' is both a metric and a param; write "
                                              "metrics.acc or params.acc"):
        mlops.search_runs(filter="acc > 0.5")
    assert mlops.search_runs(order_by=["loss DESC"]).name.tolist()[:3] == [
        "run-2", "run-0", "run-1"]
    assert run.run_id


def test_magic_filter_takes_a_metric_name(shell):
    from support import run_cell

    run_cell(shell, "%%track -n good -q\naccuracy = 0.97")
    run_cell(shell, "%%track -n poor -q\naccuracy = 0.90")
    listing = shell.run_line_magic("mlops", 'runs -f "accuracy > 0.95"')
    assert list(listing["name"]) == ["good"]


def test_without_a_store_a_bare_name_is_explained():
    from jupyter_mlops.tracking.search import filter_sql

    with pytest.raises(ValidationError, match=r"^Unknown column 'accuracy' in the filter\. "
                                              r"Write metrics\.accuracy, params\.accuracy"):
        filter_sql("accuracy > 0.95")
