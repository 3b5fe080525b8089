"""Kept data: the bytes behind a fingerprint, deduplicated by chunk, and got back exactly."""

import os
import warnings

import numpy as np
import pandas as pd
import pytest

import jupyter_mlops as mlops
from jupyter_mlops.errors import IntegrityError, NotFoundError, ValidationError
from jupyter_mlops.tracking import keeping
from jupyter_mlops.tracking.datapolicy import DataPolicy, parse_size
from support import run_cell


def frame(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = pd.DataFrame(rng.normal(size=(rows, 4)), columns=list("abcd"))
    data["n"] = rng.integers(0, 100, rows).astype("int32")
    data["city"] = pd.Categorical(rng.choice(["Lyon", "Oslo", "Kyiv"], rows))
    data["when"] = pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(
        rng.integers(0, 10**6, rows), unit="s")
    return data


def chunk_shas(store, fingerprint):
    return [s for (s,) in store.query(
        "SELECT sha256 FROM kept_chunks WHERE fingerprint = ? ORDER BY seq", (fingerprint,))]


def test_a_frame_comes_back_exactly_with_its_index_and_dtypes(store):
    data = frame(5000).set_index(pd.RangeIndex(100, 5100, name="row"))
    with mlops.start_run() as run:
        fp = mlops.log_dataset(data, "train", role="train")
        mlops.log_dataset(data["city"], "city")
        mlops.log_dataset(np.arange(24, dtype="int16").reshape(4, 6), "grid")
    back = mlops.get_dataset(fp)
    pd.testing.assert_frame_equal(back, data, check_exact=True)
    assert back.index.name == "row" and back["when"].dtype == data["when"].dtype
    pd.testing.assert_series_equal(mlops.get_dataset(f"{run.run_id}:city"), data["city"])
    grid = mlops.get_dataset(f"{run.run_id[:8]}:grid")
    assert grid.dtype == np.int16 and grid.shape == (4, 6)
    # The role names the data too.
    pd.testing.assert_frame_equal(mlops.get_dataset(f"{run.run_id}:train"), data)


def test_appending_rows_stores_only_the_new_chunks(store):
    first = frame(200_000)
    grown = pd.concat([first, frame(2_000, seed=1)], ignore_index=True)
    with mlops.start_run():
        fp1 = mlops.log_dataset(first, "v1")
        fp2 = mlops.log_dataset(grown, "v2")
    one, two = chunk_shas(store, fp1), chunk_shas(store, fp2)
    assert len(one) > 3
    assert two[:-1] == one[:-1] and two[-1] != one[-1]
    sizes = dict(store.query("SELECT sha256, size FROM kept_chunks"))
    added = sum(sizes[s] for s in set(two) - set(one))
    assert added < 0.1 * sum(sizes[s] for s in one)
    pd.testing.assert_frame_equal(mlops.get_dataset(fp2), grown)


def test_the_same_data_read_by_many_runs_is_stored_once(store):
    data = frame(3000)
    for _ in range(3):
        with mlops.start_run():
            mlops.log_dataset(data, "train")
    assert store.query("SELECT count(*) FROM kept_data")[0][0] == 1
    files = [p for p in (store.path / "artifacts").rglob("*") if p.is_file()]
    assert len(files) == len(set(chunk_shas(store, mlops.get_run(
        mlops.search_runs()["run_id"][0]).inputs[0].fingerprint)))


def test_caps_fingerprint_only_with_a_one_line_note(store):
    mlops.set_data_policy(max_dataset_bytes="10KB")
    with pytest.warns(UserWarning, match="fingerprinted only.*max_dataset_bytes"):
        with mlops.start_run() as run:
            fp = mlops.log_dataset(frame(5000), "big")
    assert mlops.get_run(run.run_id).inputs[0].fingerprint == fp
    with pytest.raises(NotFoundError, match="were not kept"):
        mlops.get_dataset(fp)
    mlops.set_data_policy(max_dataset_bytes="1GB", max_store_bytes=1000)
    with pytest.warns(UserWarning, match="at most 1,000 bytes"):
        with mlops.start_run():
            mlops.log_dataset(frame(100), "small")
    mlops.set_data_policy(keep=False, max_store_bytes="1GB")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with mlops.start_run():
            fp = mlops.log_dataset(frame(100, seed=3), "off")
    assert not keeping.is_kept(store, fp)


def test_a_frame_parquet_cannot_hold_is_fingerprinted_only_and_nothing_is_stored(store):
    odd = pd.DataFrame({"x": [1, "two", {"three": 3}] * 10})  # Parquet has no such column
    with pytest.warns(UserWarning, match=r"odd is fingerprinted only: its content cannot be "
                                         r"written as Parquet \(Arrow"):
        with mlops.start_run():
            fp = mlops.log_dataset(odd, "odd")
    assert not keeping.is_kept(store, fp)
    assert store.query("SELECT count(*) FROM kept_chunks")[0][0] == 0
    assert not [p for p in (store.path / "artifacts").rglob("*") if p.is_file()]


def test_the_policy_is_stored_documented_and_checked(store):
    assert mlops.get_data_policy() == DataPolicy()
    assert "256 MiB a dataset, 2 GiB in all" in DataPolicy().describe()
    policy = mlops.set_data_policy(max_store_bytes="5 GiB", folders=["/data"])
    assert policy.max_store_bytes == 5 * 2**30 and policy.folders == ("/data",)
    assert mlops.get_data_policy() == policy
    assert mlops.set_data_policy(reset=True) == DataPolicy()
    assert parse_size("1.5k", "x") == 1536
    with pytest.raises(ValidationError, match="a size such as 256MB"):
        mlops.set_data_policy(max_dataset_bytes="lots")
    with pytest.raises(ValidationError, match="True or False"):
        mlops.set_data_policy(keep="yes")


def test_data_that_no_longer_matches_is_refused_with_the_difference(store):
    data = frame(3000)
    with mlops.start_run():
        fp = mlops.log_dataset(data, "train")
    # Another frame's chunks put in place of this one's (the store's rows edited by hand).
    with mlops.start_run():
        other = mlops.log_dataset(data.assign(a=data["a"] + 1), "other")
    with store.write() as conn:
        conn.execute("DELETE FROM kept_chunks WHERE fingerprint = ?", (fp,))
        conn.execute("UPDATE kept_chunks SET fingerprint = ? WHERE fingerprint = ?", (fp, other))
    with pytest.raises(IntegrityError, match="no longer matches its fingerprint.*values"):
        mlops.get_dataset(fp)
    # A chunk changed on disk is refused by its own sha256: one that still decodes (another
    # frame's chunk written over it) once the fingerprint differs, one that does not at once.
    with mlops.start_run():
        third = mlops.log_dataset(data.assign(b=0), "third")
    sha = chunk_shas(store, fp)[0]
    path = store.artifacts.path_for(sha)
    os.chmod(path, 0o600)
    kept = path.read_bytes()
    path.write_bytes(store.artifacts.path_for(chunk_shas(store, third)[0]).read_bytes())
    with pytest.raises(IntegrityError, match="changed on disk"):
        mlops.get_dataset(fp)
    path.write_bytes(kept)
    path.write_bytes(path.read_bytes()[:-3] + b"xyz")
    with pytest.raises(IntegrityError, match="changed on disk"):
        mlops.get_dataset(fp)


def test_bad_references_say_how_to_name_data(store):
    with mlops.start_run() as run:
        mlops.log_dataset(frame(10), "train")
    with pytest.raises(ValidationError, match="RUN:name"):
        mlops.get_dataset("train")
    with pytest.raises(NotFoundError, match="it read: train"):
        mlops.get_dataset(f"{run.run_id}:test")


def test_to_writes_the_data_back(store, tmp_path):
    data = frame(100)
    with mlops.start_run():
        fp = mlops.log_dataset(data, "train")
    written = mlops.get_dataset(fp, to=tmp_path / "out" / "train.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(written), data)
    assert not [p for p in written.parent.iterdir() if p.name.startswith(".")]


def test_a_tracked_cell_keeps_its_inputs_and_its_files(shell, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = frame(2000)
    data.to_csv("train.csv", index=False)
    data.to_parquet("train.parquet")
    (tmp_path / "notes.txt").write_text("hello")
    np.save("grid.npy", np.eye(3))
    shell.user_ns["X0"] = data
    result = run_cell(shell, "%%track\n"
                      "import pandas as pd, numpy as np\n"
                      "a = pd.read_csv('train.csv')\n"
                      "b = pd.read_parquet('train.parquet')\n"
                      "g = np.load('grid.npy')\n"
                      "with open('notes.txt') as f:\n    text = f.read()\n"
                      "with open('written.txt', 'w') as f:\n    f.write('out')\n"
                      "n = len(X0)\n")
    assert result.success
    run = mlops.get_run(mlops.search_runs()["run_id"][0])
    files = {i.name: i for i in run.inputs if i.role == "file"}
    assert set(files) == {"train.csv", "train.parquet", "grid.npy", "notes.txt"}
    assert [i.name for i in run.inputs if i.role == "input"] == ["X0"]
    pd.testing.assert_frame_equal(mlops.get_dataset(f"{run.run_id}:X0"), data)
    original = (tmp_path / "train.csv").read_bytes()
    frame(10, seed=9).to_csv("train.csv", index=False)  # the file changes on disk
    assert mlops.get_dataset(f"{run.run_id}:train.csv") == original
    assert mlops.get_dataset(f"{run.run_id}:{tmp_path / 'train.csv'}") == original
    (mtime,) = mlops.get_store().query(
        "SELECT mtime FROM run_datasets WHERE run_id = ? AND name = 'notes.txt'",
        (run.run_id,))[0]
    assert mtime == pytest.approx(os.stat("notes.txt").st_mtime)
    # An untracked cell reads files unnoticed; nothing is left wrapped.
    import pyarrow.parquet as pq

    assert not getattr(pq.read_table, "_jupyter_mlops_reads", False)


def test_file_tracking_can_be_turned_off(shell, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.txt").write_text("x")
    mlops.set_data_policy(track_files=False)
    run_cell(shell, "%%track\ntext = open('a.txt').read()\n")
    run = mlops.get_run(mlops.search_runs()["run_id"][0])
    assert [i for i in run.inputs if i.role == "file"] == []
