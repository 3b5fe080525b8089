"""Dask at scale: batch scoring and drift of 10 million rows on a 2-worker LocalCluster.

Run it from the repository root::

    python bench/dask_scale.py                      # 10,000,000 rows
    python bench/dask_scale.py --rows 1000000       # smaller, to check that it works
    EVIDENTLY_PYTHON=~/evidently-venv/bin/python python bench/dask_scale.py

Scoring: a signed LogisticRegression scores a Parquet file of ``--rows`` rows × 8 features
twice, with ``score_file`` in one process (chunks of 100,000 rows) and with
``score_file(client=...)`` on ``LocalCluster(n_workers=2, threads_per_worker=1)``; the two
CSV outputs are compared byte for byte, and each worker's peak memory (its process RSS,
read by ``client.run``) is reported beside the single process's.

Drift: reference and current sets of ``--rows`` rows × 20 columns (the generator of
``bench/drift.py``: 10 numeric, 10 categorical) are made on the workers, partition by
partition, and kept there (``persist``); ``drift_report(reference, current, client=...)``
runs on them. Evidently (0.7) needs ``pandas<3`` and lives in its own environment
(``EVIDENTLY_PYTHON``, see ``bench/drift.py``); it is run on one machine on the first
``--evidently-rows`` rows (default 1,000,000: 10 million rows × 20 columns need about 16 GiB
in Evidently, which this machine does not have), and its time is scaled linearly to
``--rows`` (its cost grows at least linearly; ANCHORS.md: 65 s for 1,000,000 rows). The
verdicts of both are compared on the rows Evidently saw, and our Dask verdicts at full size
are compared with our single-machine verdicts on the same rows. Nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Row, _run, bench_env, peak_rss_mib, print_table, scratch_dir  # noqa: E402

PARTITION_ROWS = 500_000
SCRIPT = Path(__file__).resolve()
DRIFT = SCRIPT.with_name("drift.py")


def _features(seed: int, rows: int):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    data = {f"f{i}": rng.normal(i % 3, 1.0 + i / 4, rows) for i in range(8)}
    return pd.DataFrame(data)


def _drift_partition(seed: int, rows: int, moved: int):
    """One partition of bench/drift.py's data: the same shapes, a seed of its own."""
    import numpy as np
    import pandas as pd

    sys.path.insert(0, str(SCRIPT.parent))
    from drift import CATEGORIES

    rng = np.random.default_rng([seed, moved])
    shapes = [
        lambda n, m: rng.normal(0.04 * m, 1.0, n),
        lambda n, m: rng.lognormal(0.25 * m, 0.6, n),
        lambda n, m: rng.uniform(0.0, 1.0 + 0.4 * m, n),
        lambda n, m: rng.exponential(1.0, n),
        lambda n, m: rng.normal(0.1 * m, 1.0, n),
    ]
    data: dict[str, Any] = {f"num_{i}": shapes[i % 5](rows, moved) for i in range(10)}
    for j in range(10):
        p = np.array([30, 25, 20, 12, 8, 5], dtype=float)
        if moved and j % 2 == 0:
            p = p[::-1]
        data[f"cat_{j}"] = pd.Categorical(rng.choice(CATEGORIES, rows, p=p / p.sum()),
                                          categories=CATEGORIES)
    return pd.DataFrame(data)


def _worker_peaks(client) -> dict[str, float]:
    def peak() -> float:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    return client.run(peak)


