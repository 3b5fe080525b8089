"""R13: a store found by searching up the tree is used only when this user owns it and
nobody else can write it (git's ``safe.directory`` rule); what the store writes is 0600 in
folders 0700, whatever the umask."""

import os
import stat
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import jupyter_mlops as mlops
from jupyter_mlops import signing, tracking
from jupyter_mlops.store import ENV_VAR, Store, default_store_path

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(120)]

OTHER_UID = 65534  # nobody
as_root = pytest.mark.skipif(os.geteuid() != 0,
                             reason="making a folder of another uid needs root")


@pytest.fixture
def no_store(monkeypatch):
    """No store chosen yet and no $JUPYTER_MLOPS_STORE: discovery decides."""
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setattr(tracking, "_store", None)


def planted(parent, *, mode, uid=None):
    """A ``.mlops`` folder in ``parent`` with ``mode``, owned by ``uid`` (default: us)."""
    folder = parent / ".mlops"
    folder.mkdir(parents=True)
    if uid is not None:
        os.chown(folder, uid, uid)
    os.chmod(folder, mode)
    return folder


def assert_refused(folder, caught, *fix):
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"The store folder {folder}, found by searching up")
    assert "so it was not used" in message
    assert "set_store(PATH) or JUPYTER_MLOPS_STORE" in message
    for part in fix:
        assert part in message, message
    assert sorted(os.listdir(folder)) == []  # nothing of ours was written into it


@as_root
@pytest.mark.parametrize("mode", [0o777, 0o1777, 0o755, 0o700])
def test_a_store_of_another_uid_up_the_tree_is_refused(tmp_path, no_store, monkeypatch, mode):
    """Root too: a folder uid 65534 made is theirs, whatever root may do with it."""
    folder = planted(tmp_path / "shared", mode=mode, uid=OTHER_UID)
    project = tmp_path / "shared" / "project" / "deep"
    project.mkdir(parents=True)
    monkeypatch.chdir(project)
    for use in (default_store_path, mlops.get_store, mlops.start_run,
                lambda: mlops.log_param("secret", "value")):
        with pytest.raises(mlops.StoreOwnershipError) as caught:
            use()
        assert_refused(folder, caught, f"belongs to uid {OTHER_UID}, not to you (uid 0)",
                       "mkdir -m 700 .mlops")
    assert mlops.active_run() is None


