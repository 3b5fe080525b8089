"""Child runs: the parent_run_id column, log_child_run, and migration 12's backfill."""

import math
import sqlite3

import pandas as pd
import pytest

import jupyter_mlops as mlops
from jupyter_mlops.store import SCHEMA_VERSION, Store
from jupyter_mlops.store import schema as schema_module
from jupyter_mlops.tracking.children import ChildArtifact, log_child_run


def test_a_child_is_written_whole_and_ended_under_its_parent(store):
    with mlops.start_run("search", experiment="iris") as parent:
        child = log_child_run(parent.run_id, name="C=0.1", params={"C": 0.1, "solver": "lbfgs"},
                              metrics={"mean_test_score": 0.93, "curve": [0.5, 0.25, math.nan]},
                              tags={"candidate": 3}, start_time=1000.0, end_time=1002.5)
    run = mlops.get_run(child)
    assert (run.name, run.status, run.experiment) == ("C=0.1", "FINISHED", "iris")
    assert run.parent_run_id == parent.run_id
    assert run.tags == {"candidate": "3", "parent_run_id": parent.run_id}
    assert run.params == {"C": 0.1, "solver": "lbfgs"}
    assert run.metrics["mean_test_score"] == 0.93
    history = run.metric_history("curve")
    assert [m.step for m in history] == [0, 1, 2] and math.isnan(history[2].value)
    assert (run.start_time, run.end_time) == (1000.0, 1002.5)
    assert mlops.get_run(parent.run_id).parent_run_id is None


def test_search_runs_has_the_parent_column_and_filters_on_it(store):
    with mlops.start_run("parent") as parent:
        children = {log_child_run(parent.run_id, params={"i": i}) for i in range(3)}
    with mlops.start_run("other"):
        pass
    frame = mlops.search_runs()
    assert "parent_run_id" in frame.columns
    by_id = dict(zip(frame["run_id"], frame["parent_run_id"]))
    assert {by_id[c] for c in children} == {parent.run_id}
    assert pd.isna(by_id[parent.run_id])
    found = mlops.search_runs(filter=f"parent_run_id = '{parent.run_id}'")
    assert set(found["run_id"]) == children
    top = mlops.search_runs(filter="parent_run_id IS NULL")
    assert set(top["name"]) == {"parent", "other"}


def test_a_nested_run_fills_the_column(store):
    with mlops.start_run("outer") as outer:
        with mlops.start_run("inner", nested=True) as inner:
            pass
    run = mlops.get_run(inner.run_id)
    assert run.parent_run_id == outer.run_id and run.tags["parent_run_id"] == outer.run_id


def test_a_bad_value_refuses_the_child_before_anything_is_written(store):
    with mlops.start_run("parent") as parent:
        before = store.query("SELECT count(*) FROM runs")[0][0]
        with pytest.raises(mlops.ValidationError, match="real number"):
            log_child_run(parent.run_id, params={"C": 1}, metrics={"acc": "high"})
        with pytest.raises(mlops.ValidationError):
            log_child_run(parent.run_id, status="RUNNING")
        with pytest.raises(mlops.NotFoundError):
            log_child_run("f" * 32, params={"C": 1})
        assert store.query("SELECT count(*) FROM runs")[0][0] == before
        assert store.query("SELECT count(*) FROM params")[0][0] == 0


def test_a_child_links_artifacts_and_data(store):
    digest, size = store.artifacts.put_bytes(b"model bytes")
    with mlops.start_run("parent") as parent:
        import numpy as np

        from jupyter_mlops.tracking.datasets import fingerprint

        child = log_child_run(
            parent.run_id, artifacts=[ChildArtifact("model/m.bin", "model", digest, size)],
            datasets=[("X", "train", fingerprint(np.arange(6).reshape(3, 2)))])
    run = mlops.get_run(child)
    assert [(a.name, a.sha256) for a in run.artifacts] == [("model/m.bin", digest)]
    assert [(d.name, d.role, d.shape) for d in run.inputs] == [("X", "train", (3, 2))]


def test_children_inside_a_batch_share_its_one_transaction(store):
    with mlops.start_run("parent") as parent:
        statements: list[str] = []
        store.connection().set_trace_callback(statements.append)
        try:
            with store.batch():
                for i in range(5):
                    log_child_run(parent.run_id, params={"i": i}, metrics={"m": i})
        finally:
            store.connection().set_trace_callback(None)
    assert [s for s in statements if s.startswith("BEGIN")] == ["BEGIN IMMEDIATE"]
    assert len(mlops.search_runs(filter=f"parent_run_id = '{parent.run_id}'")) == 5


