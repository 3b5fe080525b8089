"""Dask: drift, data quality, evaluation and batch scoring on a real two-process
LocalCluster give what the single-machine path gives on the same data."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("distributed")


def _cluster(**config):
    """A client of a real two-process LocalCluster on 127.0.0.1, closed with the test."""
    import dask
    from distributed import Client, LocalCluster

    with dask.config.set(config):
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                               host="127.0.0.1", dashboard_address=None, memory_limit="1GiB")
    client = Client(cluster)
    yield client
    client.close()
    cluster.close()


@pytest.fixture(scope="module")
def client():
    yield from _cluster()


def _frames(rows: int = 3000, seed: int = 0):
    rng = np.random.default_rng(seed)
    ref = pd.DataFrame({
        "x": rng.normal(0, 1, rows), "y": rng.exponential(1, rows),
        "k": rng.integers(0, 4, rows), "n": rng.integers(0, 500, rows),
        "c": rng.choice(["a", "b", "c"], rows),
    })
    cur = pd.DataFrame({
        "x": rng.normal(0.4, 1, rows), "y": rng.exponential(1, rows),
        "k": rng.integers(0, 5, rows), "n": rng.integers(0, 500, rows),
        "c": rng.choice(["a", "b", "c", "d"], rows, p=[0.4, 0.3, 0.2, 0.1]),
    })
    ref.loc[::97, "y"] = np.nan
    return ref, cur


def test_import_does_not_load_dask():
    code = "import sys, jupyter_mlops; print(any(m.split('.')[0] in ('dask', 'distributed') " \
           "for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "False"


def test_drift_on_dask_equals_one_machine(store, client):
    import dask.dataframe as dd

    from jupyter_mlops import drift_report
    from jupyter_mlops.tracking.datasets import fingerprint

    ref, cur = _frames()
    local = drift_report(ref, cur)
    ref_d = client.persist(dd.from_pandas(ref, npartitions=3))  # the data on the workers
    cur_d = client.persist(dd.from_pandas(cur, npartitions=4))
    spread = drift_report(ref_d, cur_d, client=client)
    a, b = local.columns.set_index("column"), spread.columns.set_index("column")
    assert list(a.index) == list(b.index)
    assert list(a["test"]) == list(b["test"])
    assert list(a["drifted"]) == list(b["drifted"])
    assert a["drifted"].any() and not a["drifted"].all()
    for col in a.index:
        for stat in ("statistic", "p_value"):
            x, y = a.loc[col, stat], b.loc[col, stat]
            assert (math.isnan(x) and math.isnan(y)) or x == y, (col, stat, x, y)
    # Dask stores text as pyarrow strings: the same rows, a dtype of its own.
    assert spread.reference_fingerprint == fingerprint(ref_d.compute())["fingerprint"]
    assert spread.current_fingerprint == fingerprint(cur_d.compute())["fingerprint"]
    # Every test, not only the defaults: p-value tests on 3,000 rows and the binned ones.
    for tests in ({"x": "ks", "y": "anderson", "n": "psi"},
                  {"x": "cramer_von_mises", "y": "energy", "n": "hellinger"}):
        cols = list(tests)
        one = drift_report(ref[cols], cur[cols], stattest=tests)
        many = drift_report(ref_d[cols], cur_d[cols], stattest=tests, client=client)
        assert one.columns["test"].tolist() == list(tests.values())
        assert one.columns["statistic"].tolist() == many.columns["statistic"].tolist(), tests
        assert one.columns["drifted"].tolist() == many.columns["drifted"].tolist(), tests


def test_score_file_on_dask_writes_the_same_bytes(store, client, tmp_path):
    from sklearn.linear_model import LogisticRegression

    import jupyter_mlops as mlops
    from jupyter_mlops.serving import score_file

    rng = np.random.default_rng(3)
    X = pd.DataFrame({"tenure": rng.integers(0, 60, 6000), "spend": rng.gamma(2.0, 30.0, 6000)})
    y = (X["spend"] > 60).astype(int)
    mlops.register_model(LogisticRegression().fit(X, y), "churn", alias="champion")
    source = tmp_path / "in.csv"
    X.assign(customer_id=np.arange(len(X))).to_csv(source, index=False)
    one = score_file("churn@champion", source, tmp_path / "one.csv", chunk_size=1000,
                     progress=False)
    many = score_file("churn@champion", source, tmp_path / "many.csv", client=client,
                      blocksize=40_000)
    assert many.chunks > 2 and many.rows == one.rows == 6000
    assert (tmp_path / "many.csv").read_bytes() == (tmp_path / "one.csv").read_bytes()
    assert [p.name for p in tmp_path.iterdir() if ".partial" in p.name] == []
    from jupyter_mlops.errors import ValidationError

    with pytest.raises(ValidationError, match="dask.distributed.Client or a scheduler"):
        score_file("churn@champion", source, tmp_path / "x.csv", client=42)
    assert not (tmp_path / "x.csv").exists()


def test_evaluate_on_dask_equals_one_machine(store, client):
    import dask.dataframe as dd
    from sklearn.linear_model import LogisticRegression

    from jupyter_mlops import evaluate

    rng = np.random.default_rng(5)
    X = pd.DataFrame({"a": rng.normal(size=4000), "b": rng.normal(size=4000)})
    y = pd.Series((X["a"] + rng.normal(0, 0.5, 4000) > 0).astype(int), name="y")
    model = LogisticRegression().fit(X, y)
    one = evaluate(model, X, y, importance=False)
    many = evaluate(model, dd.from_pandas(X, npartitions=3), dd.from_pandas(y, npartitions=3),
                    client=client, importance=False)
    assert one.metrics == many.metrics and "roc_auc" in many.metrics
    assert one.dataset_fingerprint == many.dataset_fingerprint


def test_data_quality_on_dask_equals_one_machine(store, client):
    import dask.dataframe as dd

    from jupyter_mlops import data_quality

    ref, cur = _frames(1500)
    cur = pd.concat([cur, cur.iloc[:7]], ignore_index=True).assign(x2=lambda f: f["x"])
    cur.loc[3, "n"] = 900  # outside the reference's range
    ref_d = client.persist(dd.from_pandas(ref, npartitions=2))
    cur_d = client.persist(dd.from_pandas(cur, npartitions=3))
    one = data_quality(cur_d.compute(), reference=ref_d.compute())
    many = data_quality(cur_d, reference=ref_d, client=client)
    pd.testing.assert_frame_equal(one.checks, many.checks)
    exact = one.columns.drop(columns=["mean", "std"])
    pd.testing.assert_frame_equal(exact, many.columns.drop(columns=["mean", "std"]))
    np.testing.assert_allclose(one.columns[["mean", "std"]], many.columns[["mean", "std"]],
                               rtol=1e-12)
    assert set(one.failures["check"]) >= {"duplicated_rows", "out_of_range", "new_categories",
                                           "duplicated_columns"}
    assert one.fingerprints == many.fingerprints


@pytest.fixture
def fragile_client():
    """A cluster of its own, whose workers the test kills: a task is given up after its
    second worker dies (Dask's default waits for the fourth)."""
    yield from _cluster(**{"distributed.scheduler.allowed-failures": 1})


@pytest.mark.parametrize("deaths", [1, 99])
def test_a_worker_killed_mid_score_is_retried_and_the_output_never_half_written(
        store, fragile_client, tmp_path, deaths):
    client = fragile_client
    from dying_model import DiesWhilePredicting
    from sklearn.linear_model import LogisticRegression

    import jupyter_mlops as mlops
    from jupyter_mlops.errors import MLOpsError
    from jupyter_mlops.serving import score_file

    rng = np.random.default_rng(5)
    X = pd.DataFrame({"a": rng.normal(size=4000), "b": rng.normal(size=4000)})
    fitted = LogisticRegression().fit(X, X["a"] > 0)
    (tmp_path / "deaths").mkdir()
    mlops.register_model(DiesWhilePredicting(fitted, str(tmp_path / "deaths"), deaths),
                         "dies", reference=X)
    source = tmp_path / "in.csv"
    X.to_csv(source, index=False)
    output = tmp_path / "out.csv"
    output.write_text("yesterday's scores\n")  # what a failed run must leave as it was
    if deaths == 1:
        done = score_file("dies/1", source, output, client=client, blocksize=20_000)
        assert done.rows == 4000 and done.chunks > 2
        assert len(list((tmp_path / "deaths").iterdir())) == 1  # one worker died, once
        scored = pd.read_csv(output)
        assert scored["prediction"].tolist() == fitted.predict(X).tolist()
    else:
        with pytest.raises(MLOpsError, match="worker") as failed:
            score_file("dies/1", source, output, client=client, blocksize=20_000)
        assert "\n" not in str(failed.value)
        assert output.read_text() == "yesterday's scores\n"
    left = sorted(p.name for p in tmp_path.iterdir() if p.name != ".mlops")
    assert left == ["deaths", "in.csv", "out.csv"]  # no partial file


SWEEP_SETUP = """%load_ext jupyter_mlops
import time
from sklearn.datasets import load_iris
from sklearn.tree import DecisionTreeClassifier
X, y = load_iris(return_X_y=True)
"""

SWEEP = """%%sweep depth=[1, 2, 3, 4] --maximize acc --name dask --client {address}
depth = 1
model = DecisionTreeClassifier(max_depth=depth, random_state=0).fit(X, y)
acc = model.score(X, y)
"""

# Trials 6 to 8 of seed 3 draw an lr far below the first five's: the pruner stops them.
PRUNED = """%%sweep lr=uniform(0, 1) -n 9 --method tpe --seed 3 --maximize score --client {address}
lr = 0.5
for step in range(40):
    score = lr * step
    time.sleep(0.005)
"""


def test_sweep_trials_run_as_dask_tasks(client, tmp_path):
    """``%%sweep --client``: each trial a task in a worker's shell given the notebook's
    state by replay, a child run in the same store; the best trial's model replays. The
    sweep's pruner stops the trials behind the others there too."""
    from support import Kernel, stream_text

    from jupyter_mlops.store import Store
    from jupyter_mlops.tracking.sweepdask import check_workers

    kernel = Kernel(tmp_path / ".mlops", tmp_path)
    try:
        assert kernel.execute(SWEEP_SETUP, cell_id="setup-cell")[0]["status"] == "ok"
        assert kernel.execute("unused = 3")[0]["status"] == "ok"
        address = client.scheduler.address
        reply, _ = kernel.execute(SWEEP.format(address=address), cell_id="sweep-cell",
                                  timeout=120)
        assert reply["status"] == "ok", reply
        shown = stream_text(kernel.execute(
            "r = _; v = r.register('iris-dask'); import jupyter_mlops as mlops\n"
            "s = str(mlops.replay('iris-dask'))\n"
            "print(r.run_id, r.status, r.best_params['depth'], 'max_depth=depth' in s and "
            "'depth = 4' in s and 'load_iris(' in s and 'unused' not in s)")[1])
        reply, _ = kernel.execute(PRUNED.format(address=address), timeout=120)
        assert reply["status"] == "ok", reply
        pruned = stream_text(kernel.execute(
            "print(' '.join(t.run_id for t in _.trials if t.status == 'PRUNED'))")[1]).split()
    finally:
        kernel.shutdown()
    parent, status, depth, replayed = shown.split()
    assert (status, depth, replayed) == ("FINISHED", "4", "True")
    store = Store(tmp_path / ".mlops", read_only=True)
    try:
        runs = store.query(
            "SELECT r.run_id, r.status, r.session_id, r.cell_id, p.value, m.value FROM runs r "
            "JOIN params p ON p.run_id = r.run_id AND p.key = 'depth' JOIN metrics m ON "
            "m.run_id = r.run_id AND m.key = 'acc' WHERE r.parent_run_id = ?", (parent,))
        main = store.query("SELECT session_id FROM runs WHERE run_id = ?", (parent,))[0][0]
        worker_cells = [s for (s,) in store.query(
            "SELECT source FROM cells WHERE session_id = ?", (runs[0][2],))]
        assert sorted(r[4] for r in runs) == ["1", "2", "3", "4"]
        assert {r[1] for r in runs} == {"FINISHED"} and {r[3] for r in runs} == {"sweep-cell"}
        assert all(0 < r[5] <= 1 for r in runs) and max(runs, key=lambda r: r[5])[4] == "4"
        # The workers' own sessions, given the cells the trial needs and not the others.
        assert main not in {r[2] for r in runs} and 1 <= len({r[2] for r in runs}) <= 2
        assert any("load_iris(return_X_y=True)" in s for s in worker_cells)
        assert not any("unused" in s for s in worker_cells)
        # Pruned on the workers: runs KILLED, tagged with the step, as in the kernel.
        assert pruned
        tagged = store.query("SELECT r.status, t.value FROM runs r JOIN tags t ON t.run_id = "
                             "r.run_id AND t.key = 'sweep.pruned' WHERE r.run_id IN (%s)"
                             % ",".join("?" * len(pruned)), pruned)
        assert len(tagged) == len(pruned) and all(
            s == "KILLED" and v.isdigit() for s, v in tagged)
        # Workers that cannot open the store are refused before any trial, in one line.
        (tmp_path / ".mlops").rename(tmp_path / "moved")
        with pytest.raises(Exception, match="Dask workers cannot open the store"):
            check_workers(client, store)
    finally:
        store.close()
