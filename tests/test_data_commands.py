"""%mlops data policy, %mlops datasets, jupyter-mlops datasets and jupyter-mlops gc."""

import os
import time

import numpy as np
import pandas as pd

import jupyter_mlops as mlops
from jupyter_mlops.cli import main
from jupyter_mlops.store.gc import collect_garbage


def test_the_data_policy_magic_shows_and_changes_it(shell, capsys):
    policy = shell.run_line_magic("mlops", "data policy")
    assert policy == mlops.DataPolicy()
    assert "256 MiB a dataset" in capsys.readouterr().out
    policy = shell.run_line_magic("mlops", "data policy --max-dataset 1GB --no-files")
    assert policy.max_dataset_bytes == 2**30 and policy.track_files is False
    assert mlops.get_data_policy() == policy
    assert "are not recorded" in capsys.readouterr().out
    assert shell.run_line_magic("mlops", "data policy --reset") == mlops.DataPolicy()


def test_datasets_are_listed_with_their_runs_and_versions(shell, capsys):
    data = pd.DataFrame({"x": np.arange(20.0)})
    shell.user_ns["data"] = data
    shell.run_cell("%%track\nn = len(data)\n", store_history=True)
    with mlops.start_run():
        mlops.log_dataset(np.arange(3), "tiny")
    mlops.set_data_policy(keep=False)
    with mlops.start_run():
        mlops.log_dataset(np.arange(4), "unkept")
    listed = shell.run_line_magic("mlops", "datasets")
    assert len(listed) == 3
    row = listed[listed["names"].apply(lambda n: n == ["data"])].iloc[0]
    assert row["kept"] and row["shape"] == (20, 1) and len(row["runs"]) == 1
    assert not listed[listed["names"].apply(lambda n: n == ["unkept"])].iloc[0]["kept"]
    capsys.readouterr()
    assert main(["datasets", "--store", str(mlops.get_store().path)]) == 0
    out = capsys.readouterr().out
    assert "fingerprint only" in out and "kept" in out and "data" in out


def test_gc_lists_unreferenced_files_and_deletes_only_when_asked(store, capsys):
    with mlops.start_run():
        kept_fp = mlops.log_dataset(pd.DataFrame({"x": range(10)}), "x")
    orphan, _ = store.artifacts.put_bytes(b"a chunk whose row was never written")
    stale = store.artifacts.root / ".incoming-abc"
    stale.write_bytes(b"half")
    old = time.time() - 7200
    for path in store.artifacts.root.rglob("*"):
        os.utime(path, (old, old))
    found = collect_garbage(store)
    assert sorted(p.name for p, _ in found.files) == sorted([orphan, ".incoming-abc"])
    assert store.artifacts.path_for(orphan).exists()  # a dry run deletes nothing
    assert main(["gc", "--dry-run", "--store", str(store.path)]) == 0
    assert "2 files" in capsys.readouterr().out and store.artifacts.path_for(orphan).exists()
    assert main(["gc", "--delete", "--store", str(store.path)]) == 0
    assert not store.artifacts.path_for(orphan).exists() and not stale.exists()
    pd.testing.assert_frame_equal(mlops.get_dataset(kept_fp), pd.DataFrame({"x": range(10)}))
    # A file just written is never taken: its row may be on its way.
    fresh, _ = store.artifacts.put_bytes(b"just stored")
    assert collect_garbage(store, delete=True).files == ()
    assert store.artifacts.path_for(fresh).exists()
