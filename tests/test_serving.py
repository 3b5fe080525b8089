"""A real model server on 127.0.0.1: every scoring format, every refusal, reloads, the log.

Every client loop here is bounded in count and in time.
"""

import http.client
import json
import threading
import time

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

import jupyter_mlops as mlops
from jupyter_mlops.serving import serve
from jupyter_mlops.serving.predictions import load_traffic

pytestmark = pytest.mark.timeout(120)


class Client:
    """One keep-alive connection; ``post`` and ``get`` return (status, headers, JSON or text)."""

    def __init__(self, url: str, timeout: float = 10) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=timeout)

    def request(self, method, path, body=None, content_type="application/json", headers=None):
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        sent = {**({"Content-Type": content_type} if body is not None else {}), **(headers or {})}
        self.conn.request(method, path, body=body, headers=sent)
        response = self.conn.getresponse()
        data = response.read().decode()
        try:
            data = json.loads(data)
        except ValueError:
            pass
        return response.status, dict(response.getheaders()), data

    def post(self, body, content_type="application/json", path="/invocations", **kw):
        return self.request("POST", path, body, content_type, **kw)

    def get(self, path):
        return self.request("GET", path)

    def close(self):
        self.conn.close()


def make_data(n=400, seed=0, shift=0.0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"age": rng.integers(18, 90, n).astype("int64"),
                      "income": rng.normal(50 + shift, 10, n),
                      "city": rng.choice(["Oslo", "Lyon", "Porto"], n)})
    y = ((X["income"] + (X["city"] == "Oslo") * 5) > 52).astype(int)
    return X, y


def fit(X, y, C=1.0):
    encode = make_column_transformer((OneHotEncoder(), ["city"]), remainder="passthrough")
    return make_pipeline(encode, LogisticRegression(C=C, max_iter=1000)).fit(X, y)


@pytest.fixture
def model(store):
    X, y = make_data()
    clf = fit(X, y)
    mlops.register_model(clf, "clf", alias="champion", reference=X)
    return clf, X


@pytest.fixture
def server(model):
    running = serve("clf@champion", port=0, max_body_mb=0.05, watch_interval=0.2)
    yield running
    running.stop()


@pytest.fixture
def client(server):
    c = Client(server.url)
    yield c
    c.close()


def test_predictions_equal_model_predict_for_every_format(model, client):
    clf, X = model
    rows = X.head(25)
    expected = clf.predict(rows).tolist()
    payloads = {
        "dataframe_split": {"dataframe_split": rows.to_dict(orient="split")},
        "dataframe_records": {"dataframe_records": rows.to_dict(orient="records")},
        "instances (records)": {"instances": rows.to_dict(orient="records")},
        "instances (rows)": {"instances": rows.values.tolist()},
        "inputs (columns)": {"inputs": rows.to_dict(orient="list")},
    }
    for label, payload in payloads.items():
        status, headers, body = client.post(payload)
        assert status == 200, (label, body)
        assert body == {"predictions": expected}, label
        assert headers["X-Model-Version"] == "clf/1"
    status, _, body = client.post(rows.to_csv(index=False), "text/csv")
    assert status == 200 and body["predictions"] == expected
    # Columns in another order are put in the signature's order.
    status, _, body = client.post({"dataframe_split": rows[["city", "income", "age"]]
                                   .to_dict(orient="split")})
    assert body["predictions"] == expected


def test_array_model_over_http(store):
    X = np.random.default_rng(3).normal(size=(200, 4))
    ridge = Ridge().fit(X, X @ np.array([1.0, -2.0, 0.5, 3.0]))
    mlops.register_model(ridge, "ridge", reference=X)
    with serve("ridge", port=0, watch_interval=None) as running:
        client = Client(running.url)
        status, _, body = client.post({"instances": X[:10].tolist()})
        assert status == 200
        np.testing.assert_allclose(body["predictions"], ridge.predict(X[:10]), rtol=1e-12)
        status, _, body = client.post({"inputs": X[:3].tolist()})
        np.testing.assert_allclose(body["predictions"], ridge.predict(X[:3]), rtol=1e-12)
        status, _, body = client.post({"instances": [[1.0, 2.0]]})
        assert status == 400 and body["message"] == "Each row must have 4 values; got 2."
        client.close()


