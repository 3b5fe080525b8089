"""Every route × every method, OPTIONS included: no valid token → 403 with no data, before
the store is touched; methods the API does not have → 405, never 500. The routes and their
methods are read from ``routes.ROUTES`` and the handler classes, so a new route is covered
at once. The static side (decorators, no loosened checks) is
tests/reliability/test_r8_*.py."""

from __future__ import annotations

import pytest

from jupyter_mlops.server import routes

from .introspect import OTHER_METHODS, ROUTE_METHODS, assert_no_data, split


def body_for(method: str) -> str | None:
    return "{}" if method in ("POST", "PUT", "PATCH") else None


@pytest.fixture
def fetch(jp_fetch):
    """``await fetch(example, method, headers)`` → the response, whatever its status."""
    async def call(example: str, method: str = "GET", headers=None):
        path, params = split(example)
        return await jp_fetch("jupyter-mlops", "api", path, params=params, method=method,
                              body=body_for(method), headers=headers, raise_error=False,
                              allow_nonstandard_methods=True)

    return call


@pytest.mark.parametrize(("example", "method"), ROUTE_METHODS)
async def test_no_token_is_403_without_data(fetch, seeded, example, method):
    response = await fetch(example, method, headers={"Authorization": ""})
    assert response.code == 403
    assert_no_data(response.body, seeded)


@pytest.mark.parametrize(("example", "method"), ROUTE_METHODS)
async def test_wrong_token_is_403_without_data(fetch, seeded, example, method):
    response = await fetch(example, method, headers={"Authorization": "token not-the-token"})
    assert response.code == 403
    assert_no_data(response.body, seeded)


def test_every_route_serves_options():
    """OPTIONS is a method of every route, so the tests above refuse it without a token."""
    assert {example for example, method in ROUTE_METHODS if method == "OPTIONS"} == {
        example for _, _, example in routes.ROUTES}


@pytest.mark.parametrize("example", [example for _, _, example in routes.ROUTES])
async def test_a_cross_origin_preflight_without_credentials_is_403(fetch, seeded, example):
    """What a browser sends before a cross-origin call: no cookie, no token."""
    response = await fetch(example, "OPTIONS", headers={
        "Authorization": "", "Origin": "https://elsewhere.example",
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization"})
    assert response.code == 403
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Access-Control-Allow-Methods" not in response.headers
    assert_no_data(response.body, seeded)


@pytest.mark.parametrize("example", [example for _, _, example in routes.ROUTES])
async def test_options_with_a_token_reveals_only_the_cors_headers(fetch, seeded, example):
    response = await fetch(example, "OPTIONS")
    assert response.code in (200, 204)
    assert response.body == b""
    assert "GET" in response.headers["Access-Control-Allow-Methods"]


@pytest.mark.parametrize(("example", "method"), OTHER_METHODS)
async def test_methods_the_api_lacks_are_refused_with_or_without_a_token(fetch, seeded,
                                                                          example, method):
    with_token = await fetch(example, method)
    without = await fetch(example, method, headers={"Authorization": ""})
    assert with_token.code == 405, (example, method, with_token.code)
    assert without.code in (403, 405), (example, method, without.code)
    assert_no_data(with_token.body, seeded)
    assert_no_data(without.body, seeded)