@as_root
def test_a_planted_store_is_refused_by_a_new_process_and_the_cli(tmp_path):
    """What a kernel or a script would do: a fresh interpreter in the victim's folder."""
    folder = planted(tmp_path / "shared", mode=0o777, uid=OTHER_UID)
    project = tmp_path / "shared" / "project"
    project.mkdir()
    env = {k: v for k, v in os.environ.items() if k != ENV_VAR}
    script = textwrap.dedent("""
        import jupyter_mlops as mlops
        try:
            with mlops.start_run("victim"):
                mlops.log_param("password", "hunter2")
        except mlops.StoreOwnershipError as exc:
            print("refused:", exc)
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=project, env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.stdout.startswith(f"refused: The store folder {folder}"), done.stderr[-2000:]
    cli = subprocess.run([sys.executable, "-m", "jupyter_mlops.cli", "runs"], cwd=project,
                         env=env, capture_output=True, text=True, timeout=60, check=False)
    assert cli.returncode != 0
    assert f"The store folder {folder}" in cli.stdout + cli.stderr
    assert os.listdir(folder) == []


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o722, 0o1777])
def test_a_store_others_can_write_is_refused_until_fixed(tmp_path, no_store, monkeypatch, mode):
    folder = planted(tmp_path, mode=mode)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(mlops.StoreOwnershipError) as caught:
        mlops.get_store()
    assert_refused(folder, caught, "can be written by other users",
                   f"(mode {stat.S_IMODE(mode):o})", f"chmod go-w {folder}")
    os.chmod(folder, 0o755)  # the fix the message names
    assert mlops.get_store().path == folder.resolve()
    mlops.get_store().close()


@as_root
def test_a_store_named_explicitly_may_be_anywhere(tmp_path, no_store, monkeypatch):
    folder = planted(tmp_path / "shared", mode=0o777, uid=OTHER_UID)
    monkeypatch.chdir(tmp_path / "shared")
    store = mlops.set_store(folder)
    assert store.path == folder.resolve()
    store.close()
    monkeypatch.setattr(tracking, "_store", None)
    monkeypatch.setenv(ENV_VAR, str(folder))
    assert mlops.get_store().path == folder.resolve()
    mlops.get_store().close()


@as_root
def test_a_store_planted_between_search_and_creation_is_refused(tmp_path, no_store,
                                                                  monkeypatch):
    """Nothing up the tree, so ./.mlops is to be created; another user makes it first."""
    monkeypatch.chdir(tmp_path)
    searched = []

    def search_then_plant(cwd=None):
        path = default_store_path(cwd)
        searched.append(path)
        planted(tmp_path, mode=0o777, uid=OTHER_UID)
        return path

    monkeypatch.setattr(tracking, "default_store_path", search_then_plant)
    with pytest.raises(mlops.StoreOwnershipError, match=f"belongs to uid {OTHER_UID}"):
        mlops.get_store()
    assert searched == [tmp_path / ".mlops"]
    assert tracking._store is None


# -- modes -------------------------------------------------------------------------

def mode_of(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture(params=[0o022, 0o000], ids=["umask022", "umask000"])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def stream_through_fifo(fifo, artifacts, seen):
    """Feed ``fifo`` to a reader, and record the modes of the temporary files it is
    writing while the copy is half way."""
    with open(fifo, "wb") as out:
        out.write(b"x" * (1 << 20))
        out.flush()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not seen:
            seen.update({p.name: mode_of(p) for p in artifacts.glob(".incoming-*")})
            time.sleep(0.01)
        out.write(b"y" * (1 << 20))


def test_every_file_the_store_writes_is_private_whatever_the_umask(tmp_path, umask,
                                                                    monkeypatch):
    monkeypatch.setenv(signing.KEY_FILE_ENV, str(tmp_path / "keys" / "key"))
    monkeypatch.setattr(signing, "_keys", {})
    path = tmp_path / "new" / ".mlops"
    store = mlops.set_store(path)
    try:
        with mlops.start_run("modes"):
            mlops.log_params({"lr": 0.1})
            mlops.log_metrics({f"m{i}": float(i) for i in range(100)})
            digest = mlops.log_bytes(b"bytes", "b.bin")
            fifo = tmp_path / "stream"
            os.mkfifo(fifo)
            temporary: dict[str, int] = {}
            feeder = threading.Thread(target=stream_through_fifo, daemon=True,
                                      args=(fifo, store.artifacts.root, temporary))
            feeder.start()
            streamed, _ = store.artifacts.put_file(fifo)  # log_artifact takes regular files
            feeder.join(timeout=30)
            mlops.register_model({"weights": [1, 2, 3]}, "modes-model")  # pickled: signed
        written = {
            "store folder": mode_of(path),
            "mlops.db": mode_of(store.db_path),
            "mlops.db-wal": mode_of(path / "mlops.db-wal"),
            "mlops.db-shm": mode_of(path / "mlops.db-shm"),
            "artifacts": mode_of(store.artifacts.root),
            **{f"artifact {p.relative_to(store.artifacts.root)}": mode_of(p)
               for p in store.artifacts.root.rglob("*")},
            "key folder": mode_of(tmp_path / "keys"),
            "key": mode_of(tmp_path / "keys" / "key"),
        }
    finally:
        store.close()
    assert len(temporary) == 1 and set(temporary.values()) == {0o600}, temporary
    assert store.artifacts.path_for(digest).exists()
    assert store.artifacts.path_for(streamed).stat().st_size == 2 << 20
    expected = {name: 0o700 if name in ("store folder", "artifacts", "key folder")
                or len(name) == len("artifact xx") else 0o600 for name in written}
    assert written == expected
    assert len(written) >= 13  # three artifacts (bytes, stream, model) in their folders


@as_root
def test_the_server_neither_reads_nor_hands_its_kernels_a_planted_store(tmp_path, no_store):
    """The server names <root>/.mlops for its kernels only when that folder is safe; a
    planted one is left for each kernel's own search to refuse, and the API refuses it."""
    from jupyter_mlops.server import store_path_for
    from jupyter_mlops.server.context import ServerContext

    root = tmp_path / "shared"
    folder = root / ".mlops"
    Store(folder).close()  # a store with a database in it, made by someone else
    os.chown(folder, OTHER_UID, OTHER_UID)
    folder.chmod(0o777)
    assert store_path_for(root) == folder
    assert ENV_VAR not in os.environ
    context = ServerContext(folder, root, check_owner=True)
    with pytest.raises(mlops.StoreOwnershipError, match=f"belongs to uid {OTHER_UID}"):
        context.store()
    context.close()

    mine = tmp_path / "mine"
    Store(mine / ".mlops").close()
    assert store_path_for(mine) == mine / ".mlops"
    assert os.environ[ENV_VAR] == str(mine / ".mlops")  # a safe one is shared as before