def test_each_bad_input_gets_its_status_and_the_server_keeps_serving(model, client):
    clf, X = model
    good = {"dataframe_records": X.head(2).to_dict(orient="records")}
    bad = [
        ({"dataframe_records": [{"age": 30, "city": "Oslo"}]}, "application/json", 400,
         "Missing column 'income'; the model takes age, income, city."),
        ({"dataframe_records": [{"age": 30, "income": 1.0, "city": "Oslo", "zip": 7}]},
         "application/json", 400, "Unexpected column 'zip'; the model takes age, income, city."),
        ({"dataframe_records": [{"age": 30, "income": "high", "city": "Oslo"}]},
         "application/json", 400, "Column 'income' must be float64; got str 'high' in row 0."),
        ({"dataframe_records": [{"age": "old", "income": 1.0, "city": "Oslo"}]},
         "application/json", 400, "Column 'age' must be int64; got str 'old' in row 0."),
        ('{"dataframe_records": [{"age": 30,', "application/json", 400, "Malformed JSON: "),
        ("age,income\n30,1.0", "text/csv", 400, "Missing column 'city'"),
        ("hello", "text/plain", 415, "Content-Type 'text/plain' is not scored"),
        ({"inputs": [[1, 2, 3]] * 8000}, "application/json", 413,
         "The body is larger than the limit of 52,428 bytes"),
    ]
    for payload, content_type, status, message in bad:
        got_status, _, body = client.post(payload, content_type)
        assert got_status == status, (payload if len(str(payload)) < 200 else "large", body)
        assert body["message"].startswith(message) or message in body["message"], body
        assert "Traceback" not in body["message"]
        ok, _, answer = client.post(good)
        assert ok == 200 and answer["predictions"] == clf.predict(X.head(2)).tolist()
    status, _, body = client.get("/invocations")
    assert status == 405 and body["error_code"] == "HTTP_ERROR"
    assert client.get("/nowhere")[0] == 404
    assert client.get("/ping")[0] == 200


def test_a_huge_body_is_refused_before_it_is_read(model, server):
    # Over the discard limit the server answers 413 from the headers and closes.
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.putrequest("POST", "/invocations")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", str(2 * 1024 ** 3))
    conn.endheaders()
    response = conn.getresponse()
    assert response.status == 413
    conn.close()
    assert Client(server.url).get("/ping")[0] == 200


def test_ping_health_version_metadata(model, client, server):
    assert client.get("/ping")[:1] == (200,)
    status, _, health = client.get("/health")
    assert status == 200 and health["status"] == "ok" and health["model"] == "clf/1"
    status, _, version = client.get("/version")
    assert version["name"] == "clf" and version["version"] == 1
    assert version["requested"] == "clf@champion" and version["uri"] == "models:/clf/1"
    status, _, metadata = client.get("/metadata")
    champion = metadata["champion"]
    assert champion["signature"]["columns"][0] == {"name": "age", "dtype": "int64"}
    assert champion["aliases"] == ["champion"] and champion["version"] == 1
    assert "run_id" in champion and metadata["routing"] == {"mode": "single"}
    assert repr(server).startswith("<ModelServer clf@champion -> clf/1 at http://127.0.0.1:")


class NanModel:
    """Predicts NaN for negative inputs: the answer must still be strict JSON."""

    def predict(self, X):
        values = np.asarray(X, dtype=float)[:, 0]
        return np.where(values < 0, np.nan, values)


def test_nan_predictions_are_null(store):
    mlops.register_model(NanModel(), "nan", reference=np.array([[1.0], [2.0]]))
    with serve("nan", port=0, watch_interval=None) as running:
        status, _, body = Client(running.url).post({"instances": [[-1.0], [2.0]]})
    assert status == 200 and body == {"predictions": [None, 2.0]}


def _hammer(url, payload, stop, seen, errors, limit=3000, deadline_s=30):
    """Send requests until ``stop`` is set (at most ``limit``, at most ``deadline_s``)."""
    client = Client(url)
    ends = time.monotonic() + deadline_s
    try:
        for _ in range(limit):
            if stop.is_set() or time.monotonic() > ends:
                break
            status, headers, body = client.post(payload)
            if status != 200:
                errors.append((status, body))
            else:
                seen.append(headers["X-Model-Version"])
    finally:
        client.close()


