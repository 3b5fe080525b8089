"""R6: a locked, read-only or full store gives its own error; cells are never held up."""

import multiprocessing
import os
import time

import pytest
from support import hold_lock

import jupyter_mlops as mlops
from jupyter_mlops.store import current
from jupyter_mlops.store import Store
from jupyter_mlops.tracking import storage

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(120)]


def test_a_held_lock_blocks_no_cell_and_loses_no_execution(shell, store, capsys):
    shell.run_cell("warm = 1", store_history=True)
    holder = hold_lock(store.db_path, seconds=6)
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
    holder = hold_lock(store.db_path, seconds=4)
    try:
        started = time.monotonic()
        with pytest.raises(mlops.StoreLockedError, match="JUPYTER_MLOPS_BUSY_TIMEOUT"):
            storage.create_run(store, "a" * 32, "default", "blocked")
        assert time.monotonic() - started >= 0.9
        assert store.query("SELECT count(*) FROM runs")[0][0] == 0  # reads still work
    finally:
        holder.wait(timeout=30)
    storage.create_run(store, "b" * 32, "default", "after")
    assert store.query("SELECT count(*) FROM runs")[0][0] == 1
    store.close()


def test_a_read_only_store_refuses_runs_but_the_cell_runs(shell, store, capsys):
    with mlops.start_run("kept"):
        mlops.log_metric("m", 1.0)
    current.use_store(Store(store.path, read_only=True))
    result = shell.run_cell("%%track\nanswer = 6 * 7\nanswer", store_history=True)
    assert result.result == 42
    assert shell.run_cell("again = 1", store_history=True).success
    err = capsys.readouterr().err
    assert "read-only" in err and "set_store(PATH)" in err
    assert all(line.startswith("jupyter_mlops:") for line in err.strip().splitlines())
    assert "Traceback" not in err
    assert list(shell.run_line_magic("mlops", "runs")["name"]) == ["kept"]


def _capped_capture_writer(shell, monkeypatch, cap):
    """The kernel's capture writer with nothing pending and its buffer capped at ``cap``."""
    shell.run_cell("warm = 1", store_history=True)
    mlops.tracking.capture.flush_capture()
    writer = mlops.magics._hooks.capture.writer
    monkeypatch.setattr(writer, "MAX_PENDING", cap)
    return writer


def test_past_the_buffer_cap_whole_cells_are_dropped_counted_and_told_once(
        shell, store, capsys, monkeypatch):
    """The events waiting for a locked store are capped (10,000; 50 here). Past the cap
    whole cells are left out of the log and counted, one warning says so, and what was
    buffered is written in order once the lock is released."""
    writer = _capped_capture_writer(shell, monkeypatch, 50)
    holder = hold_lock(store.db_path, seconds=5)
    try:
        for i in range(100):
            assert shell.run_cell(f"v = {i}", store_history=True).success
        assert holder.poll() is None  # the cells ran while the lock was held
    finally:
        holder.wait(timeout=30)
    mlops.tracking.capture.flush_capture(timeout=30)
    for i in range(3):
        assert shell.run_cell(f"after = {i}", store_history=True).success
    history = mlops.cell_history()
    sources = list(history["source"])
    logged = [s for s in sources if s.startswith("v = ")]
    assert 0 < len(logged) < 100
    assert logged == [f"v = {i}" for i in range(len(logged))]  # the first ones, in order
    assert sources[-3:] == ["after = 0", "after = 1", "after = 2"]
    assert (history["status"] == "ok").all()  # no finished cell left 'running'
    assert writer.dropped == 2 * (100 - len(logged))  # a start and an end per left-out cell
    err = capsys.readouterr().err
    assert err.count("cell events were dropped") == 1
    assert "Error in callback" not in err


