"""Finding artifact files nothing refers to any more, and deleting them only when asked.

Nothing is deleted implicitly: chunks of data kept for a run stay as long as any row names
them. A file counts as referenced when its sha256 appears anywhere in the database (any
text column of any table: artifact rows, kept chunks, model versions, the JSON of
evaluations and drift reports), so a table added later cannot lose its files to a gc that
does not know it. Files younger than ``MIN_AGE_S`` are left alone: a writer stores a
chunk's file before the row naming it. Temporary files a killed write left behind count as
unreferenced once they are that old.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MIN_AGE_S = 3600.0
_SHA_RE = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Garbage:
    """The unreferenced files found (path, bytes), and whether they were deleted."""

    files: tuple[tuple[Path, int], ...]
    deleted: bool

    @property
    def size(self) -> int:
        return sum(size for _, size in self.files)

    def summary(self) -> str:
        verb = "deleted" if self.deleted else "unreferenced (run with --delete to delete them)"
        return f"{len(self.files)} files, {self.size:,} bytes {verb}."


def referenced(store: Any) -> set[str]:
    """Every sha256 that appears in the store's database."""
    found: set[str] = set()
    tables = [name for (name,) in store.query(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
    for table in tables:
        columns = [row[1] for row in store.query(f'PRAGMA table_info("{table}")')]
        for column in columns:
            for (value,) in store.query(
                    f'SELECT DISTINCT "{column}" FROM "{table}" WHERE typeof("{column}") = '
                    f"'text' AND length(\"{column}\") >= 64"):
                found.update(_SHA_RE.findall(value))
    return found


def collect_garbage(store: Any, *, delete: bool = False, now: float | None = None) -> Garbage:
    """The artifact files no row refers to; deleted only with ``delete=True``."""
    root = store.artifacts.root
    if not root.is_dir():
        return Garbage((), delete)
    known = referenced(store)
    cutoff = (time.time() if now is None else now) - MIN_AGE_S
    found = []
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.is_symlink():
            continue
        info = path.stat()
        if info.st_mtime > cutoff:
            continue
        if path.name.startswith(".incoming-") or (
                _SHA_RE.fullmatch(path.name) and path.name not in known):
            found.append((path, info.st_size))
    if delete:
        for path, _ in found:
            os.unlink(path)
    return Garbage(tuple(found), delete)