def bench_scoring(rows: int, tmp: Path, client) -> tuple[list[Row], dict[str, Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from sklearn.linear_model import LogisticRegression

    import jupyter_mlops as mlops
    from jupyter_mlops.serving import score_file

    train = _features(0, 20_000)
    y = (train["f0"] + train["f3"] > 1).astype(int)
    mlops.register_model(LogisticRegression().fit(train, y), "scale", alias="champion")
    source = tmp / "in.parquet"
    with pq.ParquetWriter(source, pa.Schema.from_pandas(train, preserve_index=False)) as out:
        for start in range(0, rows, PARTITION_ROWS):
            part = _features(start + 1, min(PARTITION_ROWS, rows - start))
            out.write_table(pa.Table.from_pandas(part, preserve_index=False))
    started = time.perf_counter()
    one = score_file("scale@champion", source, tmp / "one.csv", progress=False)
    t_one = time.perf_counter() - started
    peak_one = peak_rss_mib()
    client.run(lambda: None)
    started = time.perf_counter()
    many = score_file("scale@champion", source, tmp / "many.csv", client=client)
    t_many = time.perf_counter() - started
    peaks = _worker_peaks(client)
    same = _same_bytes(tmp / "one.csv", tmp / "many.csv")
    size = (tmp / "one.csv").stat().st_size
    for name in ("one.csv", "many.csv", "in.parquet"):
        (tmp / name).unlink()
    rows_out = [
        Row(f"score {rows:,} rows: Dask vs one process", "s", ours=t_many, anchor=t_one,
            target="same bytes", better="lower",
            note=(f"outputs {'identical' if same else 'DIFFER'} ({size / 2**20:.0f} MiB CSV); "
                  f"{many.chunks} partitions")),
        Row("peak memory per worker", "MiB", ours=max(peaks.values()), anchor=peak_one,
            target="bounded", better="lower",
            note="worker RSS peaks " + ", ".join(f"{v:.0f}" for v in peaks.values())
                 + "; anchor: the single process (client side of Dask run included)"),
    ]
    return rows_out, {"one_s": t_one, "dask_s": t_many, "same_bytes": same,
                      "worker_peak_mib": peaks, "one_peak_mib": peak_one, "rows": one.rows,
                      "partitions": many.chunks}


def _same_bytes(a: Path, b: Path) -> bool:
    if a.stat().st_size != b.stat().st_size:
        return False
    with open(a, "rb") as x, open(b, "rb") as y:
        while True:
            left, right = x.read(1 << 22), y.read(1 << 22)
            if left != right:
                return False
            if not left:
                return True


def _frames(client, rows: int):
    import dask
    import dask.dataframe as dd

    sizes = [min(PARTITION_ROWS, rows - s) for s in range(0, rows, PARTITION_ROWS)]
    frames = []
    for moved in (0, 1):
        meta = _drift_partition(0, 0, moved)
        parts = [dask.delayed(_drift_partition)(i, n, moved) for i, n in enumerate(sizes)]
        frames.append(client.persist(dd.from_delayed(parts, meta=meta)))
    return frames


def bench_drift(rows: int, ev_rows: int, tmp: Path, client,
                evidently_python: str | None) -> tuple[list[Row], dict[str, Any]]:
    from distributed import wait

    from jupyter_mlops import drift_report

    ref, cur = _frames(client, rows)
    wait([ref, cur])
    started = time.perf_counter()
    report = drift_report(ref, cur, client=client)
    t_dask = time.perf_counter() - started
    ours = dict(zip(report.columns["column"], report.columns["drifted"].astype(bool)))
    details: dict[str, Any] = {"dask_s": t_dask, "verdicts": ours,
                               "worker_peak_mib": _worker_peaks(client)}
    # The same verdicts on one machine, on the rows Evidently sees.
    parts = (ev_rows + PARTITION_ROWS - 1) // PARTITION_ROWS
    small_ref = ref.partitions[:parts].compute().iloc[:ev_rows]
    small_cur = cur.partitions[:parts].compute().iloc[:ev_rows]
    local = drift_report(small_ref, small_cur)
    dask_small = drift_report(ref.partitions[:parts], cur.partitions[:parts], client=client) \
        if ev_rows % PARTITION_ROWS == 0 else local
    same_small = local.columns["statistic"].tolist() == dask_small.columns["statistic"].tolist()
    details["dask_equals_local_on_sample"] = same_small
    rows_out = []
    if evidently_python:
        folder = tmp / "evidently"
        folder.mkdir()
        _write_npy(folder, small_ref, small_cur)
        params = {"data": str(folder), "repeats": 1}
        env = bench_env(tmp)
        evidently = _run([evidently_python, str(DRIFT), "--worker", "evidently", "--params",
                          json.dumps(params)], env, None, 7200)
        t_ev = evidently["times"][0] * rows / ev_rows
        local_verdicts = dict(zip(local.columns["column"], local.columns["drifted"]))
        agree = sum(bool(local_verdicts[c]) == v for c, v in evidently["verdicts"].items())
        full_agree = sum(bool(local_verdicts[c]) == ours[c] for c in ours)
        rows_out.append(Row(
            f"drift {rows:,} × 20: Dask vs Evidently", "s", ours=t_dask, anchor=t_ev,
            target=">= 10x", better="lower", min_ratio=10,
            note=(f"Evidently timed on {ev_rows:,} rows ({evidently['times'][0]:.1f} s), "
                  f"scaled ×{rows / ev_rows:g}; verdicts agree on {agree} of "
                  f"{len(evidently['verdicts'])} columns there; our {rows:,}-row verdicts "
                  f"equal our {ev_rows:,}-row ones on {full_agree} of {len(ours)}")))
        details["evidently"] = evidently
    else:
        print("EVIDENTLY_PYTHON is not set: the Evidently contender is skipped (see the top of "
              "bench/drift.py for its environment).")
        rows_out.append(Row(f"drift {rows:,} × 20 on Dask", "s", ours=t_dask, anchor=None,
                            target=">= 10x vs Evidently", better="lower",
                            note=f"statistics equal to one machine on {ev_rows:,} rows: "
                                 f"{same_small}"))
    return rows_out, details


def _write_npy(folder: Path, ref, cur) -> None:
    """bench/drift.py's layout (one row per column), for its Evidently worker."""
    import numpy as np

    for side, frame in (("reference", ref), ("current", cur)):
        nums = [c for c in frame.columns if c.startswith("num_")]
        cats = [c for c in frame.columns if c.startswith("cat_")]
        np.save(folder / f"{side}_num.npy", np.stack([frame[c].to_numpy() for c in nums]))
        np.save(folder / f"{side}_cat.npy",
                np.stack([frame[c].astype(str).to_numpy().astype("<U8") for c in cats]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--evidently-rows", type=int, default=1_000_000)
    parser.add_argument("--only", choices=("score", "drift"))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    from distributed import Client, LocalCluster

    import jupyter_mlops as mlops

    with scratch_dir("bench-dask-") as tmp:
        tmp = Path(tmp)
        os.environ.setdefault("JUPYTER_MLOPS_KEY_FILE", str(tmp / "key"))
        mlops.set_store(tmp / ".mlops")
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                               host="127.0.0.1", dashboard_address=None, memory_limit="6GiB")
        client = Client(cluster)
        rows, details = [], {}
        try:
            if args.only in (None, "score"):
                found, details["score"] = bench_scoring(args.rows, tmp, client)
                rows += found
                if args.only is None:
                    client.restart(timeout=600)  # fresh peaks for the drift
            if args.only in (None, "drift"):
                found, details["drift"] = bench_drift(
                    args.rows, min(args.evidently_rows, args.rows), tmp, client,
                    os.environ.get("EVIDENTLY_PYTHON"))
                rows += found
        finally:
            client.close()
            cluster.close()
        print_table(rows, anchor_name="one process / Evidently")
        if args.json:
            args.json.write_text(json.dumps(details, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
