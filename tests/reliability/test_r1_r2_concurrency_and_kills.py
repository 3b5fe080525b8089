"""R1: many writers and a polling reader on one store; R2: kill -9 at random instants."""

import hashlib
import json
import multiprocessing
import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from jupyter_mlops.store import Store
from jupyter_mlops.tracking import storage

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(300)]

WAL_LIMIT = 64 * 2**20


def _digest(params, batches):
    return hashlib.sha256(json.dumps([params, batches], sort_keys=True).encode()).hexdigest()


def _write_one_run(mlops, rng, store=None):
    """The R1 workload: 10 params, 5 batches of 10 metrics; returns (run_id, digest)."""
    name = "".join(rng.choice("aé漢😀<>\"' ") for _ in range(8))
    with mlops.start_run(name, store=store) as run:
        params = {f"p{k}": rng.random() for k in range(10)}
        mlops.log_params(params)
        batches = []
        for step in range(5):
            batch = {f"m{k}": rng.random() for k in range(10)}
            mlops.log_metrics(batch, step=step)
            batches.append(batch)
    return run.run_id, _digest(params, batches)


def _writer(path, worker, deadline, queue):
    import jupyter_mlops as mlops

    mlops.set_store(path)
    errors = []
    rng = random.Random(worker)
    while time.time() < deadline:
        try:
            queue.put(("ok", *_write_one_run(mlops, rng)))
        except Exception as exc:  # noqa: BLE001 - any error fails the test
            errors.append(f"{type(exc).__name__}: {exc}")
            break
    queue.put(("done", worker, errors))


def _reader(path, deadline, queue):
    counts, errors = [], []
    store = Store(path, read_only=True)
    while time.time() < deadline:
        try:
            rows = store.query("SELECT run_id FROM runs WHERE status = 'FINISHED' "
                               "ORDER BY start_time DESC LIMIT 50")
            counts.append(store.query("SELECT count(*) FROM runs WHERE status = 'FINISHED'")
                          [0][0])
            assert len(rows) <= 50
        except Exception as exc:  # noqa: BLE001
            errors.append(f"{type(exc).__name__}: {exc}")
        time.sleep(0.05)
    queue.put(("reader", counts, errors))


def _wal_size(db_path):
    try:
        return os.path.getsize(f"{db_path}-wal")
    except FileNotFoundError:  # not yet made, or removed by the last close
        return 0


def _collect(queue, writers, db_path):
    """Acknowledged runs (in arrival order), writer errors, the reader's report and the
    largest -wal size seen while they ran."""
    acknowledged, errors, done, reader, largest_wal = [], [], 0, None, 0
    while done < writers or reader is None:
        message = queue.get(timeout=120)
        if message[0] == "ok":
            acknowledged.append(message[1:])
        elif message[0] == "done":
            done += 1
            errors += message[2]
        else:
            reader = message
        largest_wal = max(largest_wal, _wal_size(db_path))
    return acknowledged, errors, reader, largest_wal


def _assert_store_holds_exactly(db_path, acknowledged):
    """Every acknowledged run is there once, FINISHED, whole and unchanged; nothing else is."""
    ids = [run_id for run_id, _ in acknowledged]
    assert len(ids) == len(set(ids)), "a run was acknowledged twice"
    conn = sqlite3.connect(db_path)
    try:
        statuses = dict(conn.execute("SELECT run_id, status FROM runs"))
        assert set(statuses) == set(ids)  # 0 lost, 0 extra
        assert set(statuses.values()) == {"FINISHED"}  # in particular, no RUNNING left
        for run_id, digest in acknowledged:
            params = dict(conn.execute("SELECT key, value FROM params WHERE run_id = ?",
                                       (run_id,)))
            rows = conn.execute("SELECT step, key, value FROM metrics WHERE run_id = ? "
                                "ORDER BY step, key", (run_id,)).fetchall()
            assert len(params) == 10 and len(rows) == 50
            batches = [{} for _ in range(5)]
            for step, key, value in rows:
                batches[step][key] = value
            assert _digest({k: json.loads(v) for k, v in params.items()}, batches) == digest
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        conn.close()


