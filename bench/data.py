"""Kept data benchmark: keeping, appending to and getting back a 1,000,000 × 20 DataFrame.

Run it from the repository root::

    python bench/data.py                 # 1,000,000 × 20, as the issue asks
    python bench/data.py --quick         # 100,000 × 20, to check that it works
    python bench/data.py --json results.json
    python bench/data.py --dvc /tmp/dvcenv/bin/dvc   # and `dvc add` of the same data as CSV

Workloads (medians of ``--repeats`` runs, in one warm process; each keep goes to a fresh
store, so no chunk is found already stored; ours and pandas' calls alternate, with the CPU
seconds of every thread beside the wall time):

- keep: ``keep_data`` of the frame (Parquet row chunks, each hashed and written through a
  temporary file) against ``df.to_parquet(path)`` alone, in time and bytes;
- append 1 %: the grown frame kept into the same store: bytes of the new chunks against
  the first copy's bytes;
- get back: ``get_dataset(fingerprint)`` (the frame's fingerprint recomputed and compared)
  and with ``verify=False`` (each chunk's sha256 checked instead), against
  ``pd.read_parquet`` of the file ``to_parquet`` wrote;
- file reads: the time file-read tracking adds to a cell that reads 1,000 small files
  (audit hook on, then each file hashed, kept and linked to a run).

``dvc add`` of the same data as CSV is measured with the ``dvc`` given by ``--dvc PATH`` (or
on the PATH), else skipped with a message: in a fresh ``dvc init --no-scm`` folder each time,
the CSV write and ``dvc add`` timed apart, and the bytes DVC's cache then holds. DVC is not
a dependency: give it an environment of its own::

    python3 -m venv /tmp/dvcenv && /tmp/dvcenv/bin/pip install dvc
    python bench/data.py --dvc /tmp/dvcenv/bin/dvc

Nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import Row, environment, median, print_table, scratch_dir, write_json  # noqa: E402


def make_frame(rows: int, columns: int = 20, seed: int = 0):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    data = {f"f{i}": rng.normal(size=rows) for i in range(columns - 4)}
    data.update(i0=rng.integers(0, 1000, rows), i1=rng.integers(0, 10, rows).astype("int32"),
                c0=pd.Categorical(rng.choice(["a", "b", "c", "d"], rows)),
                b0=rng.random(rows) > 0.5)
    return pd.DataFrame(data)


def chunk_bytes(store, fingerprint: str) -> dict[str, int]:
    return dict(store.query("SELECT sha256, size FROM kept_chunks WHERE fingerprint = ?",
                            (fingerprint,)))


def measure(rows: int, repeats: int, folder: Path, dvc: str | None = None) -> list[Row]:
    import pandas as pd

    from jupyter_mlops.store import Store
    from jupyter_mlops.store import current
    from jupyter_mlops.tracking import keeping, storage
    from jupyter_mlops.tracking.datasets import fingerprint
    from jupyter_mlops.tracking.getdata import get_dataset

    frame = make_frame(rows)
    grown = pd.concat([frame, make_frame(rows // 100, seed=1)], ignore_index=True)
    info, grown_info = fingerprint(frame), fingerprint(grown)
    fp_time = median([_timed(lambda: fingerprint(frame)) for _ in range(repeats)])

    # to_parquet and keep alternate, so that a load on the machine falls on both alike; CPU
    # seconds (of every thread) beside the wall time, as they move less with that load.
    parquet = folder / "frame.parquet"
    writes: dict[str, list[tuple[float, float]]] = {"parquet": [], "keep": []}
    store = None
    for i in range(repeats):
        writes["parquet"].append(_timed_cpu(lambda: frame.to_parquet(parquet)))
        store = Store(folder / f"store{i}")
        with store.write() as conn:
            storage.write_datasets(conn, [("frame", "input", info), ("grown", "input",
                                                                     grown_info)], None)
        writes["keep"].append(_timed_cpu(lambda: keeping.keep_data(store, info, frame)))
    to_parquet = median([w for w, _ in writes["parquet"]])
    keep_times = [w for w, _ in writes["keep"]]
    keep_cpu, parquet_cpu = (median([c for _, c in writes[k]]) for k in ("keep", "parquet"))
    parquet_bytes = parquet.stat().st_size
    first = chunk_bytes(store, info["fingerprint"])
    kept_total = sum(first.values())
    keeping.keep_data(store, grown_info, grown)
    second = chunk_bytes(store, grown_info["fingerprint"])
    added = sum(size for sha, size in second.items() if sha not in first)

    current.set_store(store.path)
    # Interleaved, so that a load on the machine falls on both sides alike; CPU seconds (of
    # every thread) beside the wall time, as they move less with that load.
    timings: dict[str, list[tuple[float, float]]] = {"read": [], "got": [], "fast": []}
    for _ in range(repeats):
        timings["read"].append(_timed_cpu(lambda: pd.read_parquet(parquet)))
        timings["got"].append(_timed_cpu(lambda: get_dataset(info["fingerprint"])))
        timings["fast"].append(_timed_cpu(lambda: get_dataset(info["fingerprint"],
                                                              verify=False)))
    read_parquet, got, got_fast = (median([w for w, _ in timings[k]])
                                   for k in ("read", "got", "fast"))
    cpu = {k: median([c for _, c in v]) for k, v in timings.items()}
    assert get_dataset(info["fingerprint"]).equals(frame)

    reads = file_reads(folder, store)
    current.reset_store()

    size = f"{rows:,} × 20"
    judged = rows >= 1_000_000
    table = [
        Row(f"keep {size} (time)", "s", keep_times and median(keep_times), to_parquet,
            target="≤ 1.3× to_parquet", min_ratio=1 / 1.3, judged=judged,
            note=f"CPU seconds: {keep_cpu:.2f} against {parquet_cpu:.2f} "
                 f"({keep_cpu / parquet_cpu:.2f}×); fingerprint (computed by tracking anyway, "
                 f"not included): {fp_time:.2f} s; {len(first)} chunks"),
        Row(f"keep {size} (bytes)", "MB", kept_total / 1e6, parquet_bytes / 1e6,
            target="≤ 1.05× to_parquet", min_ratio=1 / 1.05, judged=judged),
        Row("append 1 % rows, keep again: bytes added", "% of first copy",
            100 * added / kept_total, better="none", target="≤ 3 %", max_ours=3.0,
            judged=judged, note=f"{added / 1e6:.2f} MB in {len(set(second) - set(first))} "
                                "new chunks"),
        Row(f"get_dataset {size} (fingerprint checked)", "s", got, read_parquet,
            target="≤ 1.5× read_parquet", min_ratio=1 / 1.5, judged=judged,
            note=f"CPU seconds: {cpu['got']:.2f} against {cpu['read']:.2f} "
                 f"({cpu['got'] / cpu['read']:.2f}×)"),
        Row(f"get_dataset {size} (chunk sha256 only)", "s", got_fast, read_parquet,
            target="≤ 1.5× read_parquet", min_ratio=1 / 1.5, judged=judged,
            note=f"CPU seconds: {cpu['fast']:.2f} against {cpu['read']:.2f} "
                 f"({cpu['fast'] / cpu['read']:.2f}×)"),
        Row("cell reading 1,000 small files kept before: added time", "s",
            reads["tracked"] - reads["plain"], better="none",
            note=f"plain {reads['plain'] * 1e3:.0f} ms, tracked {reads['tracked'] * 1e3:.0f} ms "
                 "(hook, hashing, linking)"),
        Row("cell reading 1,000 new small files: added time", "s",
            reads["first"] - reads["plain"], better="none",
            note="each new file is also written to the store: file creation dominates"),
    ]
    table += dvc_rows(frame, folder, median(keep_times), kept_total, dvc,
                      min(repeats, 3))
    return table


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _timed_cpu(fn) -> tuple[float, float]:
    """Wall and CPU seconds (all threads of the process) of one call."""
    start, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - start, time.process_time() - cpu


def file_reads(folder: Path, store) -> dict[str, float]:
    """A loop reading 1,000 small files, plain and with file-read tracking around it."""
    from jupyter_mlops import start_run
    from jupyter_mlops.tracking.fileread import start_reading, stop_reading

    files = folder / "small"
    files.mkdir()
    for i in range(1000):
        (files / f"{i}.txt").write_text(f"row {i}\n" * 20)
    os.chdir(folder)

    def read_all() -> None:
        for i in range(1000):
            with open(files / f"{i}.txt") as handle:
                handle.read()

    plain = median([_timed(read_all) for _ in range(3)])
    tracked = []
    for _ in range(4):  # the first keeps 1,000 new files; the others find them kept
        with start_run() as run:
            start = time.perf_counter()
            start_reading(store)
            read_all()
            stop_reading(store, run.run_id)
            tracked.append(time.perf_counter() - start)
    return {"plain": plain, "first": tracked[0], "tracked": median(tracked[1:])}


def dvc_rows(frame, folder: Path, keep: float, kept_bytes: int, dvc: str | None,
             repeats: int) -> list[Row]:
    """``dvc add`` of the frame written as CSV, each time in a fresh ``dvc init --no-scm``
    folder: the CSV write and ``dvc add`` timed apart, and the bytes DVC's cache holds."""
    dvc = dvc or shutil.which("dvc")
    if dvc is None:
        print("No dvc command (give --dvc PATH, or put dvc on the PATH): the `dvc add` "
              "comparison is skipped.", file=sys.stderr)
        return []
    env = dict(os.environ, DVC_NO_ANALYTICS="1")
    version = subprocess.run([dvc, "--version"], capture_output=True, text=True, env=env,
                             check=True).stdout.strip()
    timings: dict[str, list[float]] = {"init": [], "csv": [], "add": []}
    csv_bytes = cache = 0
    for i in range(repeats):
        work = folder / f"dvc{i}"
        work.mkdir()
        timings["init"].append(_timed(lambda: subprocess.run(
            [dvc, "init", "-q", "--no-scm"], cwd=work, check=True, env=env)))
        timings["csv"].append(_timed(lambda: frame.to_csv(work / "frame.csv", index=False)))
        timings["add"].append(_timed(lambda: subprocess.run(
            [dvc, "add", "-q", "frame.csv"], cwd=work, check=True, env=env)))
        csv_bytes = (work / "frame.csv").stat().st_size
        cache = sum(p.stat().st_size for p in (work / ".dvc" / "cache").rglob("*")
                    if p.is_file())
        shutil.rmtree(work)  # a CSV and its cached copy: hundreds of MB each
    init, csv, add = (median(timings[k]) for k in ("init", "csv", "add"))
    rows = f"{len(frame):,} × {frame.shape[1]}"
    return [
        Row(f"keep {rows} vs writing it as CSV + `dvc add`", "s", keep, csv + add,
            note=f"DVC {version}, medians of {repeats}: `dvc init --no-scm` {init:.2f} s "
                 "(once per project, not included), CSV write "
                 f"{csv:.2f} s, `dvc add` {add:.2f} s"),
        Row(f"keep {rows} vs `dvc add` alone (the CSV already on disk)", "s", keep, add),
        Row(f"keep {rows} (bytes) vs DVC's cache", "MB", kept_bytes / 1e6, cache / 1e6,
            note=f"the CSV itself: {csv_bytes / 1e6:.0f} MB, also left in the workspace"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", default=None)
    parser.add_argument("--dvc", default=None, metavar="PATH",
                        help="the dvc executable to compare with (default: dvc on the PATH)")
    args = parser.parse_args()
    rows = 100_000 if args.quick else 1_000_000
    with scratch_dir("bench-data-") as tmp:
        os.environ["JUPYTER_MLOPS_STORE"] = str(Path(tmp) / "default-store")
        table = measure(rows, args.repeats, Path(tmp), args.dvc)
        os.chdir(Path(__file__).resolve().parents[1])
    print_table(table, anchor_name="pandas/pyarrow")
    if args.json:
        import pandas
        import pyarrow

        write_json(args.json, table, environment=environment(
            pandas=pandas.__version__, pyarrow=pyarrow.__version__))


if __name__ == "__main__":
    main()
