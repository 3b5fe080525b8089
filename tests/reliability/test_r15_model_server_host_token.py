"""R15: the model server answers only its allowed Host names; ``/labels`` and ``/reload``
need its token and refuse what a cross-site page can send.

A real server on 127.0.0.1 (in this process, and once as ``jupyter-mlops serve``); every
refusal is checked against the state it protects: no label stored, no model swapped in,
no prediction logged.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from model_server_http import call, records
from sklearn.linear_model import LogisticRegression

import jupyter_mlops as mlops
from jupyter_mlops.serving import serve

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(120)]

FORGED_HOSTS = ["evil.example", "evil.example:{port}", "127.0.0.1.evil.example",
                "localhost.evil.example:{port}", "0.0.0.0:{port}", "[::2]:{port}",
                "10.0.0.1", "127.1.evil.example"]
LOOPBACK_HOSTS = ["127.0.0.1:{port}", "localhost:{port}", "LOCALHOST", "127.0.0.2:{port}",
                  "[::1]:{port}", "app.localhost:{port}"]

def form_posts(request_id):
    """What a cross-site HTML form (or a fetch without preflight) can send: content type and
    body, the JSON smuggled in as text/plain as the classic trick does."""
    text = json.dumps({"request_id": request_id, "labels": [1, 0, 1]})
    multipart = (f'--x\r\nContent-Disposition: form-data; name="request_id"\r\n\r\n'
                 f"{request_id}\r\n--x--\r\n")
    return [("text/plain", text), ("text/plain;charset=UTF-8", text),
            ("application/x-www-form-urlencoded", f"request_id={request_id}&labels=1"),
            ("multipart/form-data; boundary=x", multipart)]


def _data(seed=0, n=200):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    return X, (X["a"] + X["b"] > 0).astype(int)


@pytest.fixture
def served(store):
    """Version 1 served as m@champion; version 2 exists and the alias already points at it,
    but only a reload (there is no alias watcher here) would swap it in."""
    X, y = _data()
    mlops.register_model(LogisticRegression().fit(X, y), "m", alias="champion", reference=X)
    server = serve("m@champion", port=0, watch_interval=None)
    mlops.register_model(LogisticRegression(C=0.001).fit(X, 1 - y), "m", alias="champion",
                         reference=X)
    yield server, X
    server.stop()


def _answered_request(server, X):
    status, headers, _ = call(server.url, "POST", "/invocations", records(X.head(3)))
    assert status == 200 and headers["X-Model-Version"] == "m/1"
    assert server.flush(30)
    return headers["X-Request-Id"]


def _state(server, store):
    return {"labels": store.query("SELECT count(*) FROM prediction_labels")[0][0],
            "predictions": store.query("SELECT count(*) FROM predictions")[0][0],
            "reloads": server.state.reloads, "serving": server.deployment.champion.label}


def test_a_forged_host_is_refused_on_every_route_and_changes_nothing(served, store):
    server, X = served
    request_id = _answered_request(server, X)
    before = _state(server, store)
    routes = [("GET", "/ping", None), ("GET", "/health", None), ("GET", "/version", None),
              ("GET", "/metadata", None), ("POST", "/invocations", records(X.head(2))),
              ("POST", "/labels", {"request_id": request_id, "labels": [1, 0, 1]}),
              ("POST", "/reload", None)]
    for template in FORGED_HOSTS:
        host = template.format(port=server.port)
        for method, path, body in routes:
            status, _, answer = call(server.url, method, path, body,
                                     headers={"Host": host, **server.headers})
            assert status == 403, (host, path, status, answer)
            assert answer["error_code"] == "FORBIDDEN" and "--allowed-host" in answer["message"]
    assert server.flush(30)
    assert _state(server, store) == before
    for template in LOOPBACK_HOSTS:
        status, _, _ = call(server.url, "GET", "/ping",
                            headers={"Host": template.format(port=server.port)})
        assert status == 200, template


def test_labels_and_reload_need_the_token(served, store):
    server, X = served
    request_id = _answered_request(server, X)
    before = _state(server, store)
    labels = {"request_id": request_id, "labels": [1, 0, 1]}
    wrong = [{}, {"Authorization": ""}, {"Authorization": "token"},
             {"Authorization": "token " + "0" * 48}, {"Authorization": server.token},
             {"Authorization": "Basic " + server.token},
             {"Authorization": "token " + server.token[:-1]},
             {"X-Token": server.token}, {"Cookie": f"token={server.token}"}]
    for headers in wrong:
        for path, body in (("/labels", labels), ("/reload", None)):
            status, _, answer = call(server.url, "POST", path, body, headers=headers)
            assert status == 403, (path, headers, answer)
            assert "token" in answer["message"]
        status, _, _ = call(server.url, "POST", f"/labels?token={server.token}", labels,
                            headers=headers)
        assert status == 403  # never from the URL, where logs and referrers keep it
    assert server.flush(30)
    assert _state(server, store) == before

    # The same requests with the token do what they say: the refusals above were refusals.
    status, _, answer = call(server.url, "POST", "/labels", labels, headers=server.headers)
    assert status == 200 and answer["labelled_rows"] == 3
    status, _, answer = call(server.url, "POST", "/reload",
                             headers={"Authorization": f"Bearer {server.token}"})
    assert status == 200 and answer["champion"] == {"from": "m/1", "to": "m/2"}
    assert _state(server, store)["labels"] == 3 and server.deployment.champion.label == "m/2"


def test_cross_site_posts_are_refused_even_with_the_token(served, store):
    """A web page can post text/plain or a form anywhere without asking first: those
    content types are refused on the routes that change state, as are posts whose Origin
    is not an allowed host."""
    server, X = served
    request_id = _answered_request(server, X)
    before = _state(server, store)
    body = json.dumps({"request_id": request_id, "labels": [1, 0, 1]})
    for content_type, form in form_posts(request_id):
        for path in ("/labels", "/reload"):
            status, _, answer = call(server.url, "POST", path, form, content_type=content_type,
                                     headers=server.headers)
            assert status == 415, (path, content_type, answer)
            assert "application/json" in answer["message"]
        status, _, _ = call(server.url, "POST", "/invocations", form, content_type=content_type)
        assert status == 415
    for origin in ("https://evil.example", "http://evil.example:8080", "null",
                   f"http://127.0.0.1.evil.example:{server.port}"):
        for path, payload in (("/labels", body), ("/reload", None),
                              ("/invocations", records(X.head(1)))):
            status, _, answer = call(server.url, "POST", path, payload,
                                     headers={"Origin": origin, **server.headers})
            assert status == 403, (origin, path, answer)
    assert server.flush(30)
    assert _state(server, store) == before
    # A page of the server itself may post (with the token).
    status, _, _ = call(server.url, "POST", "/labels", body,
                        headers={"Origin": f"http://localhost:{server.port}", **server.headers})
    assert status == 200


def test_allowed_hosts_are_answered_and_a_token_is_chosen_or_refused(store):
    X, y = _data()
    mlops.register_model(LogisticRegression().fit(X, y), "m", reference=X)
    token = "a-token-of-our-own-choosing"
    with serve("m", port=0, watch_interval=None, token=token,
               allowed_hosts=["models.internal", "10.1.2.3"]) as server:
        assert server.token == token and server.headers == {"Authorization": f"token {token}"}
        for host, expected in (("models.internal", 200), (f"MODELS.internal:{server.port}", 200),
                               ("10.1.2.3", 200), ("models.internal.evil", 403),
                               ("other.internal", 403)):
            status, _, _ = call(server.url, "GET", "/ping", headers={"Host": host})
            assert status == expected, host
        status, _, _ = call(server.url, "POST", "/reload", headers={"Host": "models.internal",
                                                                    **server.headers})
        assert status == 200
    with serve("m", port=0, watch_interval=None, allowed_hosts=["*"]) as server:
        assert call(server.url, "GET", "/ping", headers={"Host": "anything.example"})[0] == 200
        assert len(server.token) >= 32  # generated
    for bad in ("short", "with a space inside it", "", 12345678901234567):
        with pytest.raises(mlops.ValidationError, match="server token"):
            serve("m", port=0, watch_interval=None, token=bad)
    for bad in ("", "http://x/y", "a b"):
        with pytest.raises(mlops.ValidationError, match="--allowed-host"):
            serve("m", port=0, watch_interval=None, allowed_hosts=[bad])


def test_the_command_prints_a_generated_token_that_the_server_then_requires(store, tmp_path):
    X, y = _data()
    mlops.register_model(LogisticRegression().fit(X, y), "m", reference=X)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("JUPYTER_MLOPS_SERVE_TOKEN", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter_mlops.cli", "serve", "m", "--port", "0", "--store",
         str(store.path), "--watch", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=env)
    try:
        serving = proc.stdout.readline()
        assert serving.startswith("Serving m (m/1) at http://127.0.0.1:"), serving
        url = serving.split(" at ")[1].split("/invocations")[0]
        printed = proc.stdout.readline()
        assert "Authorization: token " in printed
        token = printed.rsplit(" ", 1)[1].strip()
        assert call(url, "POST", "/reload")[0] == 403
        assert call(url, "POST", "/reload",
                    headers={"Authorization": "token " + "f" * len(token)})[0] == 403
        status, _, answer = call(url, "POST", "/reload",
                                 headers={"Authorization": f"token {token}"})
        assert status == 200 and answer["reloaded"] is True
    finally:
        proc.terminate()
        proc.wait(timeout=60)
