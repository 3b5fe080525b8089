"""Every route refuses requests without a valid token (403), before touching the store."""

from __future__ import annotations

import inspect

import pytest
from tornado.httpclient import HTTPClientError

from jupyter_mlops.server import handlers, routes

EXAMPLES = [example for _, _, example in routes.ROUTES]
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


def implemented(handler) -> list[str]:
    return [m for m in METHODS if m.lower() in vars(handler)]


async def test_every_handler_is_authenticated_and_authorized():
    for _, handler, _ in routes.ROUTES:
        assert issubclass(handler, handlers.MLOpsHandler)
        assert handler.auth_resource == "jupyter_mlops"
        methods = implemented(handler)
        assert methods, handler
        for method in methods:
            source = inspect.getsource(getattr(handler, method.lower()))
            assert "@tornado.web.authenticated" in source, (handler, method)
            assert "@authorized" in source, (handler, method)
        for risky in ("check_xsrf_cookie", "check_origin", "check_referer"):
            assert risky not in vars(handler), (handler, risky)


@pytest.mark.parametrize("example", EXAMPLES)
async def test_no_token_is_403_without_data(jp_fetch, seeded, example):
    path, _, query = example.partition("?")
    params = dict(part.split("=", 1) for part in query.split("&")) if query else None
    with pytest.raises(HTTPClientError) as caught:
        await jp_fetch("jupyter-mlops", "api", path, params=params,
                       headers={"Authorization": ""})
    assert caught.value.code == 403
    body = caught.value.response.body.decode()
    for run_id in seeded.runs.values():
        assert run_id not in body
    assert "alpha" not in body


@pytest.mark.parametrize("example", EXAMPLES)
async def test_wrong_token_is_403(jp_fetch, seeded, example):
    with pytest.raises(HTTPClientError) as caught:
        await jp_fetch("jupyter-mlops", "api", example.partition("?")[0],
                       headers={"Authorization": "token not-the-token"})
    assert caught.value.code == 403


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
async def test_writes_are_not_allowed(api_raw, method):
    # The API only reads: any other method is 405.
    code = await api_raw("runs", method=method, body="{}" if method != "DELETE" else None)
    assert code == 405


@pytest.fixture
def api_raw(jp_fetch):
    async def call(*parts, method="GET", body=None, headers=None):
        response = await jp_fetch("jupyter-mlops", "api", *parts, method=method, body=body,
                                  headers=headers, raise_error=False,
                                  allow_nonstandard_methods=True)
        return response.code

    return call