def test_alias_change_and_reload_swap_the_model_without_dropping_requests(model, server):
    clf, X = model
    payload = {"dataframe_records": X.head(5).to_dict(orient="records")}
    stop, seen, errors = threading.Event(), [], []
    worker = threading.Thread(target=_hammer, args=(server.url, payload, stop, seen, errors))
    worker.start()
    try:
        deadline = time.monotonic() + 10
        while len(seen) < 20 and time.monotonic() < deadline:
            time.sleep(0.01)
        X2, y2 = make_data(seed=1)
        mlops.register_model(fit(X2, y2, C=0.01), "clf", alias="champion", reference=X2)
        while (not seen or seen[-1] != "clf/2") and time.monotonic() < deadline:
            time.sleep(0.02)  # the alias watcher polls every 0.2 s
        assert seen and seen[-1] == "clf/2"
        mlops.set_alias("clf", 1, "champion")
        status, _, body = Client(server.url).post(None, path="/reload", headers=server.headers)
        assert status == 200 and body["champion"] == {"from": "clf/2", "to": "clf/1"}
        count = len(seen)
        while len(seen) < count + 20 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        stop.set()
        worker.join(30)
    assert not errors
    assert seen[-1] == "clf/1" and "clf/2" in seen


# The clients run in a separate process, so that they do not compete with the server for
# this interpreter's GIL: 8 threads there, 500 requests each, keep-alive connections.
LOAD_CLIENT = r"""
import http.client, json, sys, threading
port, clients, per_client = (int(value) for value in sys.argv[1:4])
payload = sys.argv[4]
errors, done = [], [0]
lock = threading.Lock()

def work(index):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        for number in range(per_client):
            request_id = f"c{index}-{number}"
            conn.request("POST", "/invocations", body=payload, headers={
                "Content-Type": "application/json", "X-Request-Id": request_id})
            response = conn.getresponse()
            body = response.read()
            with lock:
                if response.status != 200 or response.getheader("X-Request-Id") != request_id:
                    errors.append([response.status, body.decode()[:200]])
                done[0] += 1
    except Exception as exc:
        errors.append(repr(exc))
    finally:
        conn.close()

threads = [threading.Thread(target=work, args=(i,)) for i in range(clients)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join(120)
print(json.dumps({"done": done[0], "errors": errors[:5], "n_errors": len(errors)}))
"""


@pytest.mark.slow
def test_concurrent_clients_are_all_served_and_logged(store):
    import subprocess
    import sys

    rng = np.random.default_rng(5)
    X = pd.DataFrame(rng.normal(size=(500, 4)), columns=["a", "b", "c", "d"])
    mlops.register_model(LogisticRegression().fit(X, X["a"] > 0), "fast", reference=X)
    clients, per_client = 8, 500
    payload = json.dumps({"dataframe_records": X.head(1).to_dict(orient="records")})
    with serve("fast", port=0) as running:
        outcome = subprocess.run(
            [sys.executable, "-c", LOAD_CLIENT, str(running.port), str(clients),
             str(per_client), payload], capture_output=True, text=True, timeout=150)
        assert outcome.returncode == 0, outcome.stderr[-2000:]
        result = json.loads(outcome.stdout)
        assert result["n_errors"] == 0, result["errors"]
        assert result["done"] == clients * per_client
        assert running.flush(30)
        assert running.state.log.stats()["pending"] == 0
        assert running.state.requests == clients * per_client
    (count, distinct), = store.query(
        "SELECT count(*), count(DISTINCT request_id) FROM predictions WHERE name = 'fast'")
    assert count == distinct == clients * per_client


