"""The route table of ``/jupyter-mlops/api/``; tests walk it to check every route's auth."""

from __future__ import annotations

from typing import Any

from jupyter_server.utils import url_path_join

from . import handlers
from .context import ServerContext

PREFIX = ("jupyter-mlops", "api")

# (pattern under the prefix, handler, an example path for the route-wide tests)
ROUTES: list[tuple[str, type[handlers.MLOpsHandler], str]] = [
    (r"runs", handlers.RunsHandler, "runs"),
    (r"runs/(?P<run_id>[^/]+)", handlers.RunHandler, "runs/" + "0" * 32),
    (r"compare", handlers.CompareHandler, "compare?runs=" + "0" * 32),
    (r"runs/(?P<run_id>[^/]+)/data/(?P<fingerprint>[^/]+)", handlers.DataPreviewHandler,
     "runs/" + "0" * 32 + "/data/" + "0" * 32),
    (r"models", handlers.ModelsHandler, "models"),
    (r"models/(?P<name>[^/]+)", handlers.ModelHandler, "models/some-model"),
    (r"models/(?P<name>[^/]+)/versions/(?P<version>[0-9]{1,9})/card", handlers.CardHandler,
     "models/some-model/versions/1/card"),
    (r"models/(?P<name>[^/]+)/aliases", handlers.AliasesHandler, "models/some-model/aliases"),
    (r"models/(?P<name>[^/]+)/aliases/(?P<alias>[^/]+)", handlers.AliasHandler,
     "models/some-model/aliases/champion"),
    (r"schedules", handlers.SchedulesHandler, "schedules"),
    (r"sessions", handlers.SessionsHandler, "sessions"),
    (r"cells", handlers.CellsHandler, "cells?session=" + "0" * 32),
    # Anything after artifacts/ reaches the handler, so '..' and encoded slashes are
    # refused by the digest check (400) rather than by chance of routing.
    (r"artifacts/(?P<sha256>.*)", handlers.ArtifactHandler, "artifacts/" + "0" * 64),
    (r"version", handlers.VersionHandler, "version"),
    (r"(?P<path>.*)", handlers.MissingHandler, "no-such-endpoint"),
]


def api_url(base_url: str, path: str = "") -> str:
    return url_path_join(base_url, *PREFIX, path)


def add_routes(web_app: Any, context: ServerContext) -> None:
    """Register every route under the server's base URL."""
    web_app.settings["jupyter_mlops"] = context
    base_url = web_app.settings["base_url"]
    web_app.add_handlers(".*$", [
        (api_url(base_url, pattern), handler) for pattern, handler, _ in ROUTES
    ])
