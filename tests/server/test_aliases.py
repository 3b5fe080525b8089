"""``POST models/<name>/aliases`` and ``DELETE models/<name>/aliases/<alias>`` on a real
Jupyter server over a real registry: an alias set or moved from the sidebar is signed as
``set_alias`` signs it (``load_model("name@alias")`` follows it), a cookie-authenticated
call needs the XSRF token, bad input is one 400 line that changes nothing, and each
version carries its run's key metrics."""

from __future__ import annotations

import json
import math

import pytest
from sklearn.linear_model import LogisticRegression

import jupyter_mlops as mlops

X, Y = [[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1]
XSRF = "5c0f" * 8  # any token: tornado compares the _xsrf cookie with the header


@pytest.fixture
def models(seeded):
    """``iris`` v1 (run alpha, @champion) and v2 (run beta, 0.95 accuracy)."""
    mlops.register_model(LogisticRegression(C=1.0).fit(X, Y), "iris",
                         run_id=seeded.runs["alpha"], alias="champion")
    mlops.register_model(LogisticRegression(C=0.5).fit(X, Y), "iris",
                         run_id=seeded.runs["beta"])
    return seeded


@pytest.fixture
def post(jp_fetch):
    """``await post(name, body, headers)`` → (status, JSON); the token is sent unless
    ``headers`` replaces Authorization."""
    async def call(name: str, body, headers=None):
        text = body if isinstance(body, str) else json.dumps(body)
        response = await jp_fetch("jupyter-mlops", "api", "models", name, "aliases",
                                  method="POST", body=text, headers=headers,
                                  raise_error=False)
        return response.code, json.loads(response.body) if response.body else None

    return call


def alias_rows(store) -> dict[str, tuple[int, str | None]]:
    return {alias: (version, hmac) for alias, version, hmac in store.query(
        "SELECT alias, version, hmac FROM aliases WHERE name = 'iris'")}


async def test_move_champion_is_signed_and_loads(post, models):
    code, body = await post("iris", {"alias": "champion", "version": 2})
    assert code == 200, body
    assert body == {"name": "iris", "alias": "champion", "version": 2, "previous": 1}
    version, signature = alias_rows(models.store)["champion"]
    assert version == 2 and signature
    # The registry follows it: the alias carries this user's signature.
    assert mlops.get_model_version("iris@champion").version == 2
    assert mlops.load_model("iris@champion").C == 0.5


async def test_set_a_new_alias(post, api, models):
    code, body = await post("iris", {"alias": "challenger", "version": 1})
    assert code == 200 and body["previous"] is None
    code, model = await api("models", "iris")
    assert model["aliases"] == {"champion": 1, "challenger": 1}
    assert model["versions"][1]["aliases"] == ["challenger", "champion"]


async def test_delete_an_alias(jp_fetch, api, models):
    response = await jp_fetch("jupyter-mlops", "api", "models", "iris", "aliases",
                              "champion", method="DELETE", raise_error=False)
    assert response.code == 200
    assert json.loads(response.body)["previous"] == 1
    assert alias_rows(models.store) == {}
    assert mlops.get_model_version("iris/1").version == 1  # the version stays
    response = await jp_fetch("jupyter-mlops", "api", "models", "iris", "aliases",
                              "champion", method="DELETE", raise_error=False)
    assert response.code == 404


@pytest.mark.parametrize(("body", "says"), [
    ({"alias": "1st", "version": 2}, "An alias starts with a letter"),
    ({"alias": "champion", "version": "2"}, "version is a whole number"),
    ({"alias": "champion", "version": True}, "version is a whole number"),
    ({"alias": "champion", "version": 0}, "version is a whole number"),
    ({"alias": "champion"}, "version is a whole number"),
    ({"version": 2}, "An alias starts with a letter"),
    ("[1, 2]", "The body is a JSON object"),
    ("not json", "The body is a JSON object"),
    ("", "The body is a JSON object"),
])
async def test_bad_input_is_one_400_line_and_changes_nothing(post, models, body, says):
    before = alias_rows(models.store)
    code, answer = await post("iris", body)
    assert code == 400, answer
    assert answer["error"] == "invalid"
    assert answer["message"].startswith(says)
    assert "\n" not in answer["message"] and "Traceback" not in answer["message"]
    assert alias_rows(models.store) == before


@pytest.mark.parametrize(("name", "body"), [
    ("nope", {"alias": "champion", "version": 1}),
    ("iris", {"alias": "champion", "version": 9}),
])
async def test_unknown_model_or_version_is_404(post, models, name, body):
    before = alias_rows(models.store)
    code, answer = await post(name, body)
    assert code == 404 and answer["error"] == "not_found"
    assert alias_rows(models.store) == before


async def test_no_token_is_403_and_changes_nothing(post, models):
    before = alias_rows(models.store)
    code, _ = await post("iris", {"alias": "champion", "version": 2},
                         headers={"Authorization": ""})
    assert code == 403
    assert alias_rows(models.store) == before


async def login_cookie(jp_fetch) -> str:
    """The login cookie the server sets on a token-authenticated request."""
    response = await jp_fetch("jupyter-mlops", "api", "version")
    cookies = [c.split(";", 1)[0] for c in response.headers.get_list("Set-Cookie")]
    login = [c for c in cookies if c.startswith("username-")]
    assert login, cookies
    return login[0]


async def test_a_cookie_call_needs_the_xsrf_token(post, jp_fetch, models):
    """What a page on another site could send with the user's cookie: refused."""
    cookie = await login_cookie(jp_fetch)
    before = alias_rows(models.store)
    move = {"alias": "champion", "version": 2}
    code, _ = await post("iris", move, headers={"Authorization": "", "Cookie": cookie})
    assert code == 403
    code, _ = await post("iris", move, headers={
        "Authorization": "", "Cookie": f"{cookie}; _xsrf={XSRF}", "X-XSRFToken": "0" * 32})
    assert code == 403
    assert alias_rows(models.store) == before
    # The sidebar's own call: cookie and the matching XSRF header.
    code, body = await post("iris", move, headers={
        "Authorization": "", "Cookie": f"{cookie}; _xsrf={XSRF}", "X-XSRFToken": XSRF})
    assert code == 200, body
    assert alias_rows(models.store)["champion"][0] == 2


async def test_versions_carry_their_runs_key_metrics(api, models):
    code, model = await api("models", "iris")
    assert code == 200
    v2, v1 = model["versions"]
    assert v2["metrics"] == {"acc": 0.95}
    # Run alpha: acc's latest step, then NaN and infinity named beside a null.
    assert v1["metrics"] == {"acc": 0.9, "loss": None, "ratio": None}
    assert v1["nonfinite"] == {"loss": "nan", "ratio": "inf"}
    assert not math.isnan(v1["metrics"]["acc"])