def test_a_store_chosen_while_the_buffer_is_full_still_logs_its_cells(
        shell, store, tmp_path, monkeypatch):
    """The session row of a newly chosen store is never dropped at the cap: every later
    cell row of that store refers to it."""
    writer = _capped_capture_writer(shell, monkeypatch, 5)
    holder = hold_lock(store.db_path, seconds=3)
    try:
        for i in range(10):
            assert shell.run_cell(f"v = {i}", store_history=True).success
        current.set_store(tmp_path / "other")
        assert shell.run_cell("in_other = 1", store_history=True).success
    finally:
        holder.wait(timeout=30)
    mlops.tracking.capture.flush_capture(timeout=30)
    assert shell.run_cell("later = 1", store_history=True).success
    mlops.tracking.capture.flush_capture(timeout=30)
    assert writer.failures == []
    assert list(mlops.cell_history()["source"]) == ["later = 1"]


def _run_rows(store, run_id):
    """Every row of one run, sorted, for a before/after comparison."""
    return {table: sorted(map(repr, store.query(f"SELECT * FROM {table} WHERE run_id = ?",
                                                (run_id,))))
            for table in ("runs", "params", "metrics", "latest_metrics", "tags")}


def _set_max_page_count(stores, pages):
    for each in stores:  # a per-connection limit: every connection of this process
        each.query(f"PRAGMA max_page_count = {pages}")


def test_a_full_disk_fails_the_logging_cell_and_keeps_what_was_stored(shell, store, capsys):
    kept = shell.run_cell("%%track -n kept\nimport jupyter_mlops as mlops\nlr = 0.1\n"
                          "mlops.log_metrics({'loss': 0.5, 'acc': 0.9})\n"
                          "mlops.set_tag('stage', 'before')", store_history=True)
    assert kept.success
    mlops.tracking.capture.flush_capture()
    (kept_id,) = store.query("SELECT run_id FROM runs WHERE name = 'kept'")[0]
    before = _run_rows(store, kept_id)
    connections = (store, mlops.magics._hooks.capture.writer.own(store))
    unlimited = store.query("PRAGMA max_page_count")[0][0]
    _set_max_page_count(connections, store.query("PRAGMA page_count")[0][0] + 1)
    logging_cell = "%%track -n {}\nmlops.log_metrics({{f'm{{i}}': float(i) for i in range(1000)}})"

    full = shell.run_cell(logging_cell.format("full"), store_history=True)
    assert isinstance(full.error_in_exec, mlops.StoreFullError)
    assert f"{store.db_path} is full (SQLITE_FULL)" in str(full.error_in_exec)
    assert _run_rows(store, kept_id) == before
    assert store.query("PRAGMA integrity_check")[0][0] == "ok"
    statuses = dict(store.query("SELECT name, status FROM runs"))
    assert statuses == {"kept": "FINISHED", "full": "FAILED"}
    assert store.query("SELECT count(*) FROM metrics m JOIN runs r USING (run_id) "
                       "WHERE r.name = 'full' AND m.key NOT LIKE 'system.%'"
                       )[0][0] == 0  # the batch is all or nothing; what the cell cost is kept

    _set_max_page_count(connections, unlimited)
    assert shell.run_cell(logging_cell.format("after"), store_history=True).success
    (after_id,) = store.query("SELECT run_id FROM runs WHERE name = 'after'")[0]
    assert len(mlops.get_run(after_id).metrics) == 1000
    assert "Error in callback" not in capsys.readouterr().err


def _write_runs_until(path, deadline):
    """R1's workload, without the bookkeeping: 10 params and 5 batches of 10 metrics; one
    run at least, however long a loaded machine took to start this process."""
    import jupyter_mlops as mlops

    mlops.set_store(path)
    while True:
        with mlops.start_run("starver"):
            mlops.log_params({f"p{k}": k for k in range(10)})
            for step in range(5):
                mlops.log_metrics({f"m{k}": float(k) for k in range(10)}, step=step)
        if time.time() >= deadline:
            break


