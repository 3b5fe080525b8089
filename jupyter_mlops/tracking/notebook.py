"""The saved notebook a kernel runs: where each cell sits, and which cell a source is.

JupyterLab sends each cell's id with its code; papermill, nbconvert and plain nbclient send
none. When the kernel knows its notebook's path (``JPY_SESSION_NAME``, set by the Jupyter
server, or ``JUPYTER_MLOPS_NOTEBOOK``, set by ``run_notebook`` or by hand), the id of a cell
run without one is recovered by finding its source in the saved file, so the execution log
still places every execution and marks a cell run again out of order.

When nobody names the notebook (papermill, ``jupyter nbconvert --execute``), it is looked
for: the ``.ipynb`` files named on the command line of the process that started the kernel
(``papermill in.ipynb out.ipynb``), then those in the kernel's working folder (papermill's
``cwd=``) that name jupyter_mlops in a code cell (a notebook that merely sits there is not
taken for the one running), the most recently written first, so papermill's output
notebook, saved before the kernel starts, also places the cell of injected parameters.
The first file holding a cell's source becomes the notebook.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


MAX_CANDIDATES = 50
MAX_NOTEBOOK_BYTES = 64 * 2**20


def launcher_notebooks(pid: int | None = None) -> list[Path]:
    """The existing ``.ipynb`` files named on the command line of process ``pid`` (the one
    that started this kernel: ``$JPY_PARENT_PID``, else the parent), Linux only."""
    if pid is None:
        try:
            pid = int(os.environ.get("JPY_PARENT_PID") or os.getppid())
        except ValueError:
            pid = os.getppid()
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return []
    found = []
    for arg in argv:
        text = os.fsdecode(arg)
        if text.endswith(".ipynb"):
            path = Path(cwd, text)
            if path.is_file():
                found.append(path)
    return found[:MAX_CANDIDATES]


def folder_notebooks(folder: str | os.PathLike[str] = ".") -> list[Path]:
    """The ``.ipynb`` files in ``folder`` (not below it; hidden ones left out)."""
    try:
        with os.scandir(folder) as entries:
            found = [Path(e.path).resolve() for e in entries
                     if e.name.endswith(".ipynb") and not e.name.startswith(".")
                     and e.is_file()]
    except OSError:
        return []
    return sorted(found)[:MAX_CANDIDATES]


def _newest_first(paths: list[Path]) -> list[Path]:
    def mtime(path: Path) -> int:
        try:
            return path.stat().st_mtime_ns
        except OSError:
            return 0
    return sorted(dict.fromkeys(paths), key=mtime, reverse=True)


class SavedNotebook:
    """An .ipynb file, read again whenever it changes on disk; with no path, the first of
    the candidate files (see the module's docstring) that holds a cell's source."""

    def __init__(self, path: str | os.PathLike[str] | None, *,
                 search: bool = False) -> None:
        self.path = Path(path) if path else None
        self._stamp: tuple[int, int] | None = None
        self._cells: list[dict] = []
        self._last: int | None = None  # position of the cell matched last
        self._search = search and self.path is None
        self._launcher: list[Path] | None = None
        self._candidates: dict[Path, SavedNotebook] = {}

    def _find(self, source: str) -> str | None:
        """Adopt the first candidate notebook holding ``source``; the id it gives."""
        if self._launcher is None:
            self._launcher = launcher_notebooks()
        paths = _newest_first(self._launcher) + [
            p for p in _newest_first(folder_notebooks()) if p not in self._launcher]
        for path in paths[:MAX_CANDIDATES]:
            try:
                if path.stat().st_size > MAX_NOTEBOOK_BYTES:
                    continue
            except OSError:
                continue
            candidate = self._candidates.setdefault(path, SavedNotebook(path))
            if path not in self._launcher and not candidate.loads_us():
                continue  # a notebook that merely sits in the folder
            cell_id = candidate.cell_id_for(source)
            if cell_id is not None:
                self.__dict__.update(path=candidate.path, _stamp=candidate._stamp,
                                     _cells=candidate._cells, _last=candidate._last,
                                     _search=False, _candidates={})
                return cell_id
        return None

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

    def loads_us(self) -> bool:
        """Whether a code cell of the notebook names jupyter_mlops (``%load_ext``)."""
        return any(isinstance(cell, dict) and cell.get("cell_type") == "code"
                   and "jupyter_mlops" in _source(cell) for cell in self.cells())

    def positions(self) -> dict[str, int]:
        """Cell id → index in the notebook."""
        return {cell["id"]: i for i, cell in enumerate(self.cells())
                if isinstance(cell, dict) and "id" in cell}

    def cell_id_for(self, source: str) -> str | None:
        """The id of the code cell whose saved source is ``source``.

        Of several cells with that source, the first one below the cell matched last (a
        headless run goes down the notebook), else the first one.
        """
        if self.path is None and self._search:
            return self._find(source)
        wanted = source.rstrip()
        found = [i for i, cell in enumerate(self.cells())
                 if isinstance(cell, dict) and cell.get("cell_type") == "code"
                 and "id" in cell and _source(cell).rstrip() == wanted]
        if not found:
            return None
        below = [i for i in found if self._last is None or i > self._last]
        self._last = (below or found)[0]
        return self.cells()[self._last]["id"]
