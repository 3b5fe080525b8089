"""``runs`` and ``runs/<id>`` against a real Jupyter server."""

from __future__ import annotations

import json
import math

import pytest

import jupyter_mlops as mlops
from jupyter_mlops.server import queries


def refuse_constant(name: str):
    raise AssertionError(f"The server sent the non-JSON constant {name}")


async def test_runs_newest_first_with_total(api, seeded):
    code, page = await api("runs")
    assert code == 200
    assert page["total"] == 11
    names = [run["name"] for run in page["runs"]]
    assert names[:2] == ["bulk-6", "bulk-5"]
    assert names[-1] == "alpha"
    assert page["metric_keys"][0] == "acc"
    assert page["experiments"] == ["bulk", "exp-a", "exp-b"]
    alpha = page["runs"][-1]
    assert alpha["run_id"] == seeded.runs["alpha"]
    assert alpha["status"] == "FINISHED"
    assert alpha["experiment"] == "exp-a"
    assert alpha["metrics"]["acc"] == pytest.approx(0.9)
    assert alpha["duration_s"] >= 0


async def test_each_row_shows_its_own_main_metrics(api, seeded):
    with mlops.start_run(name="other", experiment="exp-c"):
        mlops.log_metrics({"zeta": 1.0, "eta": 2.0, "theta": 3.0, "iota": 4.0})
    code, page = await api("runs")
    rows = {run["name"]: run for run in page["runs"]}
    # Three at most, in the page's order of keys (most common first, then by name).
    assert list(rows["other"]["metrics"]) == ["eta", "iota", "theta"]
    assert list(rows["alpha"]["metrics"]) == ["acc", "loss", "ratio"]
    assert list(rows["beta"]["metrics"]) == ["acc"]
    assert page["metric_keys"][:2] == ["acc", "eta"]


async def test_runs_paging_covers_every_run_once(api, seeded):
    seen = []
    for offset in range(0, 12, 4):
        code, page = await api("runs", params={"offset": offset, "limit": 4})
        assert code == 200
        assert page["total"] == 11 and page["offset"] == offset and page["limit"] == 4
        seen += [run["run_id"] for run in page["runs"]]
    assert len(seen) == 11
    assert set(seen) == set(seeded.runs.values())
    code, page = await api("runs", params={"offset": 400, "limit": 4})
    assert code == 200 and page["runs"] == [] and page["total"] == 11


@pytest.mark.parametrize(("sort", "order"), [
    ("start_time", "desc"), ("start_time", "asc"), ("name", "asc"), ("duration", "desc"),
    ("status", "asc"), ("experiment", "desc"), ("end_time", "asc"), ("metrics.acc", "desc"),
    ("metrics.acc", "asc"), ("metrics.loss", "desc"),
])
async def test_paging_agrees_with_one_big_page(api, seeded, sort, order):
    # Small pages, read from either end of the index, give the same order as one page.
    code, whole = await api("runs", params={"sort": sort, "order": order, "limit": 500})
    expected = [run["run_id"] for run in whole["runs"]]
    assert len(expected) == 11
    pieces = []
    for offset in range(0, 12, 3):
        code, page = await api("runs", params={"sort": sort, "order": order,
                                               "offset": offset, "limit": 3})
        assert code == 200
        pieces += [run["run_id"] for run in page["runs"]]
    assert pieces == expected


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"experiment": "exp-b"}, {"gamma", "broken"}),
        ({"status": "FAILED"}, {"broken"}),
        ({"status": "failed,killed"}, {"broken"}),
        ({"q": "bulk-3"}, {"bulk-3"}),
        ({"q": "EXP-A"}, {"alpha", "beta"}),  # matches the experiment, any case
        ({"q": "100%"}, set()),  # LIKE wildcards are literal
        ({"filter": "metrics.acc > 0.85"}, {"alpha", "beta"}),
        ({"filter": "params.solver = 'adam'"}, {"alpha"}),
        ({"experiment": "exp-a", "filter": "metrics.acc >= 0.95"}, {"beta"}),
        ({"filter": "metrics.acc > 99999999999999999999999999"}, set()),  # past 64 bits
        ({"filter": "acc > 0.85"}, {"alpha", "beta"}),  # a bare name: the store's metric
        ({"filter": "solver = 'adam'"}, {"alpha"}),  # the store's param
    ],
)
async def test_runs_filters(api, seeded, params, expected):
    code, page = await api("runs", params=params)
    assert code == 200
    assert {run["name"] for run in page["runs"]} == expected
    assert page["total"] == len(expected)


async def test_runs_search_by_run_id_prefix(api, seeded):
    run_id = seeded.runs["gamma"]
    code, page = await api("runs", params={"q": run_id[:10]})
    assert code == 200
    assert [run["run_id"] for run in page["runs"]] == [run_id]


