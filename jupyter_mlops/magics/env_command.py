"""``%mlops env [RUN]``: what a session ran on (Python, platform, distributions, git)."""

from __future__ import annotations

from typing import Any
from ..tracking import storage


def run(shell, args) -> Any:
    from ..errors import NotFoundError
    from ..store.current import get_store
    from ..tracking.capture import current_session_id, flush_capture
    from ..tracking.environment import session_environment

    flush_capture(timeout=10.0)  # the session's record is written on the capture thread
    store = get_store()
    if args.run is not None:
        run_id = storage.resolve_run_id(store, args.run)
        session = store.query("SELECT session_id FROM runs WHERE run_id = ?", (run_id,))[0][0]
        where = f"run {run_id[:8]}"
    else:
        session = args.session or current_session_id()
        where = f"session {session}" if session else "this kernel"
    environment = session_environment(store, session)
    if environment is None or environment.sha256 is None:
        raise NotFoundError(
            f"No environment is recorded for {where}: it was made outside a kernel with "
            "%load_ext jupyter_mlops, or by an older jupyter_mlops.")
    return environment
