"""Time-travel replay: the files a model's runs read, put back as they were.

A replay runs in a scratch copy of the notebook's folder. With ``restore_data=True``, each
file the version's runs read (role ``file``) whose bytes were kept is written into that
copy as it was read when the file there is gone or differs, so a CSV changed since training
no longer stops the model being rebuilt. A file whose bytes were not kept is left as it is
today, and said so. Files outside the notebook's folder cannot be put back in the copy.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Restored:
    """Which inputs were written back, which were already as read, and which could not be."""

    restored: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    not_kept: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)

    def describe(self) -> str:
        parts = []
        if self.restored:
            parts.append(f"restored from kept data: {', '.join(self.restored)}")
        if self.not_kept:
            parts.append(f"not kept, used as they are today: {', '.join(self.not_kept)}")
        if self.outside:
            parts.append(f"outside the notebook's folder, not restored: "
                         f"{', '.join(self.outside)}")
        return "; ".join(parts)


def files_read(store: Any, run_ids: list[str]) -> list[tuple[str, str]]:
    """``(path, fingerprint)`` of the files the runs read, latest run's record first."""
    if not run_ids:
        return []
    marks = ",".join("?" * len(run_ids))
    rows = store.query(
        f"SELECT rd.name, rd.fingerprint FROM run_datasets rd JOIN runs r USING (run_id) "
        f"WHERE rd.role = 'file' AND rd.run_id IN ({marks}) ORDER BY r.start_time DESC",
        tuple(run_ids))
    seen: dict[str, str] = {}
    for name, fingerprint in rows:
        seen.setdefault(name, fingerprint)
    return sorted(seen.items())


def _sha256(path: Path) -> str | None:
    try:
        hasher = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(2**20), b""):
                hasher.update(block)
        return hasher.hexdigest()
    except OSError:
        return None


def restore_files(store: Any, run_ids: list[str], work: Path, source_cwd: str) -> Restored:
    """Write the kept bytes of the files the runs read into ``work`` where they differ."""
    from ..tracking.getdata import KeptRef, read_kept

    done = Restored()
    for name, fingerprint in files_read(store, run_ids):
        relative = name
        if os.path.isabs(name):
            inside = os.path.relpath(name, source_cwd)
            if inside.startswith(os.pardir):
                done.outside.append(name)
                continue
            relative = inside
        target = work / relative
        kept = store.query("SELECT k.fingerprint, c.sha256 FROM kept_data k JOIN kept_chunks c "
                           "USING (fingerprint) WHERE k.fingerprint = ? AND k.format = 'file'",
                           (fingerprint,))
        current = _sha256(target) if target.is_file() else None
        if current is not None and current[:32] == fingerprint:
            done.unchanged.append(name)
            continue
        if not kept:
            done.not_kept.append(name)
            continue
        data = read_kept(store, KeptRef(fingerprint, "file", name))
        if target.is_symlink() or target.exists():
            target.unlink()  # a link into the user's folder is replaced, never written through
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.restoring")
        tmp.write_bytes(data)
        os.replace(tmp, target)
        done.restored.append(name)
    return done