async def test_runs_sorts(api, seeded):
    code, page = await api("runs", params={"sort": "metrics.acc", "order": "desc", "limit": 3})
    assert [run["name"] for run in page["runs"]] == ["beta", "alpha", "gamma"]
    assert page["metric_keys"][0] == "acc"
    code, page = await api("runs", params={"sort": "name", "order": "asc", "limit": 2})
    assert [run["name"] for run in page["runs"]] == ["alpha", "beta"]
    code, page = await api("runs", params={"sort": "start_time", "order": "asc", "limit": 1})
    assert page["runs"][0]["name"] == "alpha"
    # Runs without the metric come last whichever the direction.
    code, page = await api("runs", params={"sort": "metrics.acc", "order": "asc"})
    assert page["runs"][-1]["name"] == "broken"


async def test_nonfinite_metrics_are_null_with_a_marker(api, seeded):
    code, page = await api("runs", params={"q": "alpha"})
    assert code == 200
    code, detail = await api("runs", seeded.runs["alpha"])
    metrics = {m["key"]: m for m in detail["metrics"]}
    assert metrics["loss"]["value"] is None and metrics["loss"]["nonfinite"] == "nan"
    assert metrics["ratio"]["value"] is None and metrics["ratio"]["nonfinite"] == "inf"
    code, page = await api("runs", params={"q": "alpha", "sort": "metrics.loss"})
    row = page["runs"][0]
    assert row["metrics"]["loss"] is None and row["nonfinite"]["loss"] == "nan"


async def test_every_page_is_strict_json(jp_fetch, seeded):
    """No NaN or Infinity token anywhere, in lists or in details, sorted any way."""
    pages = [("runs",), ("runs", seeded.runs["alpha"])]
    for path in pages:
        for sort in ("start_time", "metrics.loss", "metrics.ratio"):
            response = await jp_fetch("jupyter-mlops", "api", *path, params={"sort": sort})
            json.loads(response.body, parse_constant=refuse_constant)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
async def test_a_nonfinite_number_that_slips_through_is_a_500_not_bad_json(api, seeded,
                                                                           monkeypatch, value):
    """The encoder refuses NaN/±inf (allow_nan=False), so a query that forgets to mark one
    fails loudly here instead of sending JSON a browser cannot parse."""
    monkeypatch.setattr(queries, "list_runs", lambda *args, **kwargs: {"runs": [value]})
    code, body = await api("runs")  # api parses with a parse_constant that raises
    assert code == 500
    assert body == {"message": "Unhandled error", "reason": None, "traceback": ""}


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"}, {"limit": "501"}, {"limit": "ten"}, {"offset": "-1"},
        {"offset": "1.5"}, {"status": "DONE"}, {"sort": "secret"}, {"sort": "metrics."},
        {"order": "sideways"}, {"filter": "metrics.acc >"}, {"filter": "nope = 1"},
        {"filter": "metrics.acc > 0.5 or 1=1"},
    ],
)
async def test_runs_bad_parameters_are_400_json(api, seeded, params):
    code, body = await api("runs", params=params)
    assert code == 400
    assert body["error"] == "invalid" and body["message"]


async def test_run_detail(api, seeded):
    code, run = await api("runs", seeded.runs["alpha"])
    assert code == 200
    assert run["name"] == "alpha" and run["experiment"] == "exp-a"
    assert run["params"] == {"lr": 0.1, "layers": [64, 32], "solver": "adam"}
    assert run["tags"] == {"team": "blue"}
    acc = next(m for m in run["metrics"] if m["key"] == "acc")
    assert acc["value"] == pytest.approx(0.9)
    assert acc["steps"] == 4
    assert [p["step"] for p in acc["history"]] == [0, 1, 2, 3]
    assert [p["value"] for p in acc["history"]] == pytest.approx([0.5, 0.7, 0.8, 0.9])
    artifacts = {a["name"]: a for a in run["artifacts"]}
    assert artifacts["plots/curve.png"]["sha256"] == seeded.png_sha256
    assert artifacts["plots/curve.png"]["media_type"] == "image/png"
    assert run["error"] is None and run["status"] == "FINISHED"


async def test_failed_run_has_its_error(api, seeded):
    code, run = await api("runs", seeded.runs["broken"])
    assert code == 200
    assert run["status"] == "FAILED"
    assert run["error_type"] == "ZeroDivisionError"
    assert "division by zero" in run["error"]
    assert "Traceback" in run["traceback"]


async def test_long_history_is_thinned_but_keeps_the_last_step(api, seeded):
    with mlops.start_run(name="long", experiment="long") as run:
        for step in range(2000):
            mlops.log_metric("x", float(step), step=step)
    code, detail = await api("runs", run.run_id)
    assert code == 200
    (metric,) = detail["metrics"]
    assert metric["steps"] == 2000
    assert 100 < len(metric["history"]) <= 500
    assert metric["history"][0]["step"] == 0 and metric["history"][-1]["step"] == 1999


