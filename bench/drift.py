"""Drift benchmark: jupyter_mlops against Evidently's data-drift report and a plain scipy loop.

Run it from the repository root::

    python bench/drift.py                   # the three sizes of the issue
    python bench/drift.py --quick           # small sizes, to check that it works
    python bench/drift.py --json results.json

Evidently (0.7) needs ``pandas<3``, which this project does not pin, so it lives in an
environment of its own; point ``EVIDENTLY_PYTHON`` at that interpreter, e.g.::

    python3 -m venv ~/evidently-venv
    ~/evidently-venv/bin/pip install 'pandas<3' evidently scipy
    EVIDENTLY_PYTHON=~/evidently-venv/bin/python python bench/drift.py

Without it, the Evidently contender is skipped with a message. The data (seeded, some
columns shifted, some not) are written once as ``.npy`` files to a temporary directory;
every contender runs in a fresh process that loads them into the same DataFrames, so each
pays for its own imports and holds the same data, and its peak memory is its own.

Contenders, on each data set:

- ``jupyter_mlops``: ``drift_report(reference, current)`` with default tests, stored in a
  fresh store (fingerprints included); then the same against a prebuilt reference profile.
- Evidently: ``Report([DataDriftPreset()]).run(current, reference)``.
- scipy loop: per numeric column ``scipy.stats.wasserstein_distance / std(reference)``, per
  categorical column ``scipy.spatial.distance.jensenshannon`` of the value shares (the
  tests Evidently picks for references above 1,000 rows).

Each timed call is preceded by an untimed call on a 2,000-row slice (lazy imports), then
timed ``--repeats`` times (median; Evidently once above 200,000 rows: it is slow). Verdicts
per column are compared with Evidently's. Nothing here asserts on time.
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

from _common import (  # noqa: E402
    Row,
    _run,
    bench_env,
    emit,
    environment,
    median,
    peak_rss_mib,
    print_table,
    rss_mib,
    run_worker,
    scratch_dir,
    write_json,
)

SCRIPT = Path(__file__).resolve()
EVIDENTLY_ENV = "EVIDENTLY_PYTHON"
SIZES = {
    "100k x 20 num + 5 cat": (100_000, 20, 5),
    "200k x 20 num": (200_000, 20, 0),
    "1M x 20 num": (1_000_000, 20, 0),
}
QUICK_SIZES = {"5k x 6 num + 2 cat": (5_000, 6, 2), "20k x 6 num": (20_000, 6, 0)}
WARMUP_ROWS = 2_000
CATEGORIES = ["alpha", "beta", "gamma", "delta", "eps", "zeta"]


# -- the data ----------------------------------------------------------------------------

def write_data(folder: Path, rows: int, n_num: int, n_cat: int, seed: int = 0) -> None:
    """Reference and current sets: per five numeric columns, one unchanged, one shifted
    well below the drift threshold, one right at it (a coin flip that both tools must
    call the same way) and two clearly moved; every other categorical column moved."""
    import numpy as np

    rng = np.random.default_rng(seed)
    shapes = [
        lambda n, m: rng.normal(0.04 * m, 1.0, n),        # small shift: below 0.1 normed
        lambda n, m: rng.lognormal(0.25 * m, 0.6, n),     # moved
        lambda n, m: rng.uniform(0.0, 1.0 + 0.4 * m, n),  # moved
        lambda n, m: rng.exponential(1.0, n),             # unchanged
        lambda n, m: rng.normal(0.1 * m, 1.0, n),         # at the threshold
    ]
    for side, moved in (("reference", 0), ("current", 1)):
        numbers = np.empty((n_num, rows))
        for i in range(n_num):
            numbers[i] = shapes[i % len(shapes)](rows, moved)
        np.save(folder / f"{side}_num.npy", numbers)  # one row per column: contiguous columns
        cats = np.empty((n_cat, rows), dtype="<U8")
        for j in range(n_cat):
            p = np.array([30, 25, 20, 12, 8, 5], dtype=float)
            if moved and j % 2 == 0:
                p = p[::-1]
            cats[j] = rng.choice(CATEGORIES, rows, p=p / p.sum())
        np.save(folder / f"{side}_cat.npy", cats)


def load_frames(folder: str, rows: int | None = None):
    import numpy as np
    import pandas as pd

    frames = []
    for side in ("reference", "current"):
        numbers = np.load(Path(folder) / f"{side}_num.npy")
        cats = np.load(Path(folder) / f"{side}_cat.npy")
        data: dict[str, Any] = {f"num_{i}": numbers[i, :rows] for i in range(len(numbers))}
        data.update({f"cat_{j}": cats[j, :rows].astype(object) for j in range(len(cats))})
        frames.append(pd.DataFrame(data))
    return frames


def _timed(fn, repeats: int) -> tuple[list[float], Any]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return times, result


# -- workers (each in a fresh process) ------------------------------------------------------

def worker_ours(params: dict[str, Any]) -> dict[str, Any]:
    from jupyter_mlops import set_store
    from jupyter_mlops.drift import drift_profile, drift_report

    store = set_store(Path(params["store"]))
    warm_ref, warm_cur = load_frames(params["data"], WARMUP_ROWS)
    drift_report(warm_ref, warm_cur)
    ref, cur = load_frames(params["data"])
    baseline = rss_mib()
    times, report = _timed(lambda: drift_report(ref, cur), params["repeats"])
    build_times, profile = _timed(lambda: drift_profile(ref), 1)
    profile_times, via_profile = _timed(lambda: drift_report(profile, cur), params["repeats"])
    same = via_profile.columns["drifted"].tolist() == report.columns["drifted"].tolist()
    store.close()
    return {
        "times": times, "profile_build": build_times[0], "profile_times": profile_times,
        "profile_same_verdicts": same, "baseline_mib": baseline, "peak_mib": peak_rss_mib(),
        "verdicts": {r["column"]: bool(r["drifted"]) for r in report.records},
        "tests": {r["column"]: r["test"] for r in report.records},
    }


def _scipy_loop(ref, cur) -> dict[str, bool]:
    import numpy as np
    from scipy import stats
    from scipy.spatial import distance

    verdicts = {}
    for name in ref.columns:
        a, b = ref[name].to_numpy(), cur[name].to_numpy()
        if a.dtype.kind == "f":
            score = stats.wasserstein_distance(a, b) / max(float(np.std(a)), 0.001)
        else:
            keys = np.union1d(np.unique(a.astype(str)), np.unique(b.astype(str)))
            shares = [np.array([np.count_nonzero(x == k) for k in keys]) / len(x)
                      for x in (a.astype(str), b.astype(str))]
            score = distance.jensenshannon(*shares)
        verdicts[name] = bool(score >= 0.1)
    return verdicts


def worker_scipy(params: dict[str, Any]) -> dict[str, Any]:
    warm_ref, warm_cur = load_frames(params["data"], WARMUP_ROWS)
    _scipy_loop(warm_ref, warm_cur)
    ref, cur = load_frames(params["data"])
    baseline = rss_mib()
    times, verdicts = _timed(lambda: _scipy_loop(ref, cur), params["repeats"])
    return {"times": times, "baseline_mib": baseline, "peak_mib": peak_rss_mib(),
            "verdicts": verdicts}


# Evidently's verdict rule per method (its stattests compare the score this way).
_EVIDENTLY_RULES = {
    "K-S p_value": ("ks", lambda s, t: s <= t),
    "chi-square p_value": ("chisquare", lambda s, t: s < t),
    "Z-test p_value": ("ztest", lambda s, t: s < t),
    "Wasserstein distance (normed)": ("wasserstein", lambda s, t: s >= t),
    "Jensen-Shannon distance": ("jensenshannon", lambda s, t: s >= t),
}


def worker_evidently(params: dict[str, Any]) -> dict[str, Any]:
    import warnings

    warnings.filterwarnings("ignore")
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    def run(ref, cur):
        snapshot = Report([DataDriftPreset()]).run(
            current_data=Dataset.from_pandas(cur, data_definition=DataDefinition()),
            reference_data=Dataset.from_pandas(ref, data_definition=DataDefinition()))
        return snapshot.dict()

    warm_ref, warm_cur = load_frames(params["data"], WARMUP_ROWS)
    run(warm_ref, warm_cur)
    ref, cur = load_frames(params["data"])
    baseline = rss_mib()
    times, result = _timed(lambda: run(ref, cur), params["repeats"])
    verdicts, tests = {}, {}
    for metric in result["metrics"]:
        config = metric.get("config", {})
        if config.get("type", "").endswith("ValueDrift"):
            name, rule = _EVIDENTLY_RULES[config["method"]]
            verdicts[config["column"]] = bool(rule(metric["value"], config["threshold"]))
            tests[config["column"]] = name
    import evidently

    return {"times": times, "baseline_mib": baseline, "peak_mib": peak_rss_mib(),
            "verdicts": verdicts, "tests": tests, "version": evidently.__version__}


WORKERS = {"ours": worker_ours, "scipy": worker_scipy, "evidently": worker_evidently}


# -- the run ---------------------------------------------------------------------------

def _agreement(ours: dict[str, bool], theirs: dict[str, bool]) -> tuple[int, int, list[str]]:
    shared = [c for c in theirs if c in ours]
    differ = [c for c in shared if ours[c] != theirs[c]]
    return len(shared) - len(differ), len(shared), differ


def measure(label: str, rows: int, n_num: int, n_cat: int, repeats: int, tmp: Path,
            evidently_python: str | None) -> tuple[list[Row], dict[str, Any]]:
    folder = tmp / label.replace(" ", "_")
    folder.mkdir()
    write_data(folder, rows, n_num, n_cat)
    env = bench_env(tmp, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    base = {"data": str(folder), "repeats": repeats}
    ours = run_worker(SCRIPT, "ours", {**base, "store": str(folder / ".mlops")}, env=env)
    scipy_loop = run_worker(SCRIPT, "scipy", base, env=env)
    evidently = None
    if evidently_python:
        ev_repeats = 1 if rows > 200_000 else repeats
        evidently = _run([evidently_python, str(SCRIPT), "--worker", "evidently", "--params",
                          json.dumps({**base, "repeats": ev_repeats})], env, None, 3600)
    t_ours, t_scipy = median(ours["times"]), median(scipy_loop["times"])
    t_profile = median(ours["profile_times"])
    rows_out = []
    if evidently is not None:
        t_ev = median(evidently["times"])
        agree, total, differ = _agreement(ours["verdicts"], evidently["verdicts"])
        same_tests = sum(ours["tests"].get(c) == t for c, t in evidently["tests"].items())
        rows_out += [
            Row(f"{label}: time vs Evidently", "s", t_ours, t_ev, ">= 10x", min_ratio=10),
            Row(f"{label}: peak memory vs Evidently", "MiB", ours["peak_mib"],
                evidently["peak_mib"], "<= Evidently", min_ratio=1,
                note=f"process peaks; data loaded: ours {ours['baseline_mib']:.0f} MiB, "
                     f"Evidently {evidently['baseline_mib']:.0f} MiB"),
            Row(f"{label}: verdicts equal to Evidently's", "columns", agree, total,
                f"all {total}", better="none", equals=total,
                note=(f"same test chosen for {same_tests} of {len(evidently['tests'])}"
                      + (f"; differ on {differ}" if differ else ""))),
        ]
    rows_out += [
        Row(f"{label}: time vs scipy loop", "s", t_ours, t_scipy, ">= 1x", min_ratio=1),
        Row(f"{label}: with a reference profile", "s", t_profile, t_ours, "faster",
            min_ratio=1, note=f"profile built once in {ours['profile_build']:.3g} s; "
                              f"same verdicts: {ours['profile_same_verdicts']}"),
    ]
    agree_scipy, total_scipy, _ = _agreement(ours["verdicts"], scipy_loop["verdicts"])
    details = {"ours": ours, "scipy": scipy_loop, "evidently": evidently,
               "scipy_verdicts_agree": f"{agree_scipy}/{total_scipy}"}
    return rows_out, details


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", choices=sorted(WORKERS))
    parser.add_argument("--params", default="{}")
    parser.add_argument("--quick", action="store_true", help="small sizes, to check it works")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args(argv)
    if args.worker:
        emit(WORKERS[args.worker](json.loads(args.params)))
        return 0

    evidently_python = os.environ.get(EVIDENTLY_ENV)
    if not evidently_python:
        print(f"{EVIDENTLY_ENV} is not set: skipping the Evidently contender. Point it at a "
              "Python with evidently and pandas<3 installed (see the top of this file).")
    sizes = QUICK_SIZES if args.quick else SIZES
    rows: list[Row] = []
    details: dict[str, Any] = {}
    with scratch_dir("bench-drift-") as tmp:
        for label, (n, n_num, n_cat) in sizes.items():
            print(f"measuring {label} ...", flush=True)
            found, detail = measure(label, n, n_num, n_cat, args.repeats, Path(tmp),
                                    evidently_python)
            rows += found
            details[label] = detail
    print()
    print_table(rows, anchor_name="Evidently / scipy loop")
    versions = {}
    for detail in details.values():
        if detail["evidently"]:
            versions["evidently"] = detail["evidently"]["version"]
    if args.json:
        write_json(args.json, rows, environment=environment(**versions), details=details)
    missed = [r.workload for r in rows if r.met is False]
    if missed:
        print(f"\nTargets missed: {', '.join(missed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
