import hashlib
import multiprocessing
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap

import pytest

import jupyter_mlops as mlops
from jupyter_mlops.store import SCHEMA_VERSION, Store, default_store_path
from jupyter_mlops.store.schema import MIGRATIONS
from jupyter_mlops.store import schema as schema_module
from jupyter_mlops.tracking import storage

FIXTURES = os.path.join(os.path.dirname(__file__), "data", "stores")


def _copy_fixture(version, tmp_path):
    folder = tmp_path / f"store-v{version}"
    folder.mkdir()
    shutil.copy(os.path.join(FIXTURES, f"v{version}.sqlite"), folder / "mlops.db")
    return folder


def _content(db_path):
    conn = sqlite3.connect(db_path)
    rows = {
        "runs": conn.execute("SELECT run_id, name, status, start_time, end_time FROM runs "
                             "ORDER BY run_id").fetchall(),
        "params": conn.execute("SELECT * FROM params ORDER BY run_id, key").fetchall(),
        "metrics": conn.execute("SELECT run_id, key, step, value, is_nan FROM metrics "
                                "ORDER BY run_id, key, step").fetchall(),
        "tags": conn.execute("SELECT * FROM tags ORDER BY run_id, key").fetchall(),
    }
    conn.close()
    return rows


def test_new_store_is_wal_and_current(tmp_path):
    store = Store(tmp_path / "s")
    assert store.schema_version == SCHEMA_VERSION
    assert store.query("PRAGMA journal_mode")[0][0] == "wal"
    applied = store.query("SELECT version FROM _migrations ORDER BY version")
    assert [v for (v,) in applied] == [m.version for m in MIGRATIONS]
    store.close()


@pytest.mark.parametrize("version", [1, 3])
def test_old_store_upgrades_without_losing_a_row(tmp_path, version):
    folder = _copy_fixture(version, tmp_path)
    before = _content(folder / "mlops.db")
    store = Store(folder)
    assert store.schema_version == SCHEMA_VERSION
    assert _content(folder / "mlops.db") == before
    assert len(before["runs"]) == 20 and len(before["metrics"]) == 100
    # Migration 4 derives latest_metrics from the old rows, NaN flag included.
    run = storage.get_run(store, f"{3:032x}")
    assert run.metrics["loss"] != run.metrics["loss"]  # NaN at the last step
    assert storage.get_run(store, f"{5:032x}").metrics == {"loss": 5.4}
    assert store.query("PRAGMA integrity_check")[0][0] == "ok"
    steps = [v for (v,) in store.query("SELECT version FROM _migrations ORDER BY version")]
    assert steps == [m.version for m in MIGRATIONS]
    store.close()


def test_failed_migration_leaves_previous_version(tmp_path, monkeypatch):
    folder = _copy_fixture(1, tmp_path)
    broken = schema_module.Migration(2, "broken", "CREATE TABLE half_done (x);\nSELECT * FROM nowhere")
    monkeypatch.setattr("jupyter_mlops.store.sqlite.MIGRATIONS",
                        (schema_module.MIGRATIONS[0], broken, *schema_module.MIGRATIONS[2:]))
    with pytest.raises(mlops.StoreError):
        Store(folder)
    conn = sqlite3.connect(folder / "mlops.db")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'half_done'"
                        ).fetchone()[0] == 0
    conn.close()
    monkeypatch.undo()
    assert Store(folder).schema_version == SCHEMA_VERSION


def _open_store(path):
    Store(path).close()
    return True


def test_simultaneous_openers_apply_each_migration_once(tmp_path):
    folder = _copy_fixture(1, tmp_path)
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        assert all(pool.map(_open_store, [folder] * 8))
    conn = sqlite3.connect(folder / "mlops.db")
    versions = [v for (v,) in conn.execute("SELECT version FROM _migrations ORDER BY version")]
    assert versions == [m.version for m in MIGRATIONS]
    conn.close()


