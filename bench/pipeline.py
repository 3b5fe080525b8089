"""Pipeline benchmark: re-running a 5-step pipeline cut from a notebook, against papermill
running the same notebook top to bottom.

    python bench/pipeline.py                    # 5 cached re-runs, 3 papermill runs
    python bench/pipeline.py --rounds 9 --json pipeline.json

A notebook of five cells the model depends on (read a CSV of 20,000 rows, add a feature,
split, fit a scaler, fit the model in ``%%track``) is run once in a real kernel and its
model registered; ``pipeline("demo@champion")`` cuts it into five steps. Then:

- **nothing changed**: ``Pipeline.run()`` again, end to end (parameters checked, the files'
  signatures checked, the runner process started, every step's key computed and found, the
  run recorded), and the same through ``jupyter-mlops pipeline run`` (a fresh interpreter);
- **papermill**: ``papermill.execute_notebook`` on the same notebook, in a store of its own;
- **one parameter changed**: ``run(C=…)`` with a new value each round: which steps ran.

Medians over ``--rounds``. Nothing asserts on time.
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
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from _common import QUIET_ENV, Row, environment, median, print_table, scratch_dir, write_json  # noqa: E402

CELLS = (
    "%load_ext jupyter_mlops",
    "import pandas as pd\nfrom sklearn.linear_model import LogisticRegression\n"
    "from sklearn.model_selection import train_test_split\n"
    "from sklearn.pipeline import make_pipeline\nfrom sklearn.preprocessing import StandardScaler",
    "DATA = 'data.csv'\nTEST_SIZE = 0.25\nC = 1.0",
    "df = pd.read_csv(DATA)",
    "df['ab'] = df['a'] * df['b']",
    "X_train, X_test, y_train, y_test = train_test_split(\n"
    "    df.drop(columns=['y']), df['y'], test_size=TEST_SIZE, random_state=0)",
    "scaler = StandardScaler().fit(X_train)",
    "%%track -n train\nmodel = make_pipeline(scaler, LogisticRegression(C=C, max_iter=500))\n"
    "model.fit(X_train, y_train)\naccuracy = model.score(X_test, y_test)",
    "%mlops register demo --var model --alias champion",
)


def prepare(folder: Path, rows: int) -> Path:
    import numpy as np
    import pandas as pd
    from support import write_notebook

    from jupyter_mlops.tracking.runner import run_notebook

    rng = np.random.default_rng(0)
    X = rng.normal(size=(rows, 4))
    frame = pd.DataFrame(X, columns=list("abcd"))
    frame["y"] = (X[:, 0] + X[:, 1] + 0.3 * rng.normal(size=rows) > 0).astype(int)
    frame.to_csv(folder / "data.csv", index=False)
    notebook = write_notebook(folder / "train.ipynb", *CELLS)
    outcomes = run_notebook(notebook, env={"JUPYTER_MLOPS_STORE": str(folder / ".mlops")})
    failed = [o.error for o in outcomes if o.status != "ok"]
    if failed:
        raise RuntimeError(f"the notebook failed: {failed}")
    return notebook


def papermill_run(notebook: Path, folder: Path, i: int) -> float:
    import papermill

    os.environ["JUPYTER_MLOPS_STORE"] = str(folder / f"papermill-{i}" / ".mlops")
    started = time.perf_counter()
    papermill.execute_notebook(str(notebook), str(folder / f"out-{i}.ipynb"), cwd=str(folder),
                               progress_bar=False, log_output=False, kernel_name="python3")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--papermill-rounds", type=int, default=3)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    os.environ.update(QUIET_ENV)

    import jupyter_mlops as mlops
    from jupyter_mlops.store import Store

    with scratch_dir("bench-pipeline-") as tmp:
        folder = Path(tmp)
        os.environ["JUPYTER_MLOPS_KEY_FILE"] = str(folder / "key")
        notebook = prepare(folder, args.rows)
        store = Store(folder / ".mlops")
        built = mlops.pipeline("demo@champion", store=store)
        started = time.perf_counter()
        first = built.run()
        cold = time.perf_counter() - started
        assert first.status == "FINISHED", first.error

        cached, ran_cached = [], []
        for _ in range(args.rounds):
            result = built.run()
            cached.append(result.seconds)
            ran_cached.append(len(result.ran))
        cli = []
        command = [sys.executable, "-m", "jupyter_mlops.cli", "pipeline", "run", "demo",
                   "--store", str(store.path)]
        for _ in range(args.rounds):
            started = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            cli.append(time.perf_counter() - started)
        changed, reached = [], set()
        for i in range(args.rounds):
            result = built.run(C=round(0.5 + 0.1 * i, 3))
            changed.append(result.seconds)
            reached.add(tuple(result.ran))
        verified = built.verify(first.run_id)
        steps = len(built.steps)

        shutil.rmtree(folder / ".mlops" / "pipeline-cache", ignore_errors=True)
        papermill = [papermill_run(notebook, folder, i) for i in range(args.papermill_rounds)]
        store.close()

    rows = [
        Row(f"re-run of the {steps}-step pipeline, nothing changed: `Pipeline.run()` vs "
            "papermill's full run of the notebook", "s", median(cached), median(papermill),
            target="< 1 s and ≥ 10×", min_ratio=10,
            note=f"steps run on a re-run: {sorted(set(ran_cached))} of {steps}"),
        Row("the same from a terminal: `jupyter-mlops pipeline run` (fresh interpreter)", "s",
            median(cli), median(papermill), target="< 1 s", max_ours=1.0),
        Row("one parameter changed (`C`): steps re-run", "steps",
            ", ".join(sorted({s for r in reached for s in r})) or "none", None,
            target="only the model's step", better="none",
            equals="s05_model"),
        Row("one parameter changed: `run(C=…)`, median", "s", median(changed), median(papermill),
            note="the runner imports pandas and scikit-learn to run the one step"),
        Row("first run (all five steps, model registered)", "s", cold, median(papermill),
            better="none"),
        Row("the pipeline's model vs the notebook's: `verify()`", "", verified.message, None,
            better="none"),
    ]
    print_table(rows, anchor_name="papermill")
    if args.json:
        write_json(args.json, rows, environment=environment(
            jupyter_mlops=mlops.__version__, papermill=__import__("papermill").__version__))


if __name__ == "__main__":
    main()