def _poll_runs_until(path, deadline):
    """The sidebar's pattern: the latest 50 runs, every 50 ms."""
    store = Store(path, read_only=True)
    while time.time() < deadline:
        store.query("SELECT run_id, name, status FROM runs ORDER BY start_time DESC LIMIT 50")
        time.sleep(0.05)


@pytest.mark.alone
def test_a_polling_reader_and_busy_writers_keep_the_wal_small(tmp_path, scale):
    """Checkpoint starvation: while readers and writers never stop, SQLite's own
    checkpoints never get to start the -wal over."""
    path = str(tmp_path / ".mlops")
    creator = Store(path)
    wal = creator.db_path.with_name("mlops.db-wal")
    creator.close()
    context = multiprocessing.get_context("spawn")
    deadline = time.time() + scale.starvation_seconds + 3  # a few seconds to start
    procs = [context.Process(target=_write_runs_until, args=(path, deadline))
             for _ in range(scale.writer_processes)]
    procs.append(context.Process(target=_poll_runs_until, args=(path, deadline)))
    for proc in procs:
        proc.start()
    largest = 0
    while any(proc.is_alive() for proc in procs):
        try:
            largest = max(largest, wal.stat().st_size)
        except FileNotFoundError:  # between checkpoints, or after the last close
            pass
        time.sleep(0.05)
    assert [proc.exitcode for proc in procs] == [0] * len(procs)
    store = Store(path)
    assert store.query("SELECT count(*) FROM runs WHERE status = 'FINISHED'")[0][0] > 0
    assert store.query("PRAGMA integrity_check")[0][0] == "ok"
    store.close()
    print(f"largest -wal: {largest / 2**20:.1f} MB")
    assert largest < 64 * 2**20


# -- a real full disk: a small tmpfs, mounted in a mount namespace of the child's own ---

ON_A_SMALL_DISK = """
    import json, os, subprocess, sys
    import jupyter_mlops as mlops

    store_path, source, kind = sys.argv[1:4]
    folder = os.path.join(store_path, "artifacts") if kind == "artifacts" else store_path
    os.makedirs(folder, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs",
                              folder], capture_output=True, text=True)
    if mounted.returncode:
        print(json.dumps({"skip": mounted.stderr.strip() or "mount failed"}))
        sys.exit(0)

    def attempt(write):
        try:
            write()
            return None
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"

    def files():
        return sorted(os.path.relpath(os.path.join(d, f), folder)
                      for d, _, names in os.walk(folder) for f in names)

    mlops.set_store(store_path)
    with mlops.start_run("kept") as kept:
        mlops.log_metrics({f"k{i}": float(i) for i in range(50)})
        small = mlops.log_bytes(b"small", "small.txt")
    outcome = {"kept": kept.run_id, "small": small}
    with mlops.start_run("full") as run:
        if kind == "artifacts":
            outcome["errors"] = [attempt(lambda: mlops.log_artifact(source)),
                                 attempt(lambda: mlops.log_bytes(os.urandom(3 << 20), "b.bin"))]
        else:  # the database: fill the disk, then log a batch
            with open(os.path.join(folder, "filler"), "wb") as filler:
                outcome["filler"] = attempt(lambda: filler.write(b"x" * (4 << 20)))
            outcome["errors"] = [attempt(lambda: mlops.log_metrics(
                {f"m{i}": float(i) for i in range(5000)}))]
            os.unlink(os.path.join(folder, "filler"))
            outcome["after"] = attempt(lambda: mlops.log_metrics({"after": 1.0}))
    store = mlops.get_store()
    outcome["files"] = files()
    outcome["integrity"] = store.query("PRAGMA integrity_check")[0][0]
    outcome["kept_metrics"] = len(mlops.get_run(kept.run_id).metrics)
    outcome["full_rows"] = store.query(
        "SELECT (SELECT count(*) FROM metrics WHERE run_id = ?), "
        "(SELECT count(*) FROM artifacts WHERE run_id = ?)", (run.run_id, run.run_id))[0]
    outcome["status"] = mlops.get_run(run.run_id).status
    print(json.dumps(outcome))
"""