def test_newer_schema_is_refused_and_file_untouched(tmp_path):
    folder = tmp_path / "future"
    writer = Store(folder)
    storage.create_run(writer, "a" * 32, "Default", "kept")
    writer.close()
    conn = sqlite3.connect(folder / "mlops.db")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 3}")
    conn.close()
    digest = hashlib.sha256((folder / "mlops.db").read_bytes()).hexdigest()
    with pytest.raises(mlops.SchemaVersionError, match="newer than this jupyter_mlops"):
        Store(folder)
    assert hashlib.sha256((folder / "mlops.db").read_bytes()).hexdigest() == digest
    reader = Store(folder, read_only=True)  # listing still works
    assert reader.query("SELECT name FROM runs") == [("kept",)]
    with pytest.raises(mlops.StoreReadOnlyError):
        storage.create_run(reader, "b" * 32, "Default", "new")
    reader.close()
    assert hashlib.sha256((folder / "mlops.db").read_bytes()).hexdigest() == digest


@pytest.mark.parametrize("content", [os.urandom(4096), b"SQLite format 3\x00" + b"\x00" * 10])
def test_corrupt_file_is_reported_and_left_alone(tmp_path, content):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "mlops.db").write_bytes(content)
    with pytest.raises(mlops.StoreCorruptError, match="left untouched"):
        Store(folder)
    assert (folder / "mlops.db").read_bytes() == content


def test_default_store_location(tmp_path, monkeypatch):
    monkeypatch.delenv("JUPYTER_MLOPS_STORE", raising=False)
    project = tmp_path / "project"
    (project / ".mlops").mkdir(parents=True)
    deep = project / "a" / "b"
    deep.mkdir(parents=True)
    assert default_store_path(deep) == project / ".mlops"
    assert default_store_path(tmp_path) == tmp_path.resolve() / ".mlops"
    monkeypatch.setenv("JUPYTER_MLOPS_STORE", str(tmp_path / "elsewhere"))
    assert default_store_path(deep) == tmp_path / "elsewhere"


def test_run_of_a_dead_process_is_marked_killed_on_next_open(tmp_path):
    folder = tmp_path / "s"
    script = textwrap.dedent(f"""
        import os, jupyter_mlops as m
        m.set_store({str(folder)!r})
        run = m.start_run("doomed")
        m.log_metric("loss", 0.5)
        print(run.run_id, flush=True)
        os._exit(9)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    run_id = done.stdout.strip()
    assert len(run_id) == 32, done.stderr
    raw = sqlite3.connect(folder / "mlops.db")
    assert raw.execute("SELECT status FROM runs").fetchone()[0] == "RUNNING"
    raw.close()
    store = Store(folder)
    run = storage.get_run(store, run_id)
    assert run.status == "KILLED" and run.error_type == "ProcessDied"
    assert run.metrics == {"loss": 0.5}
    assert run.end_time is not None
    store.close()


def test_read_only_store_refuses_writes_but_reads(tmp_path):
    folder = tmp_path / "s"
    writable = Store(folder)
    storage.create_run(writable, "a" * 32, "default", "r")
    writable.close()
    reader = Store(folder, read_only=True)
    assert storage.get_run(reader, "a" * 32).name == "r"
    with pytest.raises(mlops.StoreReadOnlyError, match="read-only"):
        storage.create_run(reader, "b" * 32, "default", "r2")
    reader.close()


def test_full_disk_gives_store_full_error_and_keeps_data(tmp_path):
    store = Store(tmp_path / "s")
    mlops.set_store(store.path)
    with mlops.start_run() as run:
        mlops.log_metric("kept", 1.0)
    pages = store.query("PRAGMA page_count")[0][0]
    store.query(f"PRAGMA max_page_count = {pages + 1}")
    current = mlops.get_store()
    current.query(f"PRAGMA max_page_count = {pages + 1}")
    with pytest.raises(mlops.StoreFullError, match="full"):
        with mlops.start_run():
            mlops.log_metrics({f"m{i}": float(i) for i in range(5000)})
    assert storage.get_run(current, run.run_id).metrics == {"kept": 1.0}
    assert current.query("PRAGMA integrity_check")[0][0] == "ok"
    mlops.reset_store()
