"""The order in which cells really ran, and what that order means for the runs.

Two marks are derived, not stored, so they stay right as the history grows:

- ``out_of_order``: the cell sits above the cell run just before it in the notebook (its
  position comes from the saved notebook when the kernel knows its path, else from the
  order in which cells were first run): the user went back up.
- ``stale``: for an execution that made a run, the names it read that a later execution
  redefined, so re-running the notebook top to bottom would not reproduce the run.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..entities import CellExecution
from ..store import Store
from .capture import current_session_id, flush_capture
from .probes import MB

COLUMNS = ["seq", "session_id", "execution_count", "cell_id", "source", "defined", "used",
           "started", "duration_s", "status", "error", "run_id", "position", "out_of_order",
           "stale", "cpu_time_s", "peak_rss_mb", "peak_rss_added_mb"]


def _mb(value: int | None) -> float | None:
    return None if value is None else value / MB


def notebook_positions(path: str | None) -> dict[str, int]:
    """Cell id → index in a saved .ipynb file (empty when it cannot be read)."""
    if not path:
        return {}
    try:
        notebook = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {cell["id"]: i for i, cell in enumerate(notebook.get("cells", [])) if "id" in cell}


def analyse(cells: Sequence[CellExecution], positions: dict[str, int]) -> list[dict[str, Any]]:
    """One dict per execution with ``position``, ``out_of_order`` and ``stale`` added."""
    first_seen: dict[str, int] = {}
    rows: list[dict[str, Any]] = []
    previous: int | None = None
    for cell in cells:
        position = None
        if cell.cell_id:
            if positions:
                position = positions.get(cell.cell_id)
            else:
                position = first_seen.setdefault(cell.cell_id, len(first_seen))
        out_of_order = position is not None and previous is not None and position < previous
        if position is not None:
            previous = position
        rows.append({
            "seq": cell.id, "session_id": cell.session_id,
            "execution_count": cell.execution_count, "cell_id": cell.cell_id,
            "source": cell.source, "defined": cell.defined, "used": cell.used,
            "started": cell.started, "duration_s": cell.duration_s, "status": cell.status,
            "error": cell.error, "run_id": cell.run_id, "position": position,
            "out_of_order": out_of_order, "stale": None, "cpu_time_s": cell.cpu_time_s,
            "peak_rss_mb": _mb(cell.peak_rss),
            "peak_rss_added_mb": (None if cell.peak_rss is None or cell.start_rss is None
                                  else _mb(cell.peak_rss - cell.start_rss)),
        })
    for i, row in enumerate(rows):
        if row["run_id"] is None:
            continue
        inputs = set(row["used"])
        reasons = []
        for later in rows[i + 1:]:
            changed = [name for name in later["defined"] if name in inputs]
            if changed:
                label = later["execution_count"] if later["execution_count"] is not None else "?"
                reasons.append(f"{', '.join(changed)} redefined in [{label}]")
                inputs.difference_update(changed)
        row["stale"] = "; ".join(reasons) or None
    return rows


def history_rows(store: Store, session_id: str | None = None) -> list[dict[str, Any]]:
    """Executions of one session (default: this kernel's, else the latest), in order."""

    flush_capture()
    if session_id is None:
        session_id = current_session_id()
    if session_id is None:
        latest = store.query("SELECT session_id FROM sessions ORDER BY started DESC LIMIT 1")
        if not latest:
            return []
        session_id = latest[0][0]
    if session_id == "all":
        sessions = [s for (s,) in store.query("SELECT session_id FROM sessions ORDER BY started")]
    else:
        sessions = [session_id]
    rows: list[dict[str, Any]] = []
    for session in sessions:
        notebook = store.query("SELECT notebook FROM sessions WHERE session_id = ?", (session,))
        positions = notebook_positions(notebook[0][0] if notebook else None)
        rows.extend(analyse(store.cells("session_id = ?", (session,)), positions))
    return rows


def cell_history(session_id: str | None = None, *, store: Store | None = None):
    """Every captured cell execution of a session, in the order it ran, as a DataFrame.

    ``session_id=None`` means this kernel's session (else the most recent one); ``"all"``
    means every session. Columns: ``seq, session_id, execution_count, cell_id, source,
    defined, used, started, duration_s, status, error, run_id, position, out_of_order,
    stale, cpu_time_s, peak_rss_mb, peak_rss_added_mb`` (the process's CPU time while the
    cell ran, its highest resident memory, and how far that was above the memory at the
    cell's start: the memory the cell itself took, at its peak).
    """
    import pandas as pd

    from ..store.current import get_store

    rows = history_rows(store or get_store(), session_id)
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["started"] = pd.to_datetime(frame["started"], unit="s", utc=True)
    frame["execution_count"] = frame["execution_count"].astype("Int64")
    frame["position"] = frame["position"].astype("Int64")
    frame["out_of_order"] = frame["out_of_order"].astype(bool)
    from ..dashboards.frames import TextFrame
    return TextFrame(frame)
