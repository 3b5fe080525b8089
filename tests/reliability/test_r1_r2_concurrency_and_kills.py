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
import time

import pytest

from jupyter_mlops.store import Store

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(300)]

WRITERS = 8
SECONDS = 20


def _digest(params, batches):
    return hashlib.sha256(json.dumps([params, batches], sort_keys=True).encode()).hexdigest()


def _writer(path, worker, deadline, queue):
    import jupyter_mlops as mlops

    mlops.set_store(path)
    errors = []
    rng = random.Random(worker)
    while time.time() < deadline:
        try:
            name = "".join(rng.choice("aé漢😀<>\"' ") for _ in range(8))
            with mlops.start_run(name) as run:
                params = {f"p{k}": rng.random() for k in range(10)}
                mlops.log_params(params)
                batches = []
                for step in range(5):
                    batch = {f"m{k}": rng.random() for k in range(10)}
                    mlops.log_metrics(batch, step=step)
                    batches.append(batch)
            queue.put(("ok", run.run_id, _digest(params, batches)))
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


def test_r1_eight_writers_and_a_reader(tmp_path):
    path = str(tmp_path / ".mlops")
    Store(path).close()
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    deadline = time.time() + SECONDS + 5  # the workers need a few seconds to start
    procs = [context.Process(target=_writer, args=(path, w, deadline, queue))
             for w in range(WRITERS)]
    procs.append(context.Process(target=_reader, args=(path, deadline, queue)))
    for proc in procs:
        proc.start()
    acknowledged, errors, done, reader = {}, [], 0, None
    while done < WRITERS or reader is None:
        message = queue.get(timeout=120)
        if message[0] == "ok":
            acknowledged[message[1]] = message[2]
        elif message[0] == "done":
            done += 1
            errors += message[2]
        else:
            reader = message
    for proc in procs:
        proc.join(timeout=60)
    assert errors == [] and reader[2] == []
    assert reader[1] == sorted(reader[1])  # the reader never saw runs disappear
    assert len(acknowledged) >= 100

    conn = sqlite3.connect(tmp_path / ".mlops" / "mlops.db")
    finished = {r for (r,) in conn.execute("SELECT run_id FROM runs WHERE status = 'FINISHED'")}
    assert finished == set(acknowledged)
    assert conn.execute("SELECT count(*) FROM runs WHERE status = 'RUNNING'").fetchone()[0] == 0
    for run_id, digest in acknowledged.items():
        params = dict(conn.execute("SELECT key, value FROM params WHERE run_id = ?", (run_id,)))
        rows = conn.execute("SELECT step, key, value FROM metrics WHERE run_id = ? "
                            "ORDER BY step, key", (run_id,)).fetchall()
        assert len(params) == 10 and len(rows) == 50
        batches = [{} for _ in range(5)]
        for step, key, value in rows:
            batches[step][key] = value
        assert _digest({k: json.loads(v) for k, v in params.items()}, batches) == digest
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    conn.close()
    wal = tmp_path / ".mlops" / "mlops.db-wal"
    assert not wal.exists() or wal.stat().st_size < 64 * 2**20


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


def test_r2_random_kill_9_keeps_every_acknowledged_batch_whole(tmp_path):
    rng = random.Random(0)
    path = tmp_path / ".mlops"
    Store(path).close()
    for iteration in range(20):
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
        store = Store(path)  # reopening reaps the dead run
        assert store.query("PRAGMA integrity_check")[0][0] == "ok"
        per_step = dict(store.query("SELECT step, count(*) FROM metrics WHERE run_id = ? "
                                    "GROUP BY step", (run_id,)))
        assert set(per_step.values()) <= {10}, per_step  # batches all or nothing
        assert set(acknowledged) <= set(per_step)
        assert store.get_run(run_id).status == "KILLED"
        store.create_run(f"{iteration:032x}", "default", "after")  # no stale lock
        store.close()
