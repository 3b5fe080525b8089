"""R8 read from the code: every method of every route is authenticated and authorized,
nothing loosens jupyter_server's own checks, nothing serves files by path, and no handler
touches SQLite or a file on the event loop. The same promise over HTTP is in
tests/server/test_auth.py, test_authorizer.py and test_errors.py."""

import ast
import inspect
import textwrap
from pathlib import Path

import pytest
import tornado.web
import tornado.websocket
from server.introspect import ROUTE_METHODS, implemented, own_classes

import jupyter_mlops
from jupyter_mlops.server import handlers, routes

pytestmark = [pytest.mark.reliability]

HANDLERS = sorted({handler for _, handler, _ in routes.ROUTES}, key=lambda h: h.__name__)
PACKAGE = Path(jupyter_mlops.__file__).parent


def decorators_of(function) -> list[str]:
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    return [ast.unparse(d) for d in tree.body[0].decorator_list]


def test_every_route_serves_something():
    assert ROUTE_METHODS
    assert all(implemented(handler) for handler in HANDLERS)


@pytest.mark.parametrize("handler", HANDLERS, ids=lambda h: h.__name__)
def test_every_method_is_authenticated_then_authorized(handler):
    assert issubclass(handler, handlers.MLOpsHandler)
    assert handler.auth_resource == "jupyter_mlops"
    for method in implemented(handler):
        found = decorators_of(getattr(handler, method.lower()))
        # Order matters: authorization needs the user that authentication found.
        assert found[:2] == ["tornado.web.authenticated", "authorized"], (handler, found)


@pytest.mark.parametrize("handler", HANDLERS, ids=lambda h: h.__name__)
def test_options_is_ours_and_not_open_to_anyone(handler):
    """jupyter_server's APIHandler.options is marked allow_unauthenticated; every route
    of ours overrides it, so an anonymous OPTIONS is a 403 like any other method."""
    assert "OPTIONS" in implemented(handler)
    assert not getattr(handler.options, "__allow_unauthenticated", False)


@pytest.mark.parametrize("risky", ["check_xsrf_cookie", "check_origin", "check_referer",
                                   "skip_check_origin", "get_current_user", "prepare"])
def test_no_handler_loosens_the_servers_checks(risky):
    for handler in HANDLERS:
        for cls in own_classes(handler):
            assert risky not in vars(cls), (cls, risky)


def test_no_file_serving_by_path_and_no_open_websocket():
    for handler in HANDLERS:
        assert not issubclass(handler, tornado.web.StaticFileHandler), handler
        if issubclass(handler, tornado.websocket.WebSocketHandler):
            assert "ws_authenticated" in decorators_of(handler.get), handler
    for source in PACKAGE.rglob("*.py"):
        text = source.read_text(encoding="utf-8")
        assert "StaticFileHandler" not in text, source
        assert "allow_unauthenticated" not in text, source


# Calls that block: SQLite and the filesystem. Handlers pass them to the thread pool
# (``self.call(queries.x, ...)``, ``self.mlops.run(open, ...)``) instead of calling them.
BLOCKING_NAMES = {"open", "store", "query", "read", "stat", "exists", "resolve"}


def blocking_calls(function) -> list[str]:
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        owner = ast.unparse(func.value) if isinstance(func, ast.Attribute) else ""
        if owner == "queries" or name in BLOCKING_NAMES:
            found.append(ast.unparse(node))
    return found


@pytest.mark.parametrize("handler", HANDLERS, ids=lambda h: h.__name__)
def test_no_handler_blocks_the_event_loop(handler):
    for method in implemented(handler):
        assert blocking_calls(getattr(handler, method.lower())) == [], (handler, method)


def test_the_blocking_call_finder_finds_one():
    def bad(self):
        rows = self.mlops.store().query("SELECT 1")
        return queries.list_runs(rows)  # noqa: F821 - never run, only parsed

    assert len(blocking_calls(bad)) == 3
