"""The scratch folder replay verification runs in: a copy of the notebook's folder that the
script may change, and a guard that keeps it from changing anything else."""

import os

import pytest

from jupyter_mlops.registry import scratch as scratch_module
from jupyter_mlops.registry.scratch import Guard, Scratch


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.setattr(scratch_module, "COPY_LIMIT", 100)
    source = tmp_path / "project"
    (source / "data").mkdir(parents=True)
    (source / "data" / "small.csv").write_text("a,b\n1,2\n")
    (source / "data" / "big.csv").write_text("x" * 500)
    (source / "model.json").write_text("y" * 500)
    (source / ".mlops").mkdir()
    (source / ".mlops" / "mlops.db").write_text("store")
    return source


def test_the_copy_links_large_files_and_copies_the_rest(project, tmp_path):
    box = Scratch(tmp_path / "scratch")
    box.mirror(project, "df = read('data/big' + '.csv')\nbst.save_model('model.json')")
    work = box.work
    assert not (work / "data" / "small.csv").is_symlink()
    assert (work / "data" / "small.csv").read_text() == "a,b\n1,2\n"
    assert (work / "data" / "big.csv").is_symlink()  # large: read in place
    assert not (work / "model.json").is_symlink()  # named by the script: a copy, C may write it
    assert not (work / ".mlops").exists()  # our store is never part of the copy


def test_the_guard_copies_a_linked_file_before_it_is_written(project, tmp_path):
    box = Scratch(tmp_path / "scratch")
    box.mirror(project, "")
    guard = Guard(str(box.root))
    linked = box.work / "data" / "big.csv"
    guard("open", (str(linked), "a", os.O_WRONLY | os.O_APPEND | os.O_CREAT))
    assert not linked.is_symlink() and linked.read_text() == "x" * 500
    linked.write_text("changed")
    assert (project / "data" / "big.csv").read_text() == "x" * 500
    guard("open", (str(box.work / "new.txt"), "w", os.O_WRONLY | os.O_CREAT))
    guard("open", (str(project / "data" / "big.csv"), "r", os.O_RDONLY))  # reading: fine


@pytest.mark.parametrize("event", [
    ("open", ("{outside}", "w", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)),
    ("os.remove", ("{outside}", -1)),
    ("os.rename", ("{inside}", "{outside}", -1, -1)),
    ("shutil.rmtree", ("{project}", None)),
    ("sqlite3.connect", ("{outside}",)),
])
def test_the_guard_refuses_changes_outside(project, tmp_path, event):
    box = Scratch(tmp_path / "scratch")
    guard = Guard(str(box.root))
    paths = {"outside": str(project / "model.json"), "inside": str(box.work / "a"),
             "project": str(project)}
    name, args = event
    with pytest.raises(PermissionError, match="only inside its scratch folder"):
        guard(name, tuple(a.format(**paths) if isinstance(a, str) else a for a in args))
    guard.active = False
    guard(name, tuple(a.format(**paths) if isinstance(a, str) else a for a in args))


def test_home_temp_and_tracking_stores_point_into_the_scratch_folder(tmp_path):
    box = Scratch(tmp_path / "scratch")
    env = box.environment({"HOME": "/home/someone", "JPY_SESSION_NAME": "nb.ipynb",
                           "MLFLOW_TRACKING_URI": "sqlite:////home/someone/mlflow.db",
                           "JUPYTER_MLOPS_STORE": "/home/someone/.mlops",
                           "XDG_CONFIG_HOME": "/home/someone/.config", "PATH": "/bin"})
    root = str(box.root)
    for key in ("HOME", "TMPDIR", "JUPYTER_MLOPS_STORE"):
        assert env[key].startswith(root), key
    assert env["MLFLOW_TRACKING_URI"] == (box.root / "mlruns").as_uri()
    assert "JPY_SESSION_NAME" not in env and "XDG_CONFIG_HOME" not in env
    assert env["PATH"] == "/bin"
