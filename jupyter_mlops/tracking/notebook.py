"""The saved notebook a kernel runs: where each cell sits, and which cell a source is.

JupyterLab sends each cell's id with its code; papermill, nbconvert and plain nbclient send
none. When the kernel knows its notebook's path (``JPY_SESSION_NAME``, set by the Jupyter
server, or ``JUPYTER_MLOPS_NOTEBOOK``, set by ``run_notebook`` or by hand), the id of a cell
run without one is recovered by finding its source in the saved file, so the execution log
still places every execution and marks a cell run again out of order.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


class SavedNotebook:
    """An .ipynb file, read again whenever it changes on disk."""

    def __init__(self, path: str | os.PathLike[str] | None) -> None:
        self.path = Path(path) if path else None
        self._stamp: tuple[int, int] | None = None
        self._cells: list[dict] = []
        self._last: int | None = None  # position of the cell matched last

    def cells(self) -> list[dict]:
        """The notebook's cells (empty when it cannot be read)."""
        if self.path is None:
            return []
        try:
            info = self.path.stat()
            stamp = (info.st_mtime_ns, info.st_size)
            if stamp != self._stamp:
                self._cells = json.loads(self.path.read_text(encoding="utf-8")).get("cells", [])
                self._stamp = stamp
        except (OSError, ValueError, AttributeError):
            self._cells, self._stamp = [], None
        return self._cells

    def positions(self) -> dict[str, int]:
        """Cell id → index in the notebook."""
        return {cell["id"]: i for i, cell in enumerate(self.cells())
                if isinstance(cell, dict) and "id" in cell}

    def cell_id_for(self, source: str) -> str | None:
        """The id of the code cell whose saved source is ``source``.

        Of several cells with that source, the first one below the cell matched last (a
        headless run goes down the notebook), else the first one.
        """
        wanted = source.rstrip()
        found = [i for i, cell in enumerate(self.cells())
                 if isinstance(cell, dict) and cell.get("cell_type") == "code"
                 and "id" in cell and _source(cell).rstrip() == wanted]
        if not found:
            return None
        below = [i for i in found if self._last is None or i > self._last]
        self._last = (below or found)[0]
        return self.cells()[self._last]["id"]
