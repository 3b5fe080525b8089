"""Write the old-schema stores that tests/test_migrations.py upgrades.

Each fixture is a store as an older schema left it: the first N migrations applied by
plain SQL, then rows written the way that version wrote them. Run from the repo root:
``python scripts/make_fixture_store.py``; the files are committed.
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jupyter_mlops.store.schema import MIGRATIONS

OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "stores"


def make(version: int) -> Path:
    path = OUT / f"v{version}.sqlite"
    path.unlink(missing_ok=True)
    conn = sqlite3.connect(path)
    for migration in MIGRATIONS[:version]:
        for statement in migration.sql.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute("CREATE TABLE IF NOT EXISTS _migrations (version INTEGER PRIMARY KEY, "
                     "name TEXT NOT NULL, applied REAL NOT NULL)")
        conn.execute("INSERT INTO _migrations VALUES (?, ?, ?)",
                     (migration.version, migration.name, 1_700_000_000.0))
    conn.execute(f"PRAGMA user_version = {version}")
    conn.execute("INSERT INTO experiments VALUES (1, 'default', 1700000000.0)")
    for i in range(20):
        run_id = f"{i:032x}"
        conn.execute(
            "INSERT INTO runs (run_id, experiment_id, name, status, start_time, end_time, "
            "heartbeat, pid, host, proc_start) VALUES (?, 1, ?, 'FINISHED', ?, ?, ?, 1, "
            "'old-host', NULL)",
            (run_id, f"run {i}", 1_700_000_000.0 + i, 1_700_000_001.0 + i, 1_700_000_001.0 + i),
        )
        conn.execute("INSERT INTO params VALUES (?, 'C', ?)", (run_id, str(i / 10)))
        for step in range(5):
            value = None if (i, step) == (3, 4) else i + step / 10
            conn.execute("INSERT INTO metrics (run_id, key, step, value, is_nan, timestamp) "
                         "VALUES (?, 'loss', ?, ?, ?, ?)",
                         (run_id, step, value, int(value is None), 1_700_000_000.0 + step))
        conn.execute("INSERT INTO tags VALUES (?, 'fixture', ?)", (run_id, f"v{version}"))
    conn.commit()
    conn.execute("VACUUM")
    conn.close()
    return path


if __name__ == "__main__":
    for version in (1, 3):
        print(make(version))
