"""Serving close to the limit: the array fast path answers and refuses exactly as the general
path does; a pool of worker processes logs every request exactly once.

Every client loop here is bounded in count and in time.
"""

import dataclasses
import http.client
import json
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import GradientBoostingClassifier, RandomForestRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import jupyter_mlops as mlops
from jupyter_mlops.errors import BadRequest
from jupyter_mlops.serving import fastpath
from jupyter_mlops.serving.deployment import Deployment, load_served
from jupyter_mlops.serving.workers import WorkerPool

pytestmark = pytest.mark.timeout(180)
COLUMNS = ["a", "b", "c"]


def frame(dtype, n=200, seed=0):
    rng = np.random.default_rng(seed)
    values = rng.normal(0, 3, size=(n, len(COLUMNS)))
    if np.dtype(dtype).kind in "iu":
        values = np.round(np.abs(values) * 10)
    return pd.DataFrame(values.astype(dtype), columns=COLUMNS)


# name, estimator, dtype of the columns, classifier?
MODELS = [
    ("logistic", lambda: LogisticRegression(max_iter=500), "float64", True),
    ("boosted32", lambda: GradientBoostingClassifier(n_estimators=10, random_state=0),
     "float32", True),
    ("ridge", lambda: Ridge(alpha=0.5), "float64", False),
    ("ridge_int", lambda: Ridge(alpha=0.5), "int64", False),
    ("forest_int32", lambda: RandomForestRegressor(n_estimators=5, random_state=0), "int32",
     False),
    ("scaled", lambda: make_pipeline(StandardScaler(), LogisticRegression()), "float64", True),
]


@pytest.fixture
def silenced(monkeypatch):
    """As in a serving process: scikit-learn's feature-name warning off (for this test)."""
    import warnings

    monkeypatch.setattr(fastpath, "_silenced", False)
    with warnings.catch_warnings():
        fastpath.silence_feature_name_warning()
        yield


@pytest.fixture
def deployments(store, silenced):
    """Per model: a deployment with the fast path and the same one without it."""
    out = {}
    for name, make, dtype, classifier in MODELS:
        X = frame(dtype)
        y = (X["a"] + X["b"] > X["c"]).astype(int) if classifier else X["a"] * 2.5 - X["c"]
        mlops.register_model(make().fit(X, y), name, alias="champion", reference=X)
        served = load_served(f"{name}@champion", store)
        assert served.fast is not None, name
        out[name] = (Deployment(served), Deployment(dataclasses.replace(served, fast=None)),
                     served)
    return out


def payloads(rows):
    """The same rows in each JSON scoring format (values as plain JSON numbers)."""
    split = {"columns": COLUMNS, "data": rows}
    records = [dict(zip(COLUMNS, row)) for row in rows]
    return [{"dataframe_split": split}, {"dataframe_records": records},
            {"dataframe_records": [dict(reversed(list(r.items()))) for r in records]},
            {"instances": rows}, {"inputs": rows}]


def score(deployment, payload):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    try:
        return deployment.score(body, "application/json", "req-1").body
    except BadRequest as exc:
        return f"{type(exc).__name__} {exc.status}: {exc}"


def test_fast_path_answers_exactly_as_the_general_path(deployments):
    for name, (fast, slow, served) in deployments.items():
        dtype = served.fast.dtype
        for n in (1, 7, 300):
            rows = frame(dtype, n=n, seed=n).to_numpy().tolist()
            for payload in payloads(rows):
                body = json.dumps(payload).encode()
                assert served.fast.rows(payload, body) is not None, (name, list(payload))
                assert score(fast, payload) == score(slow, payload), (name, n, list(payload))
        # Integers sent to a float model, and Python floats that float32 rounds.
        if dtype.kind == "f":
            for payload in payloads([[1, 2, 3], [0.1, 1e-7, 123456.789]]):
                assert score(fast, payload) == score(slow, payload), name


