"""The environment of a kernel session: distributions, Python, platform and git state."""

import json
import platform
import subprocess
import sys
from importlib.metadata import distributions

import pytest

import jupyter_mlops as mlops
from jupyter_mlops.tracking.environment import (
    canonical,
    git_state,
    installed_distributions,
    session_environment,
)
from jupyter_mlops.tracking.capture import current_session_id, flush_capture
from support import HOSTILE, assert_inert, run_cell, stream_text


def git(folder, *args):
    return subprocess.run(["git", *args], cwd=folder, check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path):
    folder = tmp_path / "project"
    folder.mkdir()
    git(folder, "init", "-q", "-b", "main")
    git(folder, "config", "user.email", "someone@example.org")
    git(folder, "config", "user.name", "Someone")
    (folder / "train.py").write_text("print('v1')\n")
    git(folder, "add", "train.py")
    git(folder, "commit", "-q", "-m", "first")
    return folder


def test_distributions_match_importlib_metadata():
    expected = {}
    for dist in distributions():
        expected.setdefault(canonical(dist.metadata["Name"]), dist.version)
    found = {canonical(name): version for name, version in installed_distributions().items()}
    assert found == expected
    assert found["scikit-learn"] == __import__("sklearn").__version__


def test_git_state_of_a_real_repository(repo, tmp_path):
    head = git(repo, "rev-parse", "HEAD")
    assert git_state(repo) == {"commit": head, "branch": "main", "dirty": False}
    (repo / "notes.txt").write_text("untracked files are not part of the commit\n")
    assert git_state(repo)["dirty"] is False
    (repo / "train.py").write_text("print('v2')\n")
    assert git_state(repo) == {"commit": head, "branch": "main", "dirty": True}
    sub = repo / "notebooks"
    sub.mkdir()
    assert git_state(sub)["commit"] == head  # the repository holding the folder
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q")
    assert git_state(empty) == {"commit": None, "branch": git(empty, "branch",
                                                             "--show-current") or None,
                                "dirty": False}


def test_no_repository_or_no_git_gives_nothing(tmp_path, monkeypatch, capfd):
    outside = tmp_path / "outside"
    outside.mkdir()
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    assert git_state(outside) is None
    monkeypatch.setenv("PATH", str(tmp_path / "no-such-bin"))
    assert git_state(outside) is None
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""


def test_the_session_records_its_environment_once(shell, repo, monkeypatch):
    monkeypatch.chdir(repo)
    (repo / "train.py").write_text("print('changed')\n")
    run_cell(shell, "x = 1")
    run_cell(shell, "%%track -n fit\ny = 2")
    run_cell(shell, "z = 3")
    flush_capture()
    store = mlops.get_store()
    assert store.query("SELECT count(*) FROM environments")[0][0] == 1
    environment = session_environment(store, current_session_id())
    assert environment.git_commit == git(repo, "rev-parse", "HEAD")
    assert environment.git_branch == "main" and environment.git_dirty is True
    assert environment.python == platform.python_version()
    assert environment.packages["scikit-learn"] == __import__("sklearn").__version__
    assert environment.vouched

    (run_id,) = mlops.search_runs()["run_id"]
    run = mlops.get_run(run_id)
    assert run.environment == environment
    assert "Environment" in run._repr_html_() and environment.git_commit in run._repr_html_()
    shown = shell.run_line_magic("mlops", f"env {run_id[:8]}")
    assert shown == environment
    assert shell.run_line_magic("mlops", "env") == environment
    assert "scikit-learn" in shown._repr_html_()

    shown = subprocess.run([sys.executable, "-m", "jupyter_mlops.cli", "show", run_id,
                            "--store", str(store.path)], capture_output=True, text=True,
                           timeout=120, check=True).stdout
    assert f"Python {platform.python_version()}" in shown and environment.git_commit in shown
    assert "system   system.process_memory_peak_megabytes = " in shown


def test_the_record_is_shared_and_signed(shell, store):
    run_cell(shell, "x = 1")
    run_cell(shell, "%unload_ext jupyter_mlops")
    run_cell(shell, "%load_ext jupyter_mlops")  # a new session on the same interpreter
    run_cell(shell, "y = 2")
    flush_capture()
    sessions = store.query("SELECT environment FROM sessions")
    assert len(sessions) == 2 and sessions[0] == sessions[1]
    (digest, data, signature), = store.query("SELECT sha256, data, hmac FROM environments")
    assert signature and json.loads(data)["python"] == platform.python_version()
    store.connection().execute("UPDATE environments SET data = replace(data, ?, ?)",
                               (platform.python_version(), "2.7.18"))
    environment = session_environment(store, current_session_id())
    assert environment.python == "2.7.18" and not environment.vouched


def test_env_of_a_session_without_a_record_says_so(shell, store):
    with mlops.start_run("from a script") as run:
        mlops.log_metric("x", 1.0)
    with pytest.raises(Exception, match="No environment is recorded for run"):
        shell.run_line_magic("mlops", f"env {run.run_id[:8]}")


def test_environment_view_escapes_the_notebook_name(shell, monkeypatch):
    monkeypatch.setenv("JUPYTER_MLOPS_NOTEBOOK", f"/tmp/{HOSTILE}.ipynb")
    run_cell(shell, "x = 1")
    assert_inert(shell.run_line_magic("mlops", "env")._repr_html_())


@pytest.mark.kernel
@pytest.mark.timeout(180)
def test_a_real_kernel_records_its_repository(tmp_path, repo):
    from support import Kernel

    kernel = Kernel(tmp_path / ".mlops", repo)
    try:
        reply, _ = kernel.execute("%load_ext jupyter_mlops")
        assert reply["status"] == "ok"
        reply, outputs = kernel.execute(
            "%%track -n k\nacc = 0.5\n", cell_id="fit")
        assert reply["status"] == "ok" and stream_text(outputs, "stderr") == ""
        reply, outputs = kernel.execute(
            "import jupyter_mlops as mlops\n"
            "e = mlops.get_run(mlops.search_runs()['run_id'][0]).environment\n"
            "print(e.git_commit, e.git_dirty, e.packages['scikit-learn'])")
        assert reply["status"] == "ok", reply
        commit, dirty, sklearn = stream_text(outputs).split()
        assert commit == git(repo, "rev-parse", "HEAD")
        assert dirty == "False"
        assert sklearn == __import__("sklearn").__version__
    finally:
        kernel.shutdown()
