"""R2 with real kernels and during migrations: a SIGKILL at any instant leaves a store that
opens, keeps every acknowledged write whole and marks the dead run KILLED."""

import hashlib
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from queue import Empty

import pytest

from jupyter_mlops.tracking import storage
from jupyter_mlops.tracking.runner import execute_request
from jupyter_mlops.store import SCHEMA_VERSION, Store
from jupyter_mlops.store.schema import MIGRATIONS
from jupyter_mlops.store.sqlite import _statements

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(300)]

OLDEST_FIXTURE = os.path.join(os.path.dirname(__file__), os.pardir, "data", "stores",
                              "v1.sqlite")

# "ack N" is printed only once log_metrics has returned: step N is committed.
LOGGING_CELL = """%%track -n victim
import jupyter_mlops as mlops
for step in range(10**6):
    mlops.log_metrics({f"m{k}": float(step) for k in range(10)}, step=step)
    print("ack", step, flush=True)
"""


def _stdout_of(message, msg_id):
    """The text a message of the ``msg_id`` cell adds to its stdout ("" for other messages)."""
    if message["parent_header"].get("msg_id") != msg_id or message["msg_type"] != "stream":
        return ""
    return message["content"]["text"]


def _wait_for_lines(client, msg_id, lines):
    """The cell's stdout once it holds ``lines`` lines (at most a minute)."""
    text, deadline = "", time.monotonic() + 60
    while text.count("\n") < lines:
        assert time.monotonic() < deadline, "the logging cell did not get going"
        message = client.get_iopub_msg(timeout=60)
        assert message["msg_type"] != "error", message["content"]
        text += _stdout_of(message, msg_id)
    return text


def _rest_of_stdout(client, msg_id, text):
    """``text`` and whatever stdout the cell sent before it died."""
    while True:
        try:
            message = client.get_iopub_msg(timeout=0.5)
        except Empty:
            return text
        text += _stdout_of(message, msg_id)


def _acknowledged_steps(text):
    # Only whole lines count: the kill may cut the last one in half.
    return {int(line.split()[1]) for line in text.split("\n")[:-1] if line.startswith("ack ")}


def _kill_kernel(kernel):
    """kill -9 of the kernel's process group, and wait until it is gone."""
    kernel.manager.signal_kernel(signal.SIGKILL)
    deadline = time.monotonic() + 30
    while kernel.manager.is_alive():
        assert time.monotonic() < deadline, "the kernel outlived SIGKILL"
        time.sleep(0.05)


@pytest.mark.kernel
@pytest.mark.parametrize("how, seed", [("kill", 1), ("restart", 2), ("kill", 3)])
def test_r2_a_killed_kernel_leaves_a_whole_store_and_a_killed_run(kernel, tmp_path, how, seed):
    assert kernel.execute("%load_ext jupyter_mlops")[0]["status"] == "ok"
    client = kernel.client
    msg_id = execute_request(client, LOGGING_CELL, "loop")
    text = _wait_for_lines(client, msg_id, 20)
    time.sleep(random.Random(seed).uniform(0, 0.3))
    if how == "kill":
        _kill_kernel(kernel)
    else:
        kernel.manager.restart_kernel(now=True)  # SIGINT, then SIGKILL at once
    acknowledged = _acknowledged_steps(_rest_of_stdout(client, msg_id, text))

    store = Store(tmp_path / ".mlops", busy_timeout_s=2)  # opening reaps the dead run
    assert store.query("PRAGMA integrity_check")[0][0] == "ok"
    ((run_id,),) = store.query("SELECT run_id FROM runs")
    per_step = dict(store.query("SELECT step, count(*) FROM metrics WHERE run_id = ? "
                                "GROUP BY step", (run_id,)))
    assert set(per_step.values()) == {10}, per_step  # batches all or nothing
    assert acknowledged and acknowledged <= set(per_step)
    run = storage.get_run(store, run_id)
    assert run.status == "KILLED"
    if how == "kill":
        assert run.error_type == "ProcessDied"  # marked by the reaper, not by the kernel
    last_write = store.query("SELECT max(timestamp) FROM metrics WHERE run_id = ?",
                             (run_id,))[0][0]
    assert run.end_time >= last_write
    assert storage.cells(store, "status = 'running'") == []
    storage.create_run(store, "a" * 32, "default", "after the kill")  # no lock was left behind
    storage.finish_run(store, "a" * 32, "FINISHED")
    store.close()

    if how == "restart":
        client.wait_for_ready(timeout=60)
        assert kernel.execute("%load_ext jupyter_mlops")[0]["status"] == "ok"
        reply, _ = kernel.execute("%%track -n after-restart\nx = 1")
        assert reply["status"] == "ok"
        reader = Store(tmp_path / ".mlops", read_only=True)
        statuses = dict(reader.query("SELECT name, status FROM runs"))
        reader.close()
        assert statuses["after-restart"] == "FINISHED"


