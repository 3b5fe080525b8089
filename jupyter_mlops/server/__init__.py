"""The Jupyter server extension: the store as JSON under ``/jupyter-mlops/api/``.

``setup(server_app)`` is what ``_load_jupyter_server_extension`` calls. It points
``JUPYTER_MLOPS_STORE`` at ``<server root>/.mlops`` when the variable is unset, so every
kernel this server starts and the sidebar share one store, then registers the routes of
:mod:`.routes`. Handlers stay thin: they parse the request, run one function of
:mod:`.queries` in a thread (SQLite never blocks the event loop) and write strict JSON.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import StoreOwnershipError
from ..store.locate import ENV_VAR, STORE_DIR, check_owned

__all__ = ["setup", "store_path_for"]

SCHEDULER_ENV = "JUPYTER_MLOPS_SCHEDULER"  # off: this server fires no triggers


def store_path_for(root_dir: str | os.PathLike[str]) -> Path:
    """The store the server uses: ``$JUPYTER_MLOPS_STORE``, set to ``<root>/.mlops`` if unset.

    A ``<root>/.mlops`` that another user owns or can write is not handed to the kernels
    as if it were named: they search for their store and refuse it themselves (R13).
    """
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser().resolve()
    default = Path(root_dir).expanduser().resolve() / STORE_DIR
    if default.is_dir():
        try:
            check_owned(default)
        except StoreOwnershipError:
            return default
    os.environ[ENV_VAR] = str(default)
    return default


def setup(server_app: Any) -> None:
    """Register the REST API on ``server_app`` and choose the shared store."""
    from .context import ServerContext
    from .routes import add_routes

    root_dir = Path(server_app.root_dir).expanduser().resolve()
    named = bool(os.environ.get(ENV_VAR))
    context = ServerContext(store_path_for(root_dir), root_dir, check_owner=not named)
    add_routes(server_app.web_app, context)
    _follow_renames(server_app, context)
    server_app.log.info("jupyter_mlops: store %s, API under %s", context.store_path,
                        "/jupyter-mlops/api/")
    if os.environ.get(SCHEDULER_ENV, "on").strip().lower() not in ("0", "off", "false", "no"):
        from ..monitoring.scheduler import Scheduler

        # The store's triggers fire from here: no daemon of our own to keep running.
        interval = float(os.environ.get(SCHEDULER_ENV + "_INTERVAL", "15"))
        context.scheduler = Scheduler(opener=context.store, interval=interval,
                                      log=server_app.log).start()


def _follow_renames(server_app: Any, context: Any) -> None:
    """Listen to the contents manager's renames: sessions recorded under the old path (or
    folder) take the new one, so their runs and Go to cell follow the notebook."""
    from .renames import CONTENTS_EVENTS, follow_rename, rename_paths

    event_logger = getattr(server_app, "event_logger", None)
    if event_logger is None:  # a jupyter_server without an event bus
        return

    async def on_contents(logger: Any, schema_id: str, data: dict[str, Any]) -> None:
        # Called by keyword (logger=, schema_id=, data=), as a task: it may not raise.
        paths = rename_paths(data, context.absolute)
        if paths is None:
            return
        try:
            # The store is opened (on first use) in the pool too, never on the event loop.
            moved = await context.run(lambda: follow_rename(context.store(), *paths))
            if moved:
                server_app.log.info("jupyter_mlops: %d session(s) follow %s -> %s", moved,
                                    data["source_path"], data["path"])
        except Exception as exc:  # noqa: BLE001 - a listener must never break a rename
            server_app.log.warning("jupyter_mlops: could not follow the rename of %s: %s",
                                   data.get("source_path"), exc)

    event_logger.add_listener(schema_id=CONTENTS_EVENTS, listener=on_contents)