def _on_a_small_disk(tmp_path, kind):
    """Run ON_A_SMALL_DISK in a child with a mount namespace of its own (unshare), so the
    2 MB tmpfs it mounts disappears with it; skipped where namespaces or mounts are not
    allowed."""
    import json
    import shutil
    import subprocess
    import sys
    import textwrap

    if shutil.which("unshare") is None:
        pytest.skip("unshare is not installed")
    isolate = ["unshare", "--mount"] if os.geteuid() == 0 else [
        "unshare", "--user", "--map-root-user", "--mount"]
    source = tmp_path / "three-mb.bin"
    source.write_bytes(os.urandom(3 << 20))
    done = subprocess.run([*isolate, sys.executable, "-c", textwrap.dedent(ON_A_SMALL_DISK),
                           str(tmp_path / ".mlops"), str(source), kind],
                          capture_output=True, text=True, timeout=120, check=False)
    if done.returncode and "unshare" in done.stderr:
        pytest.skip(f"no mount namespace here: {done.stderr.strip()[:200]}")
    assert done.returncode == 0, done.stderr[-3000:]
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    if "skip" in outcome:
        pytest.skip(f"cannot mount a tmpfs here: {outcome['skip'][:200]}")
    return outcome


def test_a_real_full_disk_while_writing_an_artifact_is_store_full_with_nothing_half_written(
        tmp_path):
    outcome = _on_a_small_disk(tmp_path, "artifacts")
    artifacts = tmp_path / ".mlops" / "artifacts"
    for error in outcome["errors"]:
        assert error.startswith(f"StoreFullError: No room to store an artifact in {artifacts} "
                                "(No space left on device); nothing was written"), error
    small = outcome["small"]
    assert outcome["files"] == [f"{small[:2]}/{small}"]  # no temporary file, no half file
    assert outcome["full_rows"] == [0, 0]  # no row for either
    assert outcome["status"] == "FINISHED" and outcome["kept_metrics"] == 50
    assert outcome["integrity"] == "ok"


def test_a_real_full_disk_under_the_database_is_store_full_and_writes_resume(tmp_path):
    outcome = _on_a_small_disk(tmp_path, "database")
    assert outcome["filler"].startswith("OSError: [Errno 28] No space left on device")
    (error,) = outcome["errors"]
    assert error.startswith("StoreFullError: Store ") and "is full (SQLITE_FULL)" in error, error
    assert outcome["after"] is None  # room again: the next write goes through
    assert outcome["kept_metrics"] == 50
    assert outcome["full_rows"] == [1, 0]  # the refused batch left nothing; "after" is there
    assert outcome["integrity"] == "ok"


def test_rows_queued_behind_a_lock_are_written_when_the_kernel_shuts_down(tmp_path):
    """Closing a notebook right after a cell, while another process holds the store, still
    logs the cell: the kernel's exit waits for the queued rows (a few seconds at most)."""
    from support import Kernel

    kernel = Kernel(tmp_path / ".mlops", tmp_path)
    try:
        reply, _ = kernel.execute("%load_ext jupyter_mlops")
        assert reply["status"] == "ok"
        store = Store(tmp_path / ".mlops")
        holder = hold_lock(store.db_path, seconds=2)
        try:
            reply, _ = kernel.execute("last = 'before the shutdown'")
            assert reply["status"] == "ok"
            assert holder.poll() is None  # the cell ran; its row waits for the lock
        finally:
            kernel.shutdown()
            holder.wait(timeout=30)
        sources = [row[0] for row in store.query("SELECT source FROM cells")]
        store.close()
    finally:
        kernel.shutdown()
    assert "last = 'before the shutdown'" in sources