def _store_at(version, folder, monkeypatch):
    with monkeypatch.context() as patch:
        patch.setattr("jupyter_mlops.store.sqlite.MIGRATIONS",
                      schema_module.MIGRATIONS[:version])
        old = Store(folder)
        assert old.schema_version == version
        old.close()


def test_migration_12_backfills_the_column_from_the_tag(tmp_path, monkeypatch):
    folder = tmp_path / "store"
    _store_at(11, folder, monkeypatch)
    conn = sqlite3.connect(folder / "mlops.db", isolation_level=None)
    conn.execute("INSERT INTO experiments (experiment_id, name, created) VALUES (1, 'e', 0)")
    for run_id in ("a" * 32, "b" * 32, "c" * 32, "d" * 32):
        conn.execute("INSERT INTO runs (run_id, experiment_id, status, start_time, heartbeat) "
                     "VALUES (?, 1, 'FINISHED', 0, 0)", (run_id,))
    conn.executemany("INSERT INTO tags (run_id, key, value) VALUES (?, 'parent_run_id', ?)",
                     [("b" * 32, "a" * 32),        # a real parent
                      ("c" * 32, "f" * 32),        # names no stored run: stays a tag only
                      ("d" * 32, "d" * 32)])       # names itself
    conn.close()
    store = Store(folder)
    assert store.schema_version == SCHEMA_VERSION >= 12
    assert dict(store.query("SELECT run_id, parent_run_id FROM runs")) == {
        "a" * 32: None, "b" * 32: "a" * 32, "c" * 32: None, "d" * 32: None}
    assert store.query("SELECT count(*) FROM tags")[0][0] == 3  # the tags stay
    plan = " ".join(r[-1] for r in store.query(
        "EXPLAIN QUERY PLAN SELECT run_id FROM runs WHERE parent_run_id = ?", ("a" * 32,)))
    assert "runs_parent" in plan
    assert store.query("PRAGMA foreign_key_check") == []
    store.close()


@pytest.fixture
def search_like(store):
    """A parent with seven children that vary ``depth`` (the fourth is the best), and
    another run at top level."""
    with mlops.start_run("other") as other:
        mlops.log_params({"lr": 0.1})
    with mlops.start_run("search") as parent:
        mlops.log_metric("best_cv_score", 0.9)
        children = [log_child_run(parent.run_id, name=f"c{i}", params={"depth": i, "fixed": 1},
                                  metrics={"mean_test_score": i / 10},
                                  tags={"best": "true"} if i == 3 else {})
                    for i in range(7)]
    return other.run_id, parent.run_id, children


def test_mlops_runs_lists_children_under_their_parent(shell, search_like):
    from support import assert_inert, parse

    from jupyter_mlops.dashboards.runs import CHILDREN_SHOWN

    other, parent, children = search_like
    listing = shell.run_line_magic("mlops", "runs")
    assert len(listing) == 9 and "parent_run_id" in listing.columns  # the frame: every run
    markup = listing._repr_html_()
    assert_inert(markup, "c3")
    html = parse(markup)
    rows = [t for t in html.tags if t[0] == "tr"][1:]  # after the header
    texts = "".join(html.text)
    assert texts.index("search") < texts.index("↳ c3") < texts.index("↳ c0") < texts.index(
        "… 2 more") < texts.index("other")
    assert [attrs.get("class") for _, attrs in rows] == [
        None, *["child"] * (CHILDREN_SHOWN + 1), None]
    assert f"parent_run_id = '{parent}'" in texts and "↳ c6" not in texts
    header = [t for t in html.text if t.startswith("params.")]
    assert header == ["params.depth", "params.lr"]  # varied by the children; a top-level one
    assert "children" in html.text


def test_compare_one_parent_compares_it_with_its_children(shell, search_like, monkeypatch):
    from jupyter_mlops.tracking import compare as compare_module

    other, parent, children = search_like
    comparison = shell.run_line_magic("mlops", f"compare {parent[:8]}")
    assert [r.run_id for r in comparison.runs] == [parent, children[3], *children[:3],
                                                    *children[4:]]
    assert comparison.params.loc["depth"].tolist()[1:3] == [3, 0]
    monkeypatch.setattr(compare_module, "MAX_CHILDREN", 2)
    both = shell.run_line_magic("mlops", f"compare {other[:8]} {parent[:8]} --children")
    assert [r.name for r in both.runs] == ["other", "search", "c3", "c0"]
    assert both.omitted == 5 and "5 more child runs not compared" in both._repr_html_()
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match="one run that has child runs"):
        shell.run_line_magic("mlops", f"compare {other[:8]}")
