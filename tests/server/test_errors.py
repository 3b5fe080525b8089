"""Error answers carry no traceback and no local path; a slow store never blocks the
server; the extension chooses the shared store and never creates it itself."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import warnings

import pytest
from jupyter_server.utils import JupyterServerAuthWarning

from jupyter_mlops.errors import SchemaVersionError, StoreCorruptError, StoreLockedError
from jupyter_mlops.server import queries
from jupyter_mlops.server.context import ServerContext

from .introspect import ROUTE_MAIN_METHOD


async def test_unexpected_error_is_a_bare_500(api, seeded, monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError(f"boom in {seeded.store.path}/secret.py")

    monkeypatch.setattr(queries, "list_runs", explode)
    code, body = await api("runs")
    assert code == 500
    assert body == {"message": "Unhandled error", "reason": None, "traceback": ""}


async def test_store_error_message_has_no_local_path(api, seeded, monkeypatch):
    where = str(seeded.store.db_path)

    def newer(*args, **kwargs):
        raise SchemaVersionError(f"Store schema 99 at {where} is newer than this jupyter_mlops "
                                 "supports (8). Upgrade with pip install -U jupyter-mlops.")

    monkeypatch.setattr(queries, "list_runs", newer)
    code, body = await api("runs")
    assert code == 500
    assert "newer" in body["message"] and "pip install -U" in body["message"]
    assert where not in body["message"]
    assert str(seeded.store.path.parent) not in body["message"]
    assert "…/mlops.db" in body["message"]
    assert "Traceback" not in str(body)


def failing_store(kind: str, store_path):
    """A ``ServerContext.store`` that fails the way ``kind`` says, naming local paths."""
    where = store_path / "mlops.db"

    def store(self):
        if kind == "unexpected":
            raise RuntimeError(f'Traceback (most recent call last):\n  File "{where}", line 1')
        raise StoreCorruptError(f"{where} is not a readable jupyter_mlops store (file is "
                                f"not a database). It was left untouched.")

    return store


@pytest.mark.parametrize("kind", ["unexpected", "store_error"])
@pytest.mark.parametrize(("example", "method"), ROUTE_MAIN_METHOD)
async def test_no_route_leaks_a_traceback_or_a_path(jp_fetch, seeded, jp_root_dir, monkeypatch,
                                                   example, method, kind):
    monkeypatch.setattr(ServerContext, "store", failing_store(kind, seeded.store.path))
    path, _, query = example.partition("?")
    params = dict(part.split("=", 1) for part in query.split("&")) if query else None
    body = json.dumps({"alias": "champion", "version": 1}) if method == "POST" else None
    response = await jp_fetch("jupyter-mlops", "api", path, params=params, method=method,
                              body=body, raise_error=False)
    body = response.body.decode()
    assert response.code in (404, 500), (example, response.code)  # 404: routes with no store
    assert response.headers["Content-Type"].startswith("application/json")
    assert "Traceback" not in body and "line 1" not in body
    for local in (seeded.store.path, seeded.store.path.parent, jp_root_dir.resolve()):
        assert str(local) not in body, (example, body)
    if response.code == 500 and kind == "unexpected":
        assert json.loads(body) == {"message": "Unhandled error", "reason": None,
                                    "traceback": ""}
    if response.code == 500 and kind == "store_error":
        assert "…/mlops.db is not a readable" in json.loads(body)["message"]


@pytest.mark.parametrize(("path", "params", "named"), [
    ("runs", {"limit": "ten"}, "limit"),
    ("runs", {"limit": "0"}, "limit"),
    ("runs", {"limit": "1e3"}, "limit"),
    ("runs", {"limit": "99999999999999999999999"}, "limit"),
    ("runs", {"offset": "-1"}, "offset"),
    ("runs", {"offset": "1.5"}, "offset"),
    ("runs", {"offset": "99999999999999999999999"}, "offset"),
    ("runs", {"offset": "99999999999999999999999", "sort": "metrics.acc"}, "offset"),
    ("runs", {"order": "sideways"}, "order"),
    ("runs", {"sort": "secret"}, "sort"),
    ("runs", {"status": "DONE"}, "status"),
    ("runs", {"filter": "metrics.acc >"}, "filter"),
    ("sessions", {"limit": "ten"}, "limit"),
    ("sessions", {"offset": "x"}, "offset"),
    ("sessions", {"offset": "99999999999999999999999"}, "offset"),
    ("sessions", {"kernel": "../../etc"}, "kernel"),
    ("cells", {}, "session"),
    ("cells", {"session": "../x"}, "session"),
    ("cells", {"session": "0" * 32, "limit": "ten"}, "limit"),
    ("cells", {"session": "0" * 32, "limit": "99999999999999999999999"}, "limit"),
    ("models/..", None, "'..'"),
])
async def test_malformed_query_values_are_400_naming_the_parameter(api, seeded, path, params,
                                                                   named):
    code, body = await api(*path.split("/"), params=params)
    assert code == 400, (path, params, code, body)
    assert body["error"] == "invalid"
    assert named in body["message"].lower(), body["message"]


async def test_locked_store_is_503_with_retry_after(jp_fetch, seeded, monkeypatch):
    def locked(*args, **kwargs):
        raise StoreLockedError("Store stayed locked by another process for 30 s.")

    monkeypatch.setattr(queries, "list_runs", locked)
    response = await jp_fetch("jupyter-mlops", "api", "runs", raise_error=False)
    assert response.code == 503
    assert response.headers["Retry-After"] == "2"


async def test_slow_store_does_not_block_the_event_loop(jp_fetch, seeded, monkeypatch):
    # The store query waits until /api/status has answered. Were it run on the event loop,
    # status could not answer before the query gave up waiting, and ``released`` is False.
    real = queries.list_runs
    release, released = threading.Event(), []

    def slow(*args, **kwargs):
        released.append(release.wait(30))
        return real(*args, **kwargs)

    monkeypatch.setattr(queries, "list_runs", slow)
    pending = asyncio.ensure_future(jp_fetch("jupyter-mlops", "api", "runs"))
    await asyncio.sleep(0.2)  # the slow query is now running in its thread
    status = await jp_fetch("api", "status")
    release.set()
    assert status.code == 200
    response = await pending
    assert response.code == 200
    assert released == [True], "/api/status waited behind a store query"


async def test_real_lock_held_by_another_writer_does_not_block(jp_fetch, seeded):
    # WAL readers never wait for a writer: the page answers while the write lock is still
    # held (a reader that waited would time out into a 503 first).
    import sqlite3

    other = sqlite3.connect(seeded.store.db_path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        response = await jp_fetch("jupyter-mlops", "api", "runs", raise_error=False)
        assert response.code == 200
        assert other.in_transaction
    finally:
        other.execute("ROLLBACK")
        other.close()


def test_no_auth_warning_for_our_routes(jp_configurable_serverapp, seeded):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        app = jp_configurable_serverapp()
    app.web_app.settings["jupyter_mlops"].close()
    ours = [w for w in caught if issubclass(w.category, JupyterServerAuthWarning)
            and "jupyter-mlops" in str(w.message)]
    assert ours == []


class TestStoreChoice:
    """Without JUPYTER_MLOPS_STORE, the server shares ``<root>/.mlops`` with its kernels."""

    @pytest.fixture
    def jp_server_config(self, monkeypatch):
        monkeypatch.delenv("JUPYTER_MLOPS_STORE", raising=False)
        return {"ServerApp": {"jpserver_extensions": {"jupyter_mlops": True,
                                                      "jupyter_server_terminals": False}}}

    async def test_store_env_set_to_root_and_not_created(self, api, jp_root_dir):
        expected = jp_root_dir.resolve() / ".mlops"
        assert os.environ["JUPYTER_MLOPS_STORE"] == str(expected)
        code, page = await api("runs")
        assert code == 200 and page["runs"] == [] and page["total"] == 0
        code, version = await api("version")
        assert version["store"] == {"exists": False, "path": ".mlops", "schema_version": None}
        code, body = await api("runs", "0" * 32)
        assert code == 404
        code, body = await api("models")
        assert body == {"models": []}
        assert not expected.exists()

    async def test_store_appears_once_a_kernel_writes(self, api, jp_root_dir):
        import jupyter_mlops as mlops

        store = mlops.set_store(jp_root_dir / ".mlops")
        try:
            with mlops.start_run(name="late", experiment="e"):
                pass
            code, page = await api("runs")
            assert [run["name"] for run in page["runs"]] == ["late"]
        finally:
            mlops.reset_store()
            store.close()