# The child announces each statement of each migration step, then holds it back a moment,
# so that the parent's SIGKILL lands inside a step as often as between two.
MIGRATING_CHILD = textwrap.dedent("""
    import sys, time
    from jupyter_mlops.store import sqlite as store_sqlite

    split = store_sqlite._statements

    def announced(script):
        for statement in split(script):
            print("statement", flush=True)
            time.sleep(0.02)
            yield statement

    store_sqlite._statements = announced
    store_sqlite.Store(sys.argv[1])
    print("migrated", flush=True)
""")


def _copy_oldest_fixture(folder):
    folder.mkdir()
    shutil.copy(OLDEST_FIXTURE, folder / "mlops.db")
    return folder / "mlops.db"


def _shape(conn):
    """Tables with their columns, and indexes: what a migration step changes."""
    shape = set()
    for kind, name in conn.execute("SELECT type, name FROM sqlite_master WHERE name NOT "
                                   "LIKE 'sqlite_%' AND name != '_migrations'"):
        columns = [row[1] for row in conn.execute(f"PRAGMA table_info('{name}')")]
        shape.add((kind, name, tuple(columns) if kind == "table" else ()))
    return shape


def _shapes_by_version(db_path):
    """The shape after each step, from applying the steps' SQL one by one to a copy."""
    conn = sqlite3.connect(":memory:")
    source = sqlite3.connect(db_path)
    source.backup(conn)
    source.close()
    oldest = conn.execute("PRAGMA user_version").fetchone()[0]
    shapes = {oldest: _shape(conn)}
    for migration in MIGRATIONS:
        if migration.version > oldest:
            conn.executescript(migration.sql)
            shapes[migration.version] = _shape(conn)
    conn.close()
    return oldest, shapes


def _rows(conn, columns_by_table):
    return {table: sorted(map(repr, conn.execute(f"SELECT {', '.join(columns)} FROM {table}")))
            for table, columns in columns_by_table.items()}


def _columns_by_table(conn):
    tables = [name for (name,) in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name != '_migrations'")]
    return {t: [row[1] for row in conn.execute(f"PRAGMA table_info('{t}')")] for t in tables}


def _checksum(db_path):
    """sha256 of every row of every table but the migration log (which holds times)."""
    conn = sqlite3.connect(db_path)
    rows = _rows(conn, _columns_by_table(conn))
    conn.close()
    return hashlib.sha256(repr(sorted(rows.items())).encode()).hexdigest()


def _kill_at_statement(db_path, statement, delay_s):
    """Run the migrations in a child and SIGKILL it ``delay_s`` after it announced its
    ``statement``-th statement (counting from 1)."""
    child = subprocess.Popen([sys.executable, "-c", MIGRATING_CHILD, str(db_path.parent)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for _ in range(statement):
        line = child.stdout.readline()
        assert line == "statement\n", child.stderr.read()[-2000:]
    time.sleep(delay_s)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()


def test_r2_kill_9_during_migration_leaves_whole_steps_and_the_next_open_finishes(tmp_path):
    oldest, shapes = _shapes_by_version(OLDEST_FIXTURE)
    source = sqlite3.connect(OLDEST_FIXTURE)
    old_columns = _columns_by_table(source)
    old_rows = _rows(source, old_columns)
    source.close()
    clean = _copy_oldest_fixture(tmp_path / "clean")
    Store(clean.parent).close()
    upgraded = _checksum(clean)
    statements = sum(len(_statements(m.sql)) for m in MIGRATIONS if m.version > oldest)
    rng = random.Random(5)
    reached = []
    for iteration in range(5):
        db_path = _copy_oldest_fixture(tmp_path / f"killed-{iteration}")
        _kill_at_statement(db_path, rng.randint(1, statements), rng.uniform(0, 0.03))

        conn = sqlite3.connect(db_path)
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        reached.append(version)
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert _shape(conn) == shapes[version]  # no step half applied
        applied = [v for (v,) in conn.execute("SELECT version FROM _migrations ORDER BY 1")]
        assert applied == list(range(1, version + 1))
        assert _rows(conn, old_columns) == old_rows
        conn.close()

        store = Store(db_path.parent)
        assert store.schema_version == SCHEMA_VERSION
        store.close()
        assert _checksum(db_path) == upgraded
    print(f"versions at the kills: {reached}")
