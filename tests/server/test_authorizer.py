"""A server whose authorizer refuses the jupyter_mlops resource answers 403 on every route,
with no data, while the rest of the server keeps working."""

from __future__ import annotations

import json

import pytest
from jupyter_server.auth.authorizer import Authorizer

from jupyter_mlops.server import routes

EXAMPLES = [example for _, _, example in routes.ROUTES]


class DenyMLOps(Authorizer):
    """Allows everything except reading the jupyter_mlops resource."""

    def is_authorized(self, handler, user, action, resource):
        return resource != "jupyter_mlops"


@pytest.fixture
def jp_server_config(seeded):
    return {
        "ServerApp": {
            "jpserver_extensions": {"jupyter_mlops": True, "jupyter_server_terminals": False},
            "allow_unauthenticated_access": False,
            "authorizer_class": DenyMLOps,
        }
    }


@pytest.mark.parametrize("example", EXAMPLES)
async def test_authorizer_denial_is_403(api, seeded, example, jp_serverapp):
    assert isinstance(jp_serverapp.authorizer, DenyMLOps)
    path, _, query = example.partition("?")
    params = dict(part.split("=", 1) for part in query.split("&")) if query else None
    code, body = await api(path, params=params)
    assert code == 403
    assert "not authorized" in body["message"]
    for run_id in seeded.runs.values():
        assert run_id not in json.dumps(body)


async def test_the_denial_is_ours_alone(jp_fetch, jp_serverapp):
    response = await jp_fetch("api", "status")
    assert response.code == 200