@pytest.mark.parametrize(
    "run_id",
    ["zzz", "0" * 31, "0" * 33, "A" * 32, "..", "%2e%2e", "0" * 32 + "%00"],
)
async def test_malformed_run_ids_are_400(api, seeded, run_id):
    code, body = await api("runs", run_id)
    assert code in (400, 404)
    assert body["message"]


async def test_unknown_run_is_404_json(api, seeded):
    code, body = await api("runs", "f" * 32)
    assert code == 404
    assert body["error"] == "not_found"
    assert "f" * 32 in body["message"]


async def test_children_are_counted_under_their_parent_and_listed_on_request(api, seeded):
    from jupyter_mlops.tracking.children import log_child_run

    with mlops.start_run(name="grid", experiment="search") as parent:
        mlops.log_metric("best_cv_score", 0.9)
        children = [log_child_run(parent.run_id, name=f"grid[{i}]",
                                  metrics={"mean_test_score": i / 10}) for i in range(3)]
    code, page = await api("runs")
    assert code == 200 and page["total"] == 12  # the 11 seeded and the parent
    rows = {run["name"]: run for run in page["runs"]}
    assert rows["grid"]["children"] == 3 and rows["grid"]["parent_run_id"] is None
    assert rows["alpha"]["children"] == 0
    assert not any(name.startswith("grid[") for name in rows)

    code, page = await api("runs", params={"parent": parent.run_id, "sort": "name",
                                           "order": "asc"})
    assert code == 200 and page["total"] == 3
    assert [run["run_id"] for run in page["runs"]] == children
    assert {run["parent_run_id"] for run in page["runs"]} == {parent.run_id}
    assert page["runs"][2]["metrics"] == {"mean_test_score": pytest.approx(0.2)}

    # A search looks at every run, children too.
    code, page = await api("runs", params={"q": "grid["})
    assert page["total"] == 3
    code, page = await api("runs", params={"filter": "metrics.mean_test_score > 0.05"})
    assert {run["name"] for run in page["runs"]} == {"grid[1]", "grid[2]"}
    code, detail = await api("runs", children[0])
    assert detail["parent_run_id"] == parent.run_id

    code, body = await api("runs", params={"parent": "../x"})
    assert code == 400 and "run id" in body["message"]


async def test_each_run_names_its_notebook_and_kernel_start(api, seeded, tmp_path):
    """What lets the list tell runs of two notebooks and two kernels apart: the notebook's
    file name (never the folders of this machine) and when its kernel started."""
    from jupyter_mlops.tracking import storage

    store = seeded.store
    folder = tmp_path / "private-folder"
    for session, notebook in (("a" * 32, "train.ipynb"), ("b" * 32, "eval.ipynb")):
        storage.start_session(store, session, str(folder / notebook), "3.11")
        with mlops.start_run(f"from-{notebook}", "origins", session_id=session):
            pass
    code, page = await api("runs", params={"experiment": "origins"})
    assert code == 200
    started = dict(store.query("SELECT session_id, started FROM sessions"))
    runs = {run["name"]: run for run in page["runs"]}
    assert runs["from-train.ipynb"]["notebook_name"] == "train.ipynb"
    assert runs["from-eval.ipynb"]["notebook_name"] == "eval.ipynb"
    assert runs["from-eval.ipynb"]["session_started"] == started["b" * 32]
    assert str(folder) not in json.dumps(page)
    code, page = await api("runs", params={"experiment": "exp-a"})
    assert {run["notebook_name"] for run in page["runs"]} == {None}  # no kernel made them


async def test_an_input_previews_its_first_rows_as_text(api, seeded):
    import numpy as np
    import pandas as pd

    with mlops.start_run(name="inputs") as run:
        frame_fp = mlops.log_dataset(pd.DataFrame({"a": range(25), "b": ["x"] * 25}), "frame")
        array_fp = mlops.log_dataset(np.arange(6.0).reshape(3, 2), "grid")
        mlops.set_data_policy(keep=False)
        gone_fp = mlops.log_dataset(pd.DataFrame({"c": [1.5]}), "gone")
    mlops.set_data_policy(reset=True)
    code, frame = await api("runs", run.run_id, "data", frame_fp)
    assert code == 200 and frame["kept"] and frame["total_rows"] == 25
    assert frame["columns"] == ["a", "b"] and frame["rows"][:2] == [["0", "x"], ["1", "x"]]
    assert len(frame["rows"]) == queries.data.PREVIEW_ROWS
    code, array = await api("runs", run.run_id, "data", array_fp)
    assert array["rows"] == [["0.0", "1.0"], ["2.0", "3.0"], ["4.0", "5.0"]]
    code, gone = await api("runs", run.run_id, "data", gone_fp)
    assert code == 200 and not gone["kept"] and "Not kept" in gone["note"]
    code, error = await api("runs", run.run_id, "data", "0" * 32)
    assert code == 404 and "no data with fingerprint" in error["message"]
    code, error = await api("runs", run.run_id, "data", "xyz")
    assert code == 400
