"""Which execution wrote a file, and where what it wrote came from.

A notebook re-runs the cell that pickles a model to ``models/lin_reg.bin``: which model does
the file hold? The capture records the files each execution writes with their sha256, so
the execution that wrote the bytes now on disk is known; each name it read is traced to the
execution that last bound or changed it before, with that execution's run, its data
fingerprints and the versions registered from it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from . import storage
from ..entities import CellExecution
from ..errors import NotFoundError
from ..store import Store
from .capture import flush_capture
from .effects import took_effect
from .writes import fingerprint_file


@dataclass(frozen=True)
class Source:
    """A name the writing execution read, and the execution that bound it."""

    name: str
    execution: CellExecution | None  # None: bound before the history starts
    run: dict[str, Any] | None = None  # run_id, name, status, datasets
    versions: list[str] = field(default_factory=list)  # registered from that execution


@dataclass(frozen=True)
class Provenance:
    """Where the file at ``path`` comes from; ``str()`` tells it in a few lines."""

    path: str
    sha256: str | None  # of the bytes on disk now (None: gone, or too large to hash)
    size: int | None
    writer: CellExecution
    written_sha256: str | None
    writes: list[CellExecution]  # every execution that wrote the path, in order
    inputs: list[Source]

    @property
    def changed_since(self) -> bool:
        """The file on disk is not what ``writer`` left (written since by something the
        history does not see, or removed)."""
        return self.sha256 is None or self.sha256 != self.written_sha256

    def __str__(self) -> str:
        shown = _shown(self.path)
        digest = f"sha256 {self.sha256[:12]}…, {self.size:,} bytes" if self.sha256 else \
            "not on disk now" if self.size is None else f"{self.size:,} bytes"
        lines = [f"{shown} ({digest}) was written by {_label(self.writer)}."]
        if self.changed_since:
            lines.append(f"  It changed since: {_label(self.writer)} left sha256 "
                         f"{(self.written_sha256 or '?')[:12]}….")
        others = [w for w in self.writes if w.id != self.writer.id]
        if others:
            lines.append("  Also written by " + ", ".join(_label(w) for w in others) + ".")
        if self.inputs:
            lines.append("  What it read:")
        for source in self.inputs:
            if source.execution is None:
                lines.append(f"    {source.name}: bound before the execution log starts")
                continue
            line = f"    {source.name}: bound by {_label(source.execution)}"
            if source.run is not None:
                run = source.run
                line += f", run {run['run_id'][:8]}"
                line += f" {run['name']!r}" if run["name"] else ""
                line += f" ({run['status']})"
                if run["datasets"]:
                    line += "; data " + ", ".join(
                        f"{n} ({role}) {fp[:12]}" for n, role, fp in run["datasets"])
            if source.versions:
                line += "; registered as " + ", ".join(source.versions)
            lines.append(line)
        return "\n".join(lines)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))


def _shown(path: str) -> str:
    relative = os.path.relpath(path)
    return relative if not relative.startswith("..") else path


def _label(execution: CellExecution) -> str:
    count = f"In[{execution.execution_count}]" if execution.execution_count else "In[?]"
    cell = f" (cell {execution.cell_id})" if execution.cell_id else ""
    status = {"ok": "", "error": ", which failed"}.get(execution.status,
                                                       f", {execution.status}")
    return f"{count}{cell}{status}"


def provenance(path: str | os.PathLike[str], *, store: Store | None = None) -> Provenance:
    """The execution that wrote the file at ``path`` and, for each name it read, the
    execution that bound it (its run, data and registered versions).

    Examples
    --------
    >>> print(provenance("models/lin_reg.bin"))          # doctest: +SKIP
    models/lin_reg.bin (sha256 3f2a…, 1,024 bytes) was written by In[16] (cell save).
      What it read:
        lr: bound by In[14] (cell lasso), run 5e6f7a8b 'lasso' (FINISHED); data X_train ...
    """
    from ..store.current import get_store

    flush_capture()
    store = store or get_store()
    absolute = os.path.abspath(os.fspath(path))
    rows = store.query("SELECT cell, sha256 FROM cell_files WHERE path = ? ORDER BY cell",
                       (absolute,))
    if not rows:
        raise NotFoundError(
            f"No captured cell wrote {os.fspath(path)!r} (as {absolute}). Files written from a "
            "notebook with %load_ext jupyter_mlops loaded are recorded, by the path they were "
            "opened with."
        )
    written = {cell: sha for cell, sha in rows}
    writes = storage.cells(store, f"id IN ({', '.join('?' * len(written))})", tuple(written))
    now = fingerprint_file(absolute)
    sha256, size = (now[1], now[2]) if now else (None, None)
    # The execution whose bytes are on disk; else the last one that wrote the path.
    matching = [w for w in writes if sha256 is not None and written[w.id] == sha256]
    writer = (matching or writes)[-1]
    return Provenance(absolute, sha256, size, writer, written[writer.id], writes,
                      _sources(store, writer))


def _sources(store: Store, writer: CellExecution) -> list[Source]:
    history = storage.cells(store, "session_id = ? AND id < ?", (writer.session_id, writer.id))
    sources = []
    for name in writer.used:
        binder = next((e for e in reversed(history) if took_effect(e)
                       and (name in e.defined or name in e.modified)), None)
        if binder is None:
            sources.append(Source(name, None))
            continue
        run = None
        if binder.run_id:
            found = store.query("SELECT name, status FROM runs WHERE run_id = ?",
                                (binder.run_id,))
            datasets = store.query("SELECT name, role, fingerprint FROM run_datasets "
                                   "WHERE run_id = ? ORDER BY role, name", (binder.run_id,))
            if found:
                run = {"run_id": binder.run_id, "name": found[0][0], "status": found[0][1],
                       "datasets": [tuple(d) for d in datasets]}
        versions = [f"{n}/{v}" for n, v in store.query(
            "SELECT name, version FROM model_versions WHERE cell = ? ORDER BY name, version",
            (binder.id,))]
        sources.append(Source(name, binder, run, versions))
    return sources
