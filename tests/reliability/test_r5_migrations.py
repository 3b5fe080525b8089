"""R5 beyond tests/test_store.py: openers released at the same instant, a locked store that
must not be taken for a corrupt one, and truncated files."""

import hashlib
import multiprocessing
import os
import shutil
import sqlite3

import pytest
from support import hold_lock

import jupyter_mlops as mlops
from jupyter_mlops.store import SCHEMA_VERSION, Store
from jupyter_mlops.tracking import storage

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(120)]

FIXTURES = os.path.join(os.path.dirname(__file__), os.pardir, "data", "stores")


def _copy_fixture(name, folder):
    folder.mkdir()
    shutil.copy(os.path.join(FIXTURES, name), folder / "mlops.db")
    return folder


def _open_when_all_are_ready(folder, barrier, queue):
    barrier.wait(timeout=60)
    try:
        Store(folder).close()
        queue.put(None)
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        queue.put(f"{type(exc).__name__}: {exc}")


def test_openers_released_together_apply_each_step_once(tmp_path, scale):
    folder = _copy_fixture("v1.sqlite", tmp_path / "store")
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(scale.simultaneous_openers)
    queue = context.Queue()
    openers = [context.Process(target=_open_when_all_are_ready, args=(folder, barrier, queue))
               for _ in range(scale.simultaneous_openers)]
    for opener in openers:
        opener.start()
    errors = [queue.get(timeout=90) for _ in openers]
    for opener in openers:
        opener.join(timeout=30)
    assert errors == [None] * len(openers)  # among others: no "duplicate column"
    conn = sqlite3.connect(folder / "mlops.db")
    applied = [v for (v,) in conn.execute("SELECT version FROM _migrations ORDER BY version")]
    assert applied == list(range(1, SCHEMA_VERSION + 1))
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()


def _open_each_round(folders, barrier, queue):
    for folder in folders:
        barrier.wait(timeout=60)
        try:
            Store(folder, busy_timeout_s=3).close()
            queue.put(None)
        except Exception as exc:  # noqa: BLE001 - reported to the parent
            queue.put(f"{type(exc).__name__}: {exc}")


def test_openers_of_a_rollback_journal_store_never_wait_out_the_lock(tmp_path):
    # An opener that read the file before another switched it to WAL used to ask for an
    # exclusive lock that the others' open connections never let go of, and failed after
    # the busy timeout: some rounds in forty did, with 8 openers and 3 s.
    rounds = 40
    folders = [_copy_fixture("v1.sqlite", tmp_path / f"store{i}") for i in range(rounds)]
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(8)
    queue = context.Queue()
    openers = [context.Process(target=_open_each_round, args=(folders, barrier, queue))
               for _ in range(8)]
    for opener in openers:
        opener.start()
    results = [queue.get(timeout=90) for _ in range(8 * rounds)]
    for opener in openers:
        opener.join(timeout=30)
    assert [r for r in results if r is not None] == []
    for folder in folders:
        conn = sqlite3.connect(folder / "mlops.db")
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        conn.close()


def test_a_locked_old_store_is_locked_not_corrupt_and_upgrades_once_free(tmp_path):
    """IPython's catch_corrupt_db also catches "locked" and moves the file aside: not here."""
    folder = _copy_fixture("v1.sqlite", tmp_path / "store")
    original = (folder / "mlops.db").read_bytes()
    holder = hold_lock(folder / "mlops.db", seconds=3, begin="EXCLUSIVE")
    try:
        with pytest.raises(mlops.StoreLockedError, match="locked"):
            Store(folder, busy_timeout_s=0.5)
        assert (folder / "mlops.db").read_bytes() == original
        store = Store(folder, busy_timeout_s=30)  # waits for the lock, then upgrades
    finally:
        holder.wait(timeout=30)
    assert store.schema_version == SCHEMA_VERSION
    assert store.query("SELECT count(*) FROM runs")[0][0] == 20
    store.close()


@pytest.fixture(scope="module")
def current_store_bytes(tmp_path_factory):
    """The bytes of a store at the current schema, upgraded from a fixture with data."""
    folder = _copy_fixture("v3.sqlite", tmp_path_factory.mktemp("current") / "store")
    Store(folder).close()
    return (folder / "mlops.db").read_bytes()


@pytest.mark.parametrize("kept", [0.9, 0.5, 0.1, 0.001])
def test_a_truncated_store_is_reported_and_left_alone(tmp_path, current_store_bytes, kept):
    cut = current_store_bytes[:int(len(current_store_bytes) * kept)]
    folder = tmp_path / "store"
    folder.mkdir()
    (folder / "mlops.db").write_bytes(cut)
    with pytest.raises(mlops.StoreCorruptError, match="left untouched") as caught:
        Store(folder)
    assert str((folder / "mlops.db").resolve()) in str(caught.value)
    assert (folder / "mlops.db").read_bytes() == cut


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("journal_mode", ["DELETE", "TRUNCATE", "PERSIST"])
def test_a_newer_store_in_rollback_journal_mode_is_refused_byte_for_byte(
        tmp_path, journal_mode):
    """The version is read before any pragma: PRAGMA journal_mode = WAL would have
    rewritten bytes 18-19 of the header of the store it then refused."""
    folder = tmp_path / "future"
    writer = Store(folder)
    storage.create_run(writer, "a" * 32, "Default", "kept")
    writer.close()
    conn = sqlite3.connect(folder / "mlops.db", isolation_level=None)
    conn.execute(f"PRAGMA journal_mode = {journal_mode}")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    db = folder / "mlops.db"
    assert db.read_bytes()[18:20] == b"\x01\x01"  # rollback journal, not WAL (2, 2)
    digest, listing = _sha256(db), sorted(os.listdir(folder))
    with pytest.raises(mlops.SchemaVersionError, match=f"Store schema {SCHEMA_VERSION + 1} "
                                                       f"at {db} is newer"):
        Store(folder)
    assert _sha256(db) == digest
    assert sorted(os.listdir(folder)) == listing  # no -wal, -shm or journal left behind
    reader = Store(folder, read_only=True)  # it can still be read
    assert reader.query("SELECT name FROM runs") == [("kept",)]
    reader.close()
    assert _sha256(db) == digest
