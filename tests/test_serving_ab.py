"""Champion and challenger: traffic split, shadow scoring, both logged, compared with ab."""

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import jupyter_mlops as mlops
from jupyter_mlops.cli import main
from jupyter_mlops.serving import compare_versions, log_labels, serve
from test_serving import Client

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def two_versions(store):
    rng = np.random.default_rng(7)
    X = pd.DataFrame(rng.normal(size=(600, 3)), columns=["x1", "x2", "x3"])
    y = (X["x1"] + 0.3 * X["x2"] > 0).astype(int)
    good = LogisticRegression().fit(X, y)
    weak = LogisticRegression().fit(X[["x1", "x2", "x3"]] * [0.0, 1.0, 1.0], y)
    mlops.register_model(weak, "churn", alias="champion", reference=X)
    mlops.register_model(good, "churn", alias="challenger", reference=X)
    return X, y, weak, good


def test_split_routes_a_share_to_the_challenger_and_logs_both(two_versions):
    X, y, weak, good = two_versions
    with serve("churn@champion", challenger="churn@challenger", split=0.3, port=0,
               watch_interval=None) as running:
        client = Client(running.url)
        answered = []
        for i in range(120):
            rows = X.iloc[[i]]
            status, headers, body = client.post({"dataframe_records":
                                                 rows.to_dict(orient="records")})
            assert status == 200
            version = headers["X-Model-Version"]
            model = weak if version == "churn/1" else good
            assert body["predictions"] == model.predict(rows).tolist()
            answered.append(version)
        status, _, metadata = client.get("/metadata")
        assert metadata["routing"] == {"mode": "split", "split": 0.3}
        assert metadata["challenger"]["version"] == 2
        running.flush()
    share = answered.count("churn/2") / len(answered)
    assert 0.1 < share < 0.5  # 0.3 expected; the bounds hold with overwhelming probability
    roles = dict(mlops.get_store().query(
        "SELECT role, count(*) FROM predictions WHERE answered = 1 GROUP BY role"))
    assert roles == {"champion": answered.count("churn/1"),
                     "challenger": answered.count("churn/2")}


def test_shadow_scores_both_and_answers_with_the_champion(two_versions, capsys):
    X, y, weak, good = two_versions
    rows = X.iloc[:200]
    with serve("churn@champion", challenger="churn@challenger", shadow=True, port=0,
               watch_interval=None) as running:
        client = Client(running.url)
        request_ids = []
        for start in range(0, 200, 20):
            chunk = rows.iloc[start:start + 20]
            status, headers, body = client.post({"dataframe_split":
                                                 chunk.to_dict(orient="split")})
            assert status == 200 and headers["X-Model-Version"] == "churn/1"
            assert body["predictions"] == weak.predict(chunk).tolist()
            request_ids.append(headers["X-Request-Id"])
        running.flush()
        store = mlops.get_store()
        assert store.query("SELECT role, answered, count(*) FROM predictions GROUP BY role "
                           "ORDER BY role") == [("champion", 1, 10), ("shadow", 0, 10)]

        before = compare_versions("churn@champion", "churn@challenger")
        expected_agreement = float(np.mean(weak.predict(rows) == good.predict(rows)))
        assert before.n_rows == 200 and before.n_scored_by_both == 200
        assert before.agreement == pytest.approx(expected_agreement)
        assert before.metrics == {} and "no labels yet" in repr(before)

        # Labels arrive later, per request, over HTTP and from Python.
        for number, request_id in enumerate(request_ids):
            labels = y.iloc[number * 20:(number + 1) * 20].tolist()
            if number % 2:
                status, _, body = client.post({"request_id": request_id, "labels": labels},
                                              path="/labels", headers=running.headers)
                assert status == 200 and body["labelled_rows"] == 20
            else:
                assert log_labels(request_id, labels) == 20
    after = compare_versions("churn@champion", "churn@challenger")
    assert after.labelled_rows == 200
    assert after.metrics["churn/2"]["accuracy"] == pytest.approx(
        float(np.mean(good.predict(rows) == y.iloc[:200])))
    assert after.better("accuracy") == "churn/2"
    assert main(["ab", "churn@champion", "churn@challenger"]) == 0
    out = capsys.readouterr().out
    assert "A/B churn/1 vs churn/2: 10 requests, 200 rows (200 scored by both in the log)" in out
    assert "better: churn/2" in out


def test_ab_scores_the_other_version_on_split_traffic(two_versions):
    X, y, weak, good = two_versions
    with serve("churn@champion", challenger="churn@challenger", split=0.5, port=0,
               watch_interval=None) as running:
        client = Client(running.url)
        for i in range(40):
            assert client.post({"inputs": X.iloc[[i]].to_dict(orient="list")})[0] == 200
        running.flush()
    comparison = compare_versions("churn/1", "churn/2")
    rows = X.iloc[:40]
    assert comparison.n_rows == 40 and comparison.n_scored_by_both == 0
    assert comparison.agreement == pytest.approx(
        float(np.mean(weak.predict(rows) == good.predict(rows))))
    assert "computed now" in comparison.notes[0]


def test_routing_options_are_checked(two_versions):
    with pytest.raises(mlops.ValidationError, match="not both"):
        serve("churn@champion", challenger="churn@challenger", split=0.2, shadow=True, port=0)
    with pytest.raises(mlops.ValidationError, match="between 0 and 1"):
        serve("churn@champion", challenger="churn@challenger", split=1.5, port=0)
    with pytest.raises(mlops.ValidationError, match="compare two different versions"):
        compare_versions("churn@champion", "churn/1")
    with pytest.raises(mlops.NotFoundError, match="has logged predictions"):
        compare_versions("churn/1", "churn/2")
