"""R18: a store deleted or replaced under a running process is noticed before a write
lands in the void; a read-only copy of a store can still be read.

The server extension's side (the sidebar lets go of a deleted store) is in
tests/server/test_store_missing.py, beside the real Jupyter server it needs.
"""

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

import jupyter_mlops as mlops
from jupyter_mlops.store import current
from jupyter_mlops.tracking import runs as tracking
from jupyter_mlops.server.context import ServerContext
from jupyter_mlops.store import Store
from jupyter_mlops.tracking import storage

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(120)]

OTHER_UID = 65534  # nobody


def assert_one_line_missing(caught, store):
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"Store file {store.db_path} was deleted or replaced while this "
                              "process had it open; nothing was written.")
    assert "set_store(PATH)" in message


# -- deleted or replaced while open --------------------------------------------------

def test_a_store_deleted_between_two_writes_refuses_the_second(tmp_path):
    store = Store(tmp_path / ".mlops")
    storage.create_run(store, "a" * 32, "default", "first")
    shutil.rmtree(store.path)  # rm -rf .mlops, with the store open
    with pytest.raises(mlops.StoreMissingError) as caught:
        storage.create_run(store, "b" * 32, "default", "second")
    assert_one_line_missing(caught, store)
    with pytest.raises(mlops.StoreMissingError):
        storage.log_metrics(store, "a" * 32, [("m", 1.0, None)], 0.0)
    assert not store.path.exists()  # not silently made again either
    store.close()


@pytest.mark.parametrize("replaced", ["file", "folder"])
def test_a_replaced_store_refuses_the_write_and_leaves_the_replacement_alone(tmp_path,
                                                                             replaced):
    store = Store(tmp_path / ".mlops")
    storage.create_run(store, "a" * 32, "default", "first")
    other = Store(tmp_path / "other")
    storage.create_run(other, "c" * 32, "default", "theirs")
    other.close()
    if replaced == "file":  # mv other/mlops.db .mlops/mlops.db
        os.replace(tmp_path / "other" / "mlops.db", store.db_path)
    else:  # mv .mlops .mlops-old; mv other .mlops
        os.rename(store.path, tmp_path / ".mlops-old")
        os.rename(tmp_path / "other", store.path)
    digest = hashlib.sha256(store.db_path.read_bytes()).hexdigest()
    with pytest.raises(mlops.StoreMissingError) as caught:
        storage.create_run(store, "b" * 32, "default", "second")
    assert_one_line_missing(caught, store)
    assert hashlib.sha256(store.db_path.read_bytes()).hexdigest() == digest
    store.close()
    if replaced == "folder":
        fresh = Store(store.path, read_only=True)  # what is there now: theirs, only theirs
        assert fresh.query("SELECT name FROM runs") == [("theirs",)]
        fresh.close()


def test_a_store_made_again_by_another_process_gets_none_of_the_old_ones_writes(tmp_path):
    old = Store(tmp_path / ".mlops")
    storage.create_run(old, "a" * 32, "default", "first")
    shutil.rmtree(old.path)
    new = Store(tmp_path / ".mlops")  # another kernel opens the same path: a new store
    storage.create_run(new, "d" * 32, "default", "new")
    with pytest.raises(mlops.StoreMissingError):
        storage.create_run(old, "b" * 32, "default", "lost")
    assert new.query("SELECT name FROM runs") == [("new",)]
    old.close()
    new.close()


def test_the_python_api_reports_the_deleted_store_and_set_store_starts_again(store):
    run = mlops.start_run("acknowledged")
    mlops.log_metric("loss", 0.5)
    shutil.rmtree(store.path)
    with pytest.raises(mlops.StoreMissingError) as caught:
        mlops.log_metric("loss", 0.25)
    assert_one_line_missing(caught, store)
    with pytest.raises(mlops.StoreMissingError):
        mlops.end_run()
    tracking._main_thread_run = None  # the run went with its store
    tracking._active.set(None)
    again = mlops.set_store(store.path)  # the fix the message names
    with mlops.start_run("after") as after:
        mlops.log_metric("loss", 0.1)
    assert again.query("SELECT name FROM runs") == [("after",)]
    assert mlops.get_run(after.run_id).metrics == {"loss": 0.1}
    assert run.run_id not in {r for (r,) in again.query("SELECT run_id FROM runs")}
    again.close()


