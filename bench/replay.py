"""Replay benchmark: how long ``replay(verify=True)`` takes against the time the model's
cells took, on the test corpus's notebooks (written the way public notebooks are).

    python bench/replay.py                          # three notebooks, 3 verifications each
    python bench/replay.py --all                    # every notebook of tests/corpus
    python bench/replay.py --only pdsh_digits --rounds 5 --json replay.json

Each notebook is copied to a scratch folder and run top to bottom in a real kernel (the
cells a user ran, in the order the notebook's metadata gives), which registers its models.
Then, for every model:

- **cells**: the time the executions of its replay slice took in that kernel, the issue's
  yardstick ("under 2x the time its cells took");
- **plain script**: the same slice as a script, run by a fresh ``python`` in a copy of the
  notebook's folder, nothing else: what anyone re-running the cells pays;
- **verify**: ``replay(uri, verify=True)`` end to end (the script cut and checked, the
  scratch folder filled, a fresh interpreter running the slice under the write guard, the
  registered model loaded and both predicting), split into its parts.

Medians over ``--rounds``. Nothing asserts on time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import environment, median, scratch_dir  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "corpus"
DEFAULT = ["duration_prediction", "pdsh_digits", "xgboost_example"]


def run_corpus_notebook(name: str, folder: Path) -> None:
    import nbformat

    from jupyter_mlops.tracking.runner import run_notebook

    shutil.copytree(CORPUS, folder, ignore=shutil.ignore_patterns(
        "__pycache__", ".mlops", "mlruns", "catboost_info"))
    path = folder / f"{name}.ipynb"
    notebook = nbformat.read(path, as_version=4)
    index = {cell.get("id"): i for i, cell in enumerate(notebook.cells)}
    order = [index[c] for c in notebook.metadata["corpus"].get("order", [])] or None
    outcomes = run_notebook(path, order=order, timeout=600, env={
        "JUPYTER_MLOPS_STORE": str(folder / ".mlops"),
        "MLFLOW_TRACKING_URI": (folder.parent / "mlruns").as_uri(),
        "MLFLOW_ALLOW_FILE_STORE": "true"})
    failed = [(o.cell_id, o.error) for o in outcomes if o.error and not o.expected_error]
    if failed:
        raise RuntimeError(f"{name}: cells failed: {failed}")


def plain_run(source: str, folder: Path, scratch: Path) -> float:
    """Seconds a fresh ``python`` takes to run ``source`` in a copy of ``folder``."""
    work = scratch / "plain"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(folder, work, ignore=shutil.ignore_patterns(".mlops", "__pycache__"))
    script = work / "replay_plain.py"
    # A script has no display(): the notebook's cells may call it.
    script.write_text("def display(*a, **k):\n    pass\n" + source, encoding="utf-8")
    # The user's own home (and so matplotlib's font cache), as when re-running cells.
    env = dict(os.environ, MPLBACKEND="Agg",
               MLFLOW_TRACKING_URI=(scratch / "plain-mlruns").as_uri(),
               MLFLOW_ALLOW_FILE_STORE="true", JUPYTER_MLOPS_STORE=str(scratch / "plain-store"))
    started = time.perf_counter()
    done = subprocess.run([sys.executable, str(script)], cwd=work, env=env,
                          capture_output=True, text=True, timeout=900)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"plain run failed: {done.stderr[-2000:]}")
    return elapsed


def measure(name: str, rounds: int) -> list[dict]:
    import jupyter_mlops as mlops
    from jupyter_mlops.store import Store

    rows = []
    with scratch_dir("bench-replay-") as tmp:
        folder = Path(tmp) / "project"
        run_corpus_notebook(name, folder)
        store = Store(folder / ".mlops")
        try:
            models = [m for (m,) in store.query("SELECT name FROM models ORDER BY name")]
            for model in models:
                verify, parts = [], []
                for _ in range(rounds):
                    started = time.perf_counter()
                    script = mlops.replay(model, verify=True, store=store)
                    verify.append(time.perf_counter() - started)
                    details = script.verification.details
                    if not script.verification.ok:
                        raise RuntimeError(f"{model}: {script.verification.message}")
                    parts.append(details)
                cells = sum(e.duration_s or 0 for e in script.executions)
                plain = [plain_run(script.source, folder, Path(tmp)) for _ in range(rounds)]
                row = {
                    "notebook": name, "model": model, "executions": len(script.executions),
                    "cells_s": cells, "plain_s": median(plain), "verify_s": median(verify),
                    "process_s": median([p["seconds"] for p in parts]),
                    "script_s": median([p["script_s"] for p in parts]),
                    "compare_s": median([p["compare_s"] for p in parts]),
                    # each round's own remainder, then their median (medians do not add up)
                    "outside_s": median([v - p["seconds"] for v, p in zip(verify, parts)]),
                    "startup_s": median([p["seconds"] - p["script_s"] - p["compare_s"]
                                         for p in parts]),
                }
                rows.append(row)
                print(f"  {model}: cells {cells:.2f} s, plain {row['plain_s']:.2f} s, verify "
                      f"{row['verify_s']:.2f} s", flush=True)
        finally:
            store.close()
    return rows


def print_rows(rows: list[dict]) -> None:
    header = ["notebook", "model", "cells", "plain script", "verify", "verify / cells",
              "verify / plain", "in the replay process: start and exit, script, compare",
              "outside it (cut, checks, scratch copy)"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        print(f"| {r['notebook']} | {r['model']} | {r['cells_s']:.2f} s | {r['plain_s']:.2f} s "
              f"| {r['verify_s']:.2f} s | {r['verify_s'] / r['cells_s']:.2f}× "
              f"| {r['verify_s'] / r['plain_s']:.2f}× | {r['startup_s']:.2f} / "
              f"{r['script_s']:.2f} / {r['compare_s']:.2f} s | {r['outside_s']:.2f} s |")
    if rows:
        by_cells = sorted(r["verify_s"] / r["cells_s"] for r in rows)
        by_plain = sorted(r["verify_s"] / r["plain_s"] for r in rows)
        print(f"\nverify / cells: median {median(by_cells):.2f}×, range {by_cells[0]:.2f}–"
              f"{by_cells[-1]:.2f}× (target < 2×); verify / plain script: median "
              f"{median(by_plain):.2f}×, range {by_plain[0]:.2f}–{by_plain[-1]:.2f}×")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--all", action="store_true", help="every notebook of tests/corpus")
    parser.add_argument("--only", help="comma-separated notebook names")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", help="write the rows to this file")
    args = parser.parse_args()
    names = (sorted(p.stem for p in CORPUS.glob("*.ipynb")) if args.all
             else args.only.split(",") if args.only else DEFAULT)
    rows = []
    for name in names:
        print(f"{name}:", flush=True)
        rows += measure(name, args.rounds)
    print()
    print_rows(rows)
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "environment": environment()},
                                              indent=2) + "\n")


if __name__ == "__main__":
    main()