def test_the_log_keeps_inputs_and_outputs(model, server, client):
    clf, X = model
    rows = X.iloc[10:13]
    sent = [
        ({"dataframe_split": rows.to_dict(orient="split")}, "application/json"),
        ({"dataframe_records": rows.to_dict(orient="records")}, "application/json"),
        ({"instances": rows.values.tolist()}, "application/json"),
        ({"inputs": rows[["city", "age", "income"]].to_dict(orient="list")}, "application/json"),
        (rows.to_csv(index=False), "text/csv"),
    ]
    ids = []
    for payload, content_type in sent:
        status, headers, _ = client.post(payload, content_type)
        assert status == 200
        ids.append(headers["X-Request-Id"])
    server.flush()
    traffic = load_traffic("clf", 1, store=mlops.get_store(),
                           spec=server.deployment.champion.spec)
    expected = pd.concat([rows] * len(sent), ignore_index=True)
    pd.testing.assert_frame_equal(traffic.inputs, expected, check_dtype=False)
    assert traffic.inputs["age"].dtype == "int64"
    assert traffic.outputs == clf.predict(expected).tolist()
    assert traffic.request_ids == [i for i in ids for _ in range(3)]
    assert traffic.rows == [0, 1, 2] * len(sent) and traffic.labels is None
    (body,) = mlops.get_store().query("SELECT inputs FROM predictions WHERE request_id = ?",
                                      (ids[-1],))[0]
    assert body == rows.to_csv(index=False)  # the request exactly as it came
    token = server.headers
    status, _, body = client.post({"request_id": ids[0], "labels": [1, 0]}, path="/labels",
                                  headers=token)
    assert status == 400 and "scored 3 row(s); got 2 label(s)" in body["message"]
    status, _, body = client.post({"request_id": "nope", "labels": [1]}, path="/labels",
                                  headers=token)
    assert status == 404
    status, _, body = client.post({"request_id": ids[0], "labels": [1, 0, 1]}, path="/labels",
                                  headers=token)
    assert status == 200
    labelled = load_traffic("clf", 1, store=mlops.get_store(),
                            spec=server.deployment.champion.spec)
    assert labelled.labels[:3] == [1, 0, 1] and labelled.labelled() == [0, 1, 2]


def test_a_busy_port_is_one_line(model, server):
    with pytest.raises(mlops.ValidationError, match=f"Port {server.port} on 127.0.0.1 is already "
                                                    "in use; choose another with --port"):
        serve("clf@champion", port=server.port)
    with pytest.raises(mlops.NotFoundError, match="no alias 'nope'"):
        serve("clf@nope", port=0)
    with pytest.raises(mlops.ValidationError, match="name one with --challenger"):
        serve("clf@champion", port=0, split=0.2)


class Slow:
    """Takes half a second to predict: a request is still in flight when stop() is called."""

    def predict(self, X):
        time.sleep(0.5)
        return np.zeros(len(X))


def test_stop_lets_a_request_in_flight_finish(store):
    mlops.register_model(Slow(), "slow", reference=np.zeros((2, 1)))
    running = serve("slow", port=0, watch_interval=None)
    answers = []
    worker = threading.Thread(target=lambda: answers.append(
        Client(running.url).post({"instances": [[1.0]]})[0]))
    worker.start()
    time.sleep(0.2)
    running.stop()
    worker.join(10)
    assert answers == [200]
    assert not running.running
    assert mlops.get_store().query("SELECT count(*) FROM predictions")[0][0] == 1


def test_mlops_serve_magic_returns_a_handle(model, shell):
    from IPython.core.error import UsageError

    clf, X = model
    server = shell.run_line_magic("mlops", "serve clf@champion")
    try:
        assert server.running and server.url.startswith("http://127.0.0.1:")
        status, _, body = Client(server.url).post({"inputs": X.head(3).to_dict(orient="list")})
        assert status == 200 and body["predictions"] == clf.predict(X.head(3)).tolist()
        assert shell.run_line_magic("mlops", "serve --list") == [server]
    finally:
        shell.run_line_magic("mlops", "serve --stop")
    assert not server.running
    with pytest.raises(UsageError, match="No model named 'nope'"):
        shell.run_line_magic("mlops", "serve nope")
    with pytest.raises(UsageError, match="takes a model URI"):
        shell.run_line_magic("mlops", "serve")