def test_a_tracked_cell_on_a_deleted_store_still_runs_and_says_so_in_one_line(
        shell, store, capsys):
    assert shell.run_cell("%%track -n before\nx = 1", store_history=True).success
    mlops.tracking.capture.flush_capture()
    shutil.rmtree(store.path)
    result = shell.run_cell("%%track -n after\nanswer = 6 * 7\nanswer", store_history=True)
    assert result.result == 42
    err = capsys.readouterr().err
    assert "StoreMissingError" in err and "was deleted or replaced" in err
    assert all(line.startswith("jupyter_mlops:") for line in err.strip().splitlines()), err
    assert "Traceback" not in err and "Error in callback" not in err
    assert not store.path.exists()
    mlops.set_store(store.path)  # the fix the message names: the kernel logs again
    assert shell.run_cell("%%track -n again\nw = 3", store_history=True).success
    assert shell.run_cell("z = 4", store_history=True).success
    mlops.tracking.capture.flush_capture()
    assert list(mlops.cell_history()["source"]) == ["%%track -n again\nw = 3", "z = 4"]
    assert list(mlops.search_runs()["name"]) == ["again"]
    assert "Error in callback" not in capsys.readouterr().err


def test_the_server_context_lets_go_of_a_deleted_or_replaced_store(tmp_path):
    path = tmp_path / ".mlops"
    writer = Store(path)
    storage.create_run(writer, "a" * 32, "default", "first")
    context = ServerContext(path, tmp_path)
    try:
        assert context.store().query("SELECT name FROM runs") == [("first",)]
        shutil.rmtree(path)
        assert context.store() is None  # nothing on disk: nothing to show, nothing created
        assert not path.exists()
        again = Store(path)
        storage.create_run(again, "b" * 32, "default", "second")
        assert context.store().query("SELECT name FROM runs") == [("second",)]
        again.close()
    finally:
        context.close()
        writer.close()


# -- a read-only copy ----------------------------------------------------------------

READER = """
    import json, os, sys
    import jupyter_mlops as mlops
    from jupyter_mlops.server import queries
    from jupyter_mlops.server.context import ServerContext
    from jupyter_mlops.store import Store
    from jupyter_mlops.tracking import storage

    original, copy, run_id, uid = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])

    def read(path):
        store = Store(path, read_only=True)
        try:
            frame = mlops.search_runs(store=store)
            run = storage.get_run(store, run_id)
            return {"names": sorted(frame["name"]), "run": run.name,
                    "metrics": run.metrics, "params": run.params}
        finally:
            store.close()

    def sidebar(path):
        context = ServerContext(path, path.parent)
        try:
            page = queries.list_runs(context.store())
            return sorted(run["name"] for run in page["runs"])
        finally:
            context.close()

    from pathlib import Path
    read(original), sidebar(Path(original))  # every lazy import done while we still can
    if uid >= 0:  # root ignores permission bits: read as another user, as a copy's reader
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    outcome = {"read": read(copy), "sidebar": sidebar(Path(copy))}
    try:
        Store(copy)
        outcome["write"] = None
    except mlops.MLOpsError as exc:
        outcome["write"] = f"{type(exc).__name__}: {exc}"
    print(json.dumps(outcome))
"""