def test_r1_writers_and_a_reader(tmp_path, scale):
    path = str(tmp_path / ".mlops")
    creator = Store(path)
    db_path = creator.db_path
    creator.close()
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    writers = scale.writer_processes
    deadline = time.time() + scale.writer_seconds + 5  # the workers need a few seconds to start
    procs = [context.Process(target=_writer, args=(path, w, deadline, queue))
             for w in range(writers)]
    procs.append(context.Process(target=_reader, args=(path, deadline, queue)))
    for proc in procs:
        proc.start()
    acknowledged, errors, reader, largest_wal = _collect(queue, writers, db_path)
    for proc in procs:
        proc.join(timeout=60)
    assert errors == [] and reader[2] == []
    assert [proc.exitcode for proc in procs] == [0] * len(procs)
    counts = reader[1]
    assert len(counts) > 10 and counts == sorted(counts)  # runs never disappeared
    assert len(acknowledged) >= 100
    _assert_store_holds_exactly(db_path, acknowledged)
    print(f"{len(acknowledged)} runs; largest -wal {largest_wal / 2**20:.1f} MB")
    assert max(largest_wal, _wal_size(db_path)) < WAL_LIMIT


def test_r1_threads_share_one_store_object(tmp_path, scale):
    """Eight threads of one process, one Store (one connection and its lock) between them."""
    import jupyter_mlops as mlops

    store = Store(tmp_path / ".mlops")
    acknowledged, errors = [], []

    def write_runs(worker):
        rng = random.Random(worker)
        try:
            for _ in range(scale.runs_per_thread):
                acknowledged.append(_write_one_run(mlops, rng, store=store))
        except Exception as exc:  # noqa: BLE001 - any error fails the test
            errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=write_runs, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    store.close()
    assert errors == []
    assert len(acknowledged) == 8 * scale.runs_per_thread
    _assert_store_holds_exactly(store.db_path, acknowledged)


def _busy_errors(db_path, begin, writers=4, seconds=1.0):
    """"database is locked" errors of writers that read, then write, in one transaction."""
    failures = []

    def work():
        conn = sqlite3.connect(db_path, isolation_level=None, timeout=10,
                               check_same_thread=False)
        busy = 0
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                conn.execute(begin)
                count = conn.execute("SELECT count(*) FROM counter").fetchone()[0]
                conn.execute("INSERT INTO counter VALUES (?)", (count,))
                conn.execute("COMMIT")
            except sqlite3.OperationalError:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                busy += 1
        conn.close()
        failures.append(busy)

    threads = [threading.Thread(target=work) for _ in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(failures)


def test_r1_negative_control_deferred_begin(tmp_path, record_property):
    """Why the store says BEGIN IMMEDIATE: a deferred BEGIN upgrades its lock late and gets
    SQLITE_BUSY at once, busy timeout or not. The deferred count is informative only."""
    db_path = tmp_path / "control.db"
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE counter (n)")
    conn.close()
    deferred = _busy_errors(db_path, "BEGIN")
    immediate = _busy_errors(db_path, "BEGIN IMMEDIATE")
    record_property("busy_with_deferred_begin", deferred)
    print(f"BUSY errors: deferred BEGIN {deferred}, BEGIN IMMEDIATE {immediate}")
    assert immediate == 0


CHILD = textwrap.dedent("""
    import sys, jupyter_mlops as mlops
    mlops.set_store(sys.argv[1])
    run = mlops.start_run("victim")
    print("run", run.run_id, flush=True)
    seq = 0
    while True:
        mlops.log_metrics({f"m{k}": float(seq) for k in range(10)}, step=seq)
        print("ack", seq, flush=True)
        seq += 1
""")


def test_r2_random_kill_9_keeps_every_acknowledged_batch_whole(tmp_path, scale):
    rng = random.Random(0)
    path = tmp_path / ".mlops"
    Store(path).close()
    for iteration in range(scale.kill_iterations):
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(path)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        first = child.stdout.readline().split()
        assert first[:1] == ["run"], child.stderr.read()[-2000:]
        run_id = first[1]
        time.sleep(rng.uniform(0, 0.5))
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        # Only whole lines count: the kill may cut the last one in half.
        lines = child.stdout.read().split("\n")[:-1]
        acknowledged = [int(line.split()[1]) for line in lines if line.startswith("ack ")]
        store = Store(path, busy_timeout_s=2)  # reopening reaps the dead run
        assert store.query("PRAGMA integrity_check")[0][0] == "ok"
        per_step = dict(store.query("SELECT step, count(*) FROM metrics WHERE run_id = ? "
                                    "GROUP BY step", (run_id,)))
        assert set(per_step.values()) <= {10}, per_step  # batches all or nothing
        assert set(acknowledged) <= set(per_step)
        assert storage.get_run(store, run_id).status == "KILLED"
        storage.create_run(store, f"{iteration:032x}", "default", "after")  # no stale lock
        store.close()
