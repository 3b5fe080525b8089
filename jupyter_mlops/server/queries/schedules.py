"""The store's triggers for the Schedules tab: what fires them, when next, and how the last
firing went.

A store of an older schema has no triggers table: then there are none. A trigger's own
fields are shown as stored (the sidebar renders them as text); whether this user signed it
is said beside them, as ``list_schedules`` says it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ...errors import ValidationError
from ...monitoring.triggers import every_trigger, next_due
from ...store import Store
from .values import has_table

_FIRING = ("started", "finished", "status", "reason", "run_id", "version", "promoted", "message")


def list_schedules(store: Store | None) -> dict[str, Any]:
    """Every trigger, by name, with its next due time and its last firing."""
    now = time.time()
    if store is None or not has_table(store, "triggers"):
        return {"schedules": [], "now": now}
    out = []
    for trigger in every_trigger(store):
        try:
            due = next_due(trigger)
        except ValidationError:  # a cron expression this machine cannot read any more
            due = None
        last = store.query(f"SELECT {', '.join(_FIRING)} FROM firings WHERE trigger = ? "
                           "ORDER BY started DESC LIMIT 1", (trigger.name,))
        firing = dict(zip(_FIRING, last[0])) if last else None
        if firing is not None:
            firing["promoted"] = bool(firing["promoted"])
        action = Path(trigger.notebook)
        out.append({
            "name": trigger.name, "kind": trigger.kind, "spec": trigger.spec,
            "action": "pipeline" if action.suffix != ".ipynb" else "notebook",
            "target": action.name, "model": trigger.model, "enabled": trigger.enabled,
            "trusted": trigger.untrusted() is None, "next_due": due,
            "last_checked": trigger.last_checked, "last_firing": firing,
        })
    return {"schedules": out, "now": now}
