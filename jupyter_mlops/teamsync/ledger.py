"""The local record of what was pushed to which tracking server (the ``synced`` table).

One row per thing and server: ``kind`` is ``experiment``, ``run``, ``version`` or ``alias``;
``local`` names it here (an experiment name, a run id, ``name/3``, ``name@alias``);
``remote_id`` is its id there; ``state`` what was sent, so the next sync compares and sends
only the difference. A row is written only after the server confirmed what it records,
except ``creating``: written before a remote object is made, so a sync killed between the
server's answer and this record looks the object up instead of making it twice.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from ..store.sqlite import Store

CREATING = "creating"


def entries(store: Store, remote: str, kind: str) -> dict[str, tuple[str | None, str]]:
    """``{local: (remote_id, state)}`` of one kind for one server."""
    return {local: (remote_id, state) for local, remote_id, state in store.query(
        "SELECT local, remote_id, state FROM synced WHERE remote = ? AND kind = ?",
        (remote, kind))}


def record(store: Store, remote: str, kind: str,
           rows: Iterable[tuple[str, str | None, str]]) -> None:
    """Record ``(local, remote_id, state)`` rows of one kind, in one transaction."""
    now = time.time()
    values = [(remote, kind, local, remote_id, state, now) for local, remote_id, state in rows]
    if not values:
        return
    with store.write() as conn:
        conn.executemany(
            "INSERT INTO synced (remote, kind, local, remote_id, state, updated) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (remote, kind, local) DO UPDATE SET "
            "remote_id = excluded.remote_id, state = excluded.state, updated = excluded.updated",
            values)


def remotes(store: Store) -> list[str]:
    """The servers this store has pushed to."""
    return [r for (r,) in store.query("SELECT DISTINCT remote FROM synced ORDER BY remote")]