@pytest.fixture
def shared_folder():
    """A folder another uid can reach (pytest's tmp_path is private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="jupyter-mlops-r18-"))
    folder.chmod(0o755)
    yield folder
    for path in [folder, *folder.rglob("*")]:
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o755)
    shutil.rmtree(folder)


def make_store(path, names):
    store = Store(path)
    ids = []
    for name in names:
        with mlops.start_run(name, store=store) as run:
            mlops.log_metric("acc", 0.5)
            mlops.log_param("lr", 0.1)
        ids.append(run.run_id)
    return store, ids


def read_only_copy(source: Path, target: Path, suffixes) -> dict:
    """``target`` holding copies of the store files of ``source`` readable by all, in a
    folder nobody but its owner (root) may write; returns their sha256 by name."""
    target.mkdir()
    for suffix in suffixes:
        shutil.copyfile(f"{source}/mlops.db{suffix}", target / f"mlops.db{suffix}")
        os.chmod(target / f"mlops.db{suffix}", 0o644)
    target.chmod(0o555)
    return snapshot(target)


def snapshot(folder: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


def read_as_another_user(original, copy, run_id) -> dict:
    """READER in a child that drops to uid 65534 when we are root (and reads as us when
    not, a 0555 folder stopping us as well); its temporary files go to a folder of its own,
    which must be empty once it is done."""
    uid = OTHER_UID if os.geteuid() == 0 else -1
    temporary = Path(copy).parent / "tmp"
    temporary.mkdir()
    temporary.chmod(0o1777)
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(READER), str(original),
                           str(copy), run_id, str(uid)], capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, TMPDIR=str(temporary)),
                          check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert list(temporary.iterdir()) == []  # a private copy, if one was made, is gone
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_read_only_copy_of_a_store_can_be_read_and_nothing_is_written(
        shared_folder, monkeypatch):
    monkeypatch.setattr(current, "_store", None)
    store, ids = make_store(shared_folder / "original", ["one", "two"])
    store.close()  # the last connection folds the -wal into the database and removes it
    assert not (shared_folder / "original" / "mlops.db-wal").exists()
    copy = shared_folder / "copy"
    before = read_only_copy(shared_folder / "original", copy, [""])
    outcome = read_as_another_user(shared_folder / "original", copy, ids[0])
    assert outcome["read"] == {"names": ["one", "two"], "run": "one", "metrics": {"acc": 0.5},
                               "params": {"lr": 0.1}}
    assert outcome["sidebar"] == ["one", "two"]
    assert outcome["write"].startswith("StoreReadOnlyError: ")
    assert snapshot(copy) == before  # no -wal, no -shm, no byte changed


@pytest.mark.parametrize("suffixes", [["", "-wal"], ["", "-wal", "-shm"]],
                         ids=["db+wal", "db+wal+shm"])
def test_runs_still_in_the_wal_of_a_read_only_copy_are_read_too(
        shared_folder, monkeypatch, suffixes):
    """A copy taken while a kernel was writing: some runs are only in the -wal. They are
    read (from a private copy of the two files when the -shm cannot be made), not left
    silently out."""
    monkeypatch.setattr(current, "_store", None)
    store, _ = make_store(shared_folder / "original", ["in-db"])
    store.query("PRAGMA wal_checkpoint(TRUNCATE)")
    _, later = make_store(shared_folder / "original", ["only-in-wal"])
    copy = shared_folder / "copy"
    before = read_only_copy(shared_folder / "original", copy, suffixes)
    store.close()
    alone = sqlite3.connect(f"file:{copy}/mlops.db?mode=ro&immutable=1", uri=True)
    names_in_db = [n for (n,) in alone.execute("SELECT name FROM runs")]
    alone.close()
    assert names_in_db == ["in-db"]  # the database file alone does not have the second run
    outcome = read_as_another_user(shared_folder / "original", copy, later[0])
    assert outcome["read"]["names"] == ["in-db", "only-in-wal"]
    assert outcome["read"]["run"] == "only-in-wal"
    assert outcome["sidebar"] == ["in-db", "only-in-wal"]
    assert snapshot(copy) == before


def test_a_store_whose_path_holds_uri_characters_is_read_read_only(tmp_path):
    """Read-only stores are opened through a SQLite URI: '?', '#' and '%' in a folder
    name are escaped, not taken for its query or fragment."""
    path = tmp_path / "odd ?mode=rw#x %41" / ".mlops"
    writer = Store(path)
    storage.create_run(writer, "a" * 32, "default", "odd")
    reader = Store(path, read_only=True)
    assert reader.query("SELECT name FROM runs") == [("odd",)]
    with pytest.raises(mlops.StoreReadOnlyError):
        storage.create_run(reader, "b" * 32, "default", "refused")
    reader.close()
    writer.close()
