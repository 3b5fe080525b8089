"""R6: a locked, read-only or full store gives its own error; cells are never held up."""

import subprocess
import sys
import textwrap
import time

import pytest

import jupyter_mlops as mlops
from jupyter_mlops import tracking
from jupyter_mlops.store import Store

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(120)]


def _hold_write_lock(db_path, seconds):
    """Another process that takes the write lock and keeps it for ``seconds``."""
    script = textwrap.dedent(f"""
        import sqlite3, sys, time
        conn = sqlite3.connect({str(db_path)!r}, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        print("locked", flush=True)
        time.sleep({seconds})
        conn.execute("COMMIT")
    """)
    holder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_a_held_lock_blocks_no_cell_and_loses_no_execution(shell, store, capsys):
    shell.run_cell("warm = 1", store_history=True)
    holder = _hold_write_lock(store.db_path, 6)
    try:
        for i in range(100):
            assert shell.run_cell(f"v = {i}", store_history=True).success
        # All 100 cells ran while the other process still held the lock.
        assert holder.poll() is None
    finally:
        holder.wait(timeout=30)
    history = mlops.cell_history()  # flushes what waited for the lock
    assert list(history["source"])[-100:] == [f"v = {i}" for i in range(100)]
    assert (history["status"] == "ok").all()
    assert "Error in callback" not in capsys.readouterr().err


def test_a_held_lock_gives_store_locked_error_after_the_busy_timeout(tmp_path):
    store = Store(tmp_path / "s", busy_timeout_s=1)
    holder = _hold_write_lock(store.db_path, 4)
    try:
        started = time.monotonic()
        with pytest.raises(mlops.StoreLockedError, match="JUPYTER_MLOPS_BUSY_TIMEOUT"):
            store.create_run("a" * 32, "default", "blocked")
        assert time.monotonic() - started >= 0.9
        assert store.query("SELECT count(*) FROM runs")[0][0] == 0  # reads still work
    finally:
        holder.wait(timeout=30)
    store.create_run("b" * 32, "default", "after")
    assert store.query("SELECT count(*) FROM runs")[0][0] == 1
    store.close()


def test_a_read_only_store_refuses_runs_but_the_cell_runs(shell, store, capsys):
    with mlops.start_run("kept"):
        mlops.log_metric("m", 1.0)
    tracking._store = Store(store.path, read_only=True)
    result = shell.run_cell("%%track\nanswer = 6 * 7\nanswer", store_history=True)
    assert result.result == 42
    assert shell.run_cell("again = 1", store_history=True).success
    err = capsys.readouterr().err
    assert "read-only" in err and "set_store(PATH)" in err
    assert all(line.startswith("jupyter_mlops:") for line in err.strip().splitlines())
    assert "Traceback" not in err
    assert list(shell.run_line_magic("mlops", "runs")["name"]) == ["kept"]
