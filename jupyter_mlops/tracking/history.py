"""The order in which cells really ran, and what that order means for the runs.

Two marks are derived, not stored, so they stay right as the history grows:

- ``out_of_order``: the cell sits above the cell run just before it in the notebook (its
  position comes from the saved notebook when the kernel knows its path, else from the
  order in which cells were first run): the user went back up.
- ``stale``: for an execution that made a run, the names it read that a later execution
  redefined, so re-running the notebook top to bottom would not reproduce the run (binding a
  name again to the value it held, as an import cell run again does, redefines nothing).
- ``possibly_stale``: the names it read whose object a later execution may have changed in
  place (a method call that can change it, an item or attribute store): weaker, and shown
  apart. ``stale_inputs`` lists both kinds as data: name, change, execution.

``files`` lists the files each execution wrote (see ``provenance``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import storage
from ..entities import CellExecution
from ..store import Store
from .capture import current_session_id, flush_capture
from .notebook import SavedNotebook
from .probes import MB

COLUMNS = ["seq", "session_id", "execution_count", "cell_id", "source", "defined", "used",
           "unchanged", "modified", "started", "duration_s", "status", "error", "run_id",
           "position", "out_of_order", "stale", "possibly_stale", "stale_inputs", "files",
           "cpu_time_s", "peak_rss_mb", "peak_rss_added_mb"]
REDEFINED, MODIFIED = "redefined", "possibly modified"


def _mb(value: int | None) -> float | None:
    return None if value is None else value / MB


def notebook_positions(path: str | None) -> dict[str, int]:
    """Cell id → index in a saved .ipynb file (empty when it cannot be read)."""
    return SavedNotebook(path).positions()


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
            "unchanged": cell.unchanged, "modified": cell.modified, "started": cell.started,
            "duration_s": cell.duration_s,
            "status": cell.status, "error": cell.error, "run_id": cell.run_id,
            "position": position, "out_of_order": out_of_order, "stale": None,
            "possibly_stale": None, "stale_inputs": [], "files": [],
            "cpu_time_s": cell.cpu_time_s, "peak_rss_mb": _mb(cell.peak_rss),
            "peak_rss_added_mb": (None if cell.peak_rss is None or cell.start_rss is None
                                  else _mb(cell.peak_rss - cell.start_rss)),
        })
    for i, row in enumerate(rows):
        if row["run_id"] is not None:
            _mark_stale(row, rows[i + 1:])
    return rows


def _mark_stale(row: dict[str, Any], later_rows: list[dict[str, Any]]) -> None:
    """What later executions did to the names ``row`` read: the first redefinition of
    each, and a possible change in place before it."""
    unchanged = set(row["used"])  # neither redefined nor possibly modified yet
    not_redefined = set(unchanged)
    found: list[dict[str, Any]] = []
    for later in later_rows:
        redefined = [n for n in later["defined"]
                     if n in not_redefined and n not in later["unchanged"]]
        modified = [n for n in later["modified"] if n in unchanged and n not in redefined]
        for names, change in ((redefined, REDEFINED), (modified, MODIFIED)):
            found.extend({"name": n, "change": change, "seq": later["seq"],
                          "execution_count": later["execution_count"]} for n in names)
        not_redefined.difference_update(redefined)
        unchanged.difference_update(redefined + modified)
    for change, key in ((REDEFINED, "stale"), (MODIFIED, "possibly_stale")):
        reasons: dict[tuple[int, Any], list[str]] = {}
        for item in found:
            if item["change"] == change:
                reasons.setdefault((item["seq"], item["execution_count"]), []).append(item["name"])
        row[key] = "; ".join(
            f"{', '.join(names)} {change} in [{count if count is not None else '?'}]"
            for (_, count), names in reasons.items()) or None
    row["stale_inputs"] = found


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
        found = analyse(storage.cells(store, "session_id = ?", (session,)), positions)
        files: dict[int, list[str]] = {}
        for cell, path in store.query(
                "SELECT f.cell, f.path FROM cell_files f JOIN cells c ON c.id = f.cell "
                "WHERE c.session_id = ? ORDER BY f.cell, f.path", (session,)):
            files.setdefault(cell, []).append(path)
        for row in found:
            row["files"] = files.get(row["seq"], [])
        rows.extend(found)
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
    # Text that may be missing stays None: pandas would make it a string column whose
    # missing values are NaN, which is truthy (``stale or "-"`` printed "nan").
    for column in ("cell_id", "error", "run_id", "stale", "possibly_stale"):
        frame[column] = pd.Series([v if isinstance(v, str) else None for v in frame[column]],
                                  index=frame.index, dtype=object)
    from ..dashboards.frames import TextFrame
    return TextFrame(frame)
