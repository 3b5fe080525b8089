"""The server's authorizer decides: refusing the jupyter_mlops resource answers 403 on
every route with no data, refusing only ``read`` closes every GET (a write such as setting
an alias is the ``write`` action), refusing only ``write`` closes the writes and nothing
else, and the rest of the server keeps working."""

from __future__ import annotations

import json

import pytest
from jupyter_server.auth.authorizer import Authorizer

from .introspect import OTHER_METHODS, ROUTE_METHODS, assert_no_data, split

READS = {"GET", "HEAD", "OPTIONS"}


class DenyMLOps(Authorizer):
    """Allows everything except the jupyter_mlops resource."""

    def is_authorized(self, handler, user, action, resource):
        return resource != "jupyter_mlops"


class DenyAction(Authorizer):
    """Allows everything except one action on the jupyter_mlops resource."""

    denied = ""

    def is_authorized(self, handler, user, action, resource):
        return not (resource == "jupyter_mlops" and action == self.denied)


class DenyRead(DenyAction):
    denied = "read"


class DenyWrite(DenyAction):
    denied = "write"


def config_with(authorizer: type[Authorizer]) -> dict:
    return {
        "ServerApp": {
            "jpserver_extensions": {"jupyter_mlops": True, "jupyter_server_terminals": False},
            "allow_unauthenticated_access": False,
            "authorizer_class": authorizer,
        }
    }


@pytest.fixture
def jp_server_config(seeded):
    return config_with(DenyMLOps)


@pytest.mark.parametrize(("example", "method"), [
    (example, method) for example, method in ROUTE_METHODS if method != "OPTIONS"])
async def test_authorizer_denial_is_403(api, seeded, example, method, jp_serverapp):
    assert isinstance(jp_serverapp.authorizer, DenyMLOps)
    path, params = split(example)
    code, body = await api(path, params=params, method=method)
    assert code == 403
    assert "not authorized" in body["message"]
    for run_id in seeded.runs.values():
        assert run_id not in json.dumps(body)


async def test_the_denial_is_ours_alone(jp_fetch, jp_serverapp):
    response = await jp_fetch("api", "status")
    assert response.code == 200


@pytest.fixture
def send(jp_fetch):
    async def call(example: str, method: str):
        path, params = split(example)
        return await jp_fetch("jupyter-mlops", "api", path, params=params, method=method,
                              body="{}" if method in ("POST", "PUT", "PATCH") else None,
                              raise_error=False, allow_nonstandard_methods=True)

    return call


class TestDenyRead:
    @pytest.fixture
    def jp_server_config(self, seeded):
        return config_with(DenyRead)

    @pytest.mark.parametrize(("example", "method"), ROUTE_METHODS)
    async def test_every_read_is_403(self, send, seeded, jp_serverapp, example, method):
        assert isinstance(jp_serverapp.authorizer, DenyRead)
        response = await send(example, method)
        # A write is not a read: refused by the write action alone, else answered.
        allowed = {403} if method in READS else {400, 403, 404, 405}
        assert response.code in allowed, (example, method, response.code)
        assert_no_data(response.body, seeded)


class TestDenyWrite:
    @pytest.fixture
    def jp_server_config(self, seeded):
        return config_with(DenyWrite)

    @pytest.mark.parametrize(("example", "method"), ROUTE_METHODS)
    async def test_reads_still_answer(self, send, seeded, jp_serverapp, example, method):
        assert isinstance(jp_serverapp.authorizer, DenyWrite)
        response = await send(example, method)
        if method in READS:
            assert response.code in (200, 400, 404), (example, response.code)
        else:
            assert response.code == 403, (example, method, response.code)
            assert_no_data(response.body, seeded)

    @pytest.mark.parametrize(("example", "method"), [
        (example, method) for example, method in OTHER_METHODS if method not in READS])
    async def test_writes_are_refused_not_500(self, send, seeded, example, method):
        response = await send(example, method)
        assert response.code in (403, 405), (example, method, response.code)
        assert_no_data(response.body, seeded)