def test_a_lone_request_reaches_the_log_without_a_flush(model, server, client):
    clf, X = model
    assert client.post({"inputs": X.head(1).to_dict(orient="list")})[0] == 200
    store = mlops.get_store()
    deadline = time.monotonic() + 5
    while not store.query("SELECT count(*) FROM predictions")[0][0]:
        assert time.monotonic() < deadline, "the request was not logged within 5 s"
        time.sleep(0.05)


def test_sigterm_right_after_the_announcement_stops_the_server_cleanly(store, tmp_path):
    # The signal used to arrive before the server's handler was installed, so the process
    # died of SIGTERM (-15) instead of draining its log and exiting 0.
    import signal
    import subprocess
    import sys

    from sklearn.linear_model import LogisticRegression

    mlops.register_model(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), "quick")
    for _ in range(5):
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupyter_mlops.cli", "serve", "quick", "--port", "0",
             "--store", str(store.path), "--watch", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert " at http://127.0.0.1:" in proc.stdout.readline()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        proc.stdout.close()


def _responses(sock, count, deadline_s=10):
    """``count`` HTTP responses read off one socket: (status, headers, body) each."""
    data, answers = b"", []
    deadline = time.monotonic() + deadline_s
    while len(answers) < count:
        end = data.find(b"\r\n\r\n")
        if end >= 0:
            lines = data[:end].decode().split("\r\n")
            headers = dict(line.split(": ", 1) for line in lines[1:])
            total = end + 4 + int(headers["Content-Length"])
            if len(data) >= total:
                answers.append((int(lines[0].split()[1]), headers, data[end + 4:total]))
                data = data[total:]
                continue
        assert time.monotonic() < deadline, f"{len(answers)} of {count} answers came"
        chunk = sock.recv(65536)
        assert chunk, f"the server closed after {len(answers)} of {count} answers"
        data += chunk
    return answers


def test_pipelined_requests_on_one_connection_are_answered_in_order_and_logged_once(
        model, server):
    """Scoring requests, a refused one and other routes, all sent at once on one
    connection: each gets its answer in order, whoever reads it, and the scored ones are
    logged once."""
    import socket

    clf, X = model
    good = json.dumps({"dataframe_split": X.head(2).to_dict(orient="split")}).encode()
    host = f"127.0.0.1:{server.port}"

    def post(body, request_id):
        return (f"POST /invocations HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json"
                f"\r\nX-Request-Id: {request_id}\r\nContent-Length: {len(body)}\r\n\r\n"
                ).encode() + body

    burst = (post(good, "first") + post(b'{"instances": "nope"}', "refused")
             + f"GET /health HTTP/1.1\r\nHost: {host}\r\n\r\n".encode() + post(good, "after"))
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(burst)
        answers = _responses(sock, 4)
    assert [status for status, _, _ in answers] == [200, 400, 200, 200]
    expected = clf.predict(X.head(2)).tolist()
    assert json.loads(answers[0][2]) == json.loads(answers[3][2]) == {"predictions": expected}
    assert answers[0][1]["X-Request-Id"] == "first"
    assert answers[0][1]["X-Model-Version"] == answers[3][1]["X-Model-Version"] == "clf/1"
    assert json.loads(answers[1][2])["error_code"] == "BAD_REQUEST"
    health = json.loads(answers[2][2])
    assert (health["requests"], health["errors"]) == (2, 1)  # counted once, by the time asked
    assert server.flush()
    logged = mlops.get_store().query("SELECT request_id FROM predictions ORDER BY id")
    assert [row[0] for row in logged] == ["first", "after"]


def test_a_head_with_a_bare_line_feed_is_never_framed_by_the_front(model, server):
    """A header line ended by a bare LF hides a ``Transfer-Encoding`` from a reader that
    splits on CRLF only (request smuggling behind a proxy that splits on LF). Such a head
    goes to tornado, which reads both framings and refuses the request."""
    import socket

    clf, X = model
    body = json.dumps({"dataframe_split": X.head(1).to_dict(orient="split")}).encode()
    head = (f"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "X-Note: a\nTransfer-Encoding: chunked\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head + body)  # a scoring request by its length, not as chunks
        answer = b""
        while b"\r\n" not in answer and (chunk := sock.recv(65536)):
            answer += chunk
    assert answer.split(b" ", 2)[1] == b"400", answer  # tornado's refusal, then it closes
