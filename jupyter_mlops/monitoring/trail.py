"""The trail of a monitor: each step (drift, metrics, alert, retrain, promote) written as it
happens, so an interrupted retrain still leaves its record. Shared by ``monitor`` and
``retrain`` so neither imports the other.

Details, alerts and thresholds are JSON through the one codec (``store.jsoncodec``); rows
written before it hold NaN and infinities as null, which read back as None.
"""

from __future__ import annotations

import time
from typing import Any

from ..errors import ValidationError, shorten
from ..store import Store
from ..store.jsoncodec import dumps


class Trail:
    """Appends the steps of one monitor to the store as they happen."""

    def __init__(self, store: Store, monitor_id: str | None, steps: list[dict[str, Any]]):
        self.store = store
        self.monitor_id = monitor_id
        self.steps = steps

    def __call__(self, step: str, status: str, message: str,
                 details: dict[str, Any] | None = None) -> None:
        entry = {"step": step, "status": status, "message": message, "details": details or {},
                 "created": time.time()}
        self.steps.append(entry)
        if self.monitor_id is None:
            return
        with self.store.write() as conn:
            seq = conn.execute("SELECT coalesce(max(seq), 0) + 1 FROM monitor_steps WHERE "
                               "monitor_id = ?", (self.monitor_id,)).fetchone()[0]
            conn.execute(
                "INSERT INTO monitor_steps (monitor_id, seq, created, step, status, message, "
                "details) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (self.monitor_id, seq, entry["created"], step, status, message,
                 dumps(details) if details else None))


def known_metric(metric: str, option: str) -> str:
    from ..evaluation.directions import HIGHER_IS_BETTER

    if metric not in HIGHER_IS_BETTER:
        raise ValidationError(
            f"{option} names an unknown metric {shorten(metric)}; choose one of "
            f"{', '.join(HIGHER_IS_BETTER)}."
        )
    return metric
