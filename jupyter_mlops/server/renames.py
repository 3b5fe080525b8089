"""Notebook paths that follow Jupyter's renames.

A kernel records the notebook it runs once, from ``JPY_SESSION_NAME`` as the server set
it when the kernel started: ``Untitled.ipynb`` for every new notebook, which JupyterLab
renames on its first save. The server knows better, in two ways:

- its contents manager announces each rename on the event bus
  (``contents_service`` ``rename``): every session recorded under the old path, or under a
  renamed folder, takes the new one, earlier kernels' included;
- its session manager knows which notebook each running kernel serves now: the sessions
  recorded by that kernel's process (same pid, same start time, this host) take that path.

The runs of a session name their notebook through it, so they follow too.
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

from ..store import Store
from ..store.process import hostname, is_alive

CONTENTS_EVENTS = "https://events.jupyter.org/jupyter_server/contents_service/v1"


class LiveKernel(NamedTuple):
    """A kernel this server runs, its process and the notebook it serves now."""

    kernel_id: str
    pid: int
    start: str | None
    notebook: str | None  # absolute path; None for a console or a kernel without a file


def follow_rename(store: Store | None, old: str, new: str) -> int:
    """Sessions recorded under ``old`` (a file, or a folder holding notebooks) move to
    ``new``; both absolute. Returns how many sessions changed."""
    old, new = os.path.normpath(old), os.path.normpath(new)
    if store is None or old == new or store.read_only:
        return 0
    prefix = old.rstrip(os.sep) + os.sep
    with store.write() as conn:
        moved = conn.execute("UPDATE sessions SET notebook = ? WHERE notebook = ?",
                             (new, old)).rowcount
        # The paths under the folder, as a range of the index on notebook: from "old/" up
        # to "old0" ('0' follows '/'); not LIKE, as '_' and '%' are ordinary in file names.
        moved += conn.execute(
            "UPDATE sessions SET notebook = ? || substr(notebook, ?) "
            "WHERE notebook >= ? AND notebook < ?",
            (new.rstrip(os.sep) + os.sep, len(prefix) + 1, prefix,
             prefix[:-1] + chr(ord(prefix[-1]) + 1))).rowcount
    return moved


def follow_kernels(store: Store | None, kernels: list[LiveKernel]) -> int:
    """The sessions of each live kernel's process take the notebook it serves now.
    Reads one row set; writes only when a path differs. Returns how many changed."""
    if store is None:
        return 0
    host = hostname()
    changes = []
    for kernel in kernels:
        if kernel.notebook is None:
            continue
        rows = store.query(
            "SELECT session_id, notebook, proc_start FROM sessions WHERE pid = ? AND host = ?",
            (kernel.pid, host))
        for session_id, notebook, start in rows:
            if notebook != kernel.notebook and start == kernel.start \
                    and is_alive(kernel.pid, host, start):
                changes.append((kernel.notebook, session_id))
    if changes and not store.read_only:
        with store.write() as conn:
            conn.executemany("UPDATE sessions SET notebook = ? WHERE session_id = ?", changes)
    return len(changes)


def kernel_of_session(store: Store | None, session_id: str | None,
                      kernels: list[LiveKernel]) -> LiveKernel | None:
    """The live kernel whose process recorded ``session_id``, if this server runs it."""
    if store is None or not session_id:
        return None
    rows = store.query("SELECT pid, host, proc_start FROM sessions WHERE session_id = ?",
                       (session_id,))
    if not rows:
        return None
    pid, host, start = rows[0]
    if host != hostname():
        return None
    for kernel in kernels:
        if kernel.pid == pid and kernel.start == start:
            return kernel
    return None


def rename_paths(data: dict[str, Any], absolute: Any) -> tuple[str, str] | None:
    """``(old, new)`` absolute paths of a contents ``rename`` event, else None."""
    if data.get("action") != "rename" or not data.get("source_path") or not data.get("path"):
        return None
    return absolute(data["source_path"]), absolute(data["path"])
