"""Kernel sessions and the executions of one session, in the order they ran."""

from __future__ import annotations

from typing import Any

from ...errors import NotFoundError, ValidationError, shorten
from ...store import Store
from ...store.process import hostname, is_alive, process_start
from ...validation import RUN_ID_RE
from .runs import MAX_PAGE
from .values import Relative

SESSION_ID_RE = RUN_ID_RE  # sessions are uuid4 hex, as runs are


def list_sessions(
    store: Store | None,
    relative: Relative,
    *,
    notebook: str | None = None,
    pid: int | None = None,
    offset: int = 0,
    limit: int = 50,
) -> dict[str, Any]:
    """Kernel sessions, newest first; ``notebook`` (absolute path) and ``pid`` narrow it.

    A session whose pid matches the kernel's process comes first: that is the kernel the
    notebook is attached to now, the others are earlier kernels of the same notebook.
    """
    if not 1 <= limit <= MAX_PAGE or offset < 0:
        raise ValidationError(f"limit must be from 1 to {MAX_PAGE} and offset ≥ 0.")
    page: dict[str, Any] = {"sessions": [], "total": 0, "offset": offset, "limit": limit}
    if store is None:
        return page
    where, params = "1", []
    process: list[Any] = [pid, hostname(), process_start(pid)] if pid is not None else []
    mine = "(s.pid = ? AND s.host = ? AND s.proc_start IS ?)"
    if notebook is not None:
        where, params = "s.notebook = ?", [notebook]
        if pid is not None:
            # The kernel's own sessions also when they recorded another path: the notebook
            # was renamed after its kernel started (Untitled.ipynb, saved under a name).
            where, params = f"({where} OR {mine})", [notebook, *process]
    order = "s.started DESC, s.rowid DESC"
    order_params: list[Any] = []
    if pid is not None:
        order = f"{mine} DESC, " + order
        order_params = process
    page["total"] = store.query(f"SELECT count(*) FROM sessions s WHERE {where}", params)[0][0]
    rows = store.query(
        "SELECT s.session_id, s.started, s.notebook, s.python, s.pid, s.host, s.proc_start, "
        "(SELECT count(*) FROM cells c WHERE c.session_id = s.session_id), "
        "(SELECT max(c.started) FROM cells c WHERE c.session_id = s.session_id) "
        f"FROM sessions s WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?",
        [*params, *order_params, limit, offset],
    )
    kernel = tuple(process) or None
    for session_id, started, path, python, spid, host, start, cells, last in rows:
        page["sessions"].append({
            "session_id": session_id, "started": started,
            "notebook_path": relative(path),
            "notebook_name": path.replace("\\", "/").rsplit("/", 1)[-1] if path else None,
            "python": python, "cells": cells, "last_started": last,
            "alive": is_alive(spid, host, start),
            "current": kernel == (spid, host, start),
        })
    return page


def session_cells(store: Store | None, session_id: str, relative: Relative, *,
                  limit: int = 500) -> dict[str, Any]:
    """The session's executions in the order they ran (the last ``limit`` of them), with
    the out-of-order and stale marks of :func:`jupyter_mlops.tracking.history.analyse`."""
    from ...tracking.history import history_rows

    if not SESSION_ID_RE.match(session_id or ""):
        raise ValidationError(
            f"A session id is 32 lowercase hex characters; got {shorten(session_id)}."
        )
    if not 1 <= limit <= 5000:
        raise ValidationError("limit must be a whole number from 1 to 5000.")
    found = [] if store is None else store.query(
        "SELECT notebook FROM sessions WHERE session_id = ?", (session_id,))
    if not found:
        raise NotFoundError(f"No session {session_id!r} in the store.")
    rows = history_rows(store, session_id)
    cells = []
    for row in rows[-limit:]:
        cells.append({
            "seq": row["seq"], "execution_count": row["execution_count"],
            "cell_id": row["cell_id"], "source": row["source"], "started": row["started"],
            "duration_s": row["duration_s"], "status": row["status"], "error": row["error"],
            "run_id": row["run_id"], "position": row["position"],
            "out_of_order": bool(row["out_of_order"]), "stale": row["stale"],
            "possibly_stale": row["possibly_stale"], "stale_inputs": row["stale_inputs"],
            # Files outside the server root are not named to the browser.
            "files": [shown for shown in map(relative, row["files"]) if shown],
        })
    return {"session_id": session_id, "notebook_path": relative(found[0][0]),
            "total": len(rows), "cells": cells}
