"""Files under DVC: recorded with DVC's md5 and the git revision, not copied when the DVC
file naming them is committed; get_dataset points at dvc.api for them. DVC itself is not
needed to record them: the first test makes the .dvc and dvc.lock files by hand, as `dvc
add` and `dvc repro` write them; the last runs DVC itself (in the test extra)."""

import hashlib
import subprocess
import sys

import pytest
from support import run_cell

import jupyter_mlops as mlops
from jupyter_mlops.errors import NotFoundError
from jupyter_mlops.tracking.fileread import start_reading, stop_reading


def git(repo, *args):
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,
                          text=True).stdout.strip()


def git_repository(repo, monkeypatch):
    """A git repository with a data folder, the working directory of the test; DVC, when
    it runs, sends nothing and writes nothing outside the test's folder."""
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    monkeypatch.setenv("DO_NOT_TRACK", "1")
    for setting in ("DVC_SITE_CACHE_DIR", "DVC_GLOBAL_CONFIG_DIR", "DVC_SYSTEM_CONFIG_DIR"):
        monkeypatch.setenv(setting, str(repo.parent / setting.lower()))
    (repo / "data").mkdir(parents=True)
    monkeypatch.chdir(repo)
    git(repo, "init", "-q")
    git(repo, "config", "user.email", "a@example.org")
    git(repo, "config", "user.name", "A")
    return repo


def dvc_file(data: bytes, name: str) -> str:
    md5 = hashlib.md5(data).hexdigest()
    return f"outs:\n- md5: {md5}\n  size: {len(data)}\n  hash: md5\n  path: {name}\n"


def test_a_file_under_dvc_is_recorded_with_its_md5_and_revision(store, tmp_path, monkeypatch):
    repo = git_repository(tmp_path / "repo", monkeypatch)
    train = b"x,y\n1,2\n3,4\n"
    (repo / "data" / "train.csv").write_bytes(train)
    (repo / "data" / "train.csv.dvc").write_text(dvc_file(train, "train.csv"))
    prepared = b"x\n5\n"
    (repo / "data" / "prepared.csv").write_bytes(prepared)
    (repo / "dvc.lock").write_text(
        "schema: '2.0'\nstages:\n  prepare:\n    cmd: python prepare.py\n    outs:\n"
        f"    - path: data/prepared.csv\n      hash: md5\n"
        f"      md5: {hashlib.md5(prepared).hexdigest()}\n      size: {len(prepared)}\n")
    (repo / ".gitignore").write_text("/data/train.csv\n/data/prepared.csv\n")
    git(repo, "add", ".gitignore", "data/train.csv.dvc")  # dvc.lock is left uncommitted
    git(repo, "commit", "-qm", "data")
    head = git(repo, "rev-parse", "HEAD")
    (repo / "plain.txt").write_text("not under DVC")

    with mlops.start_run() as run:
        start_reading(store)
        for name in ("data/train.csv", "data/prepared.csv", "plain.txt"):
            with open(name, "rb") as handle:
                handle.read()
        stop_reading(store, run.run_id)

    rows = {path: (md5, rev) for path, md5, rev in store.query(
        "SELECT path, md5, rev FROM dvc_files ORDER BY path")}
    assert rows == {"data/train.csv": (hashlib.md5(train).hexdigest(), head),
                    "data/prepared.csv": (hashlib.md5(prepared).hexdigest(), None)}
    kept = {name for (name,) in store.query(
        "SELECT rd.name FROM run_datasets rd JOIN kept_data k USING (fingerprint) "
        "WHERE rd.run_id = ?", (run.run_id,))}
    # The committed one is not copied; the one whose dvc.lock is not committed is.
    assert kept == {"data/prepared.csv", "plain.txt"}
    assert mlops.get_dataset(f"{run.run_id}:data/prepared.csv") == prepared
    # The .dvc file was written by hand: DVC's cache does not hold the bytes.
    call = rf"dvc\.api\.read\('data/train\.csv'.*rev='{head}'"
    with pytest.raises(NotFoundError, match="could not read it .*" + call):
        mlops.get_dataset(f"{run.run_id}:data/train.csv")
    with monkeypatch.context() as without_dvc:
        without_dvc.setitem(sys.modules, "dvc", None)
        without_dvc.setitem(sys.modules, "dvc.api", None)
        with pytest.raises(NotFoundError, match="Install DVC .*" + call):
            mlops.get_dataset(f"{run.run_id}:data/train.csv")
    # A file changed since `dvc add` holds bytes DVC does not: it is kept as any file.
    (repo / "data" / "train.csv").write_bytes(b"x,y\n9,9\n")
    with mlops.start_run() as later:
        start_reading(store)
        open("data/train.csv", "rb").close()
        stop_reading(store, later.run_id)
    assert mlops.get_dataset(f"{later.run_id}:data/train.csv") == b"x,y\n9,9\n"


@pytest.mark.filterwarnings("ignore:_NoneStep:DeprecationWarning")
def test_a_file_dvc_added_comes_back_through_dvc_api(shell, tmp_path, monkeypatch):
    """Real DVC: `dvc init` and `dvc add` in a git repository (local cache, no remote); a
    tracked cell reads the file, which is then changed and removed in the workspace, and
    get_dataset gets the exact bytes the cell read back through dvc.api."""
    pytest.importorskip("dvc.api", reason="DVC is in the test extra")
    repo = git_repository(tmp_path / "repo", monkeypatch)

    from dvc.repo import Repo

    Repo.init(str(repo))
    train = b"x,y\n1,2\n3,4\n5,6\n"
    (repo / "data" / "train.csv").write_bytes(train)
    with Repo(str(repo)) as dvc:
        dvc.add("data/train.csv")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "data under DVC")
    head = git(repo, "rev-parse", "HEAD")

    result = run_cell(shell, "%%track\nimport pandas as pd\n"
                             "train = pd.read_csv('data/train.csv')\n")
    assert result.success
    store = mlops.get_store()
    run_id = mlops.search_runs()["run_id"][0]
    fp = hashlib.sha256(train).hexdigest()[:32]
    assert store.query("SELECT md5, path, rev FROM dvc_files WHERE fingerprint = ?",
                       (fp,)) == [(hashlib.md5(train).hexdigest(), "data/train.csv", head)]
    assert store.query("SELECT 1 FROM kept_data WHERE fingerprint = ?", (fp,)) == []

    (repo / "data" / "train.csv").write_bytes(b"x,y\n9,9\n")  # changed in the workspace
    assert mlops.get_dataset(f"{run_id}:data/train.csv") == train
    (repo / "data" / "train.csv").unlink()  # and gone
    written = mlops.get_dataset(f"{run_id}:data/train.csv", to=tmp_path / "back.csv")
    assert written.read_bytes() == train
