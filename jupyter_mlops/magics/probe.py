"""The kernel's answer to the sidebar's question "which store do you write to?".

While the extension is loaded, a comm target ``jupyter_mlops`` answers a ``comm_open``
with one message, ``{"store", "why", "session_id"}``, and closes. The sidebar compares
that store with the one it reads and, when they differ, names the kernel's store instead
of suggesting ``%load_ext``; the session id lets the Timeline find the kernel's executions
whatever the notebook has been renamed to since. A kernel without the extension closes the
comm unanswered, which tells the sidebar just that.
"""

from __future__ import annotations

from typing import Any

TARGET = "jupyter_mlops"


def answer(session_id: str) -> dict[str, Any]:
    """What the comm sends: the store in use now (opens nothing) and this kernel's session."""
    from ..errors import StoreOwnershipError
    from ..store.current import store_location

    try:
        path, why = store_location()
    except StoreOwnershipError as exc:
        return {"store": None, "why": None, "error": str(exc), "session_id": session_id}
    return {"store": path, "why": why, "session_id": session_id}


class StoreProbe:
    """The comm target of one kernel, registered while the extension is loaded."""

    def __init__(self, shell: Any, session_id: str) -> None:
        self.session_id = session_id
        self.manager = getattr(getattr(shell, "kernel", None), "comm_manager", None)

    def register(self) -> None:
        if self.manager is not None:  # a terminal IPython has no frontend to answer
            self.manager.register_target(TARGET, self.on_open)

    def unregister(self) -> None:
        if self.manager is not None:
            self.manager.unregister_target(TARGET, self.on_open)

    def on_open(self, comm: Any, _msg: Any) -> None:
        comm.send(answer(self.session_id))
        comm.close()