BAD = [
    {"dataframe_split": {"columns": ["a", "b", "c"], "data": [[1.0, True, 2.0]]}},
    {"dataframe_split": {"columns": ["a", "b", "c"], "data": [[1.0, None, 2.0]]}},
    {"dataframe_split": {"columns": ["a", "b", "c"], "data": [[1.0, "2.5", 2.0]]}},
    {"dataframe_split": {"columns": ["a", "b", "x"], "data": [[1.0, 2.0, 2.0]]}},
    {"dataframe_split": {"columns": ["a", "b"], "data": [[1.0, 2.0]]}},
    {"dataframe_split": {"columns": ["a", "b", "c"], "data": [[1.0, 2.0]]}},
    {"dataframe_split": {"columns": ["a", "b", "c"], "data": []}},
    {"dataframe_records": [{"a": 1.0, "b": 2.0, "c": 3.0}, {"a": 1.0, "b": 2.0}]},
    {"dataframe_records": [{"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0}]},
    {"instances": [[1.0, 2.0, 3.0], [1.0, 2.0]]},
    {"instances": [[1.0, 2.0, 3.0, 4.0]]},
    {"instances": [[[1.0], [2.0], [3.0]]]},
    {"instances": [1.0, 2.0, 3.0]},
    {"instances": []},
    {"inputs": {"a": [1.0], "b": [2.0], "c": [3.0]}},  # columnar: the general way answers
    {"instances": [[1.5, 2.0, 3.0]]},
    {"instances": [[2 ** 40, 2.0, 3.0]]},
    {"instances": [[2 ** 70, 2.0, 3.0]]},
    {"instances": [[1e39, 2.0, 3.0]]},
    {"instances": [[1.0, 2.0, 3.0]], "params": {"x": 1}},
    {"dataframe_split": [[1.0, 2.0, 3.0]]},
    [[1.0, 2.0, 3.0]],
    b'{"instances": [[1e400, 2.0, 3.0]]}',
    b'{"instances": [[NaN, 2.0, 3.0]]}',
    b'{"instances": [[1.0, 2.0, 3.0]',
    b"",
]


def test_bad_payloads_get_the_same_refusal(deployments):
    refused = 0
    for name, (fast, slow, _) in deployments.items():
        for payload in BAD:
            answer = score(fast, payload)
            assert answer == score(slow, payload), (name, payload)
            refused += answer.startswith(("BadRequest", "ModelFailed"))
    assert refused > len(BAD) * len(MODELS) // 2  # most of them are refusals, clearly worded


def test_fast_path_only_where_the_signature_allows(store, silenced):
    X = frame("float64").assign(city=["Oslo", "Lyon"] * 100)
    from sklearn.compose import make_column_transformer
    from sklearn.preprocessing import OneHotEncoder

    encode = make_column_transformer((OneHotEncoder(), ["city"]), remainder="passthrough")
    model = make_pipeline(encode, LogisticRegression()).fit(X, X["a"] > 0)
    mlops.register_model(model, "mixed", reference=X)
    assert load_served("mixed/1", store).fast is None  # text column: DataFrame needed
    # Selected by name: an array has no names, the probe sees it fail.
    by_name = make_column_transformer((StandardScaler(), ["c", "a"]))
    model = make_pipeline(by_name, Ridge()).fit(X[COLUMNS], X["b"])
    mlops.register_model(model, "by_name", reference=X[COLUMNS])
    assert load_served("by_name/1", store).fast is None


# -- a pool of worker processes -----------------------------------------------------------

def post(port, body, request_id):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        conn.request("POST", "/invocations", body=body,
                     headers={"Content-Type": "application/json", "X-Request-Id": request_id})
        response = conn.getresponse()
        response.read()
        conn.request("GET", "/health")
        health = json.loads(conn.getresponse().read())
        return response.status, health["worker"]["pid"]
    finally:
        conn.close()


def traffic(port, prefix, clients=4, each=25):
    """``clients`` threads, each ``each`` requests on new connections (so both workers get
    some); returns the request ids answered and the worker pids seen."""
    body = json.dumps({"dataframe_split": {"columns": COLUMNS,
                                           "data": [[0.5, -1.0, 2.0]]}}).encode()
    sent, pids, failures = [], set(), []
    lock = threading.Lock()

    def run(k):
        for i in range(each):
            request_id = f"{prefix}-{k}-{i}"
            status, pid = post(port, body, request_id)
            with lock:
                (sent if status == 200 else failures).append(request_id)
                pids.add(pid)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures
    return sent, pids


def test_two_workers_log_every_request_exactly_once(store):
    X = frame("float64")
    mlops.register_model(LogisticRegression().fit(X, X["a"] > 0), "pooled", alias="champion",
                         reference=X)
    pool = WorkerPool("pooled@champion", workers=2, port=0, watch_interval=None,
                      store=store).start()
    try:
        first, pids = traffic(pool.port, "first")
        assert pids == set(pool.pids) and len(pids) == 2  # both workers answered
        # A worker killed outright: the pool starts another, which stores what the dead
        # one had journaled and not yet stored, once.
        victim = pool.pids[0]
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while victim in pool.pids or len(pool.pids) < 2:
            assert time.monotonic() < deadline
            pool.check()
            time.sleep(0.05)
        second, _ = traffic(pool.port, "second", clients=2, each=10)
    finally:
        pool.stop()
    sent = first + second
    rows = store.query("SELECT request_id, count(*) FROM predictions GROUP BY request_id")
    counts = dict(rows)
    assert sorted(counts) == sorted(sent)
    assert set(counts.values()) == {1}
    assert not list((Path(store.path) / "journal").glob("*.journal"))


def test_a_pool_refuses_bad_settings_in_one_line(store):
    from jupyter_mlops.errors import NotFoundError, ValidationError

    with pytest.raises(ValidationError, match="number of processes from 1 to 64"):
        WorkerPool("pooled@champion", workers=0)
    with pytest.raises(NotFoundError):  # before any port is bound or process started
        WorkerPool("absent@champion", workers=2, port=0, store=store).start()
