"""``%%sweep --jobs 2``: trials in two worker kernels given the notebook's state by replay,
children of one parent in the same store; a worker that dies is reported and its trial run
once more; an interrupt kills the running trials and keeps the finished ones."""

import time

import pytest

from jupyter_mlops.store import Store
from support import Kernel, stream_text

SETUP = """%load_ext jupyter_mlops
import os, time
from sklearn.datasets import load_iris
from sklearn.tree import DecisionTreeClassifier
X, y = load_iris(return_X_y=True)
"""

# The trial with depth 2 kills its worker kernel the first time it runs.
DIES_ONCE = """%%sweep depth=[1, 2, 3, 4] --jobs 2 --maximize acc --name par
depth = 1
if depth == 2 and not os.path.exists("died-once"):
    open("died-once", "w").close()
    os._exit(1)
model = DecisionTreeClassifier(max_depth=depth, random_state=0).fit(X, y)
acc = model.score(X, y)
"""

SLOW = """%%sweep depth=[1, 2, 3, 4, 5, 6, 7, 8] --jobs 2 --maximize acc --name slow
depth = 1
time.sleep(1.5)
acc = DecisionTreeClassifier(max_depth=depth, random_state=0).fit(X, y).score(X, y)
"""


def query(path, sql, params=()):
    store = Store(path, read_only=True)
    try:
        return store.query(sql, params)
    finally:
        store.close()


def trials(path, parent, status=None):
    return query(path, "SELECT run_id, status, session_id, cell_id FROM runs "
                       "WHERE parent_run_id = ?" + (" AND status = ?" if status else ""),
                 (parent, status) if status else (parent,))


@pytest.fixture(scope="module")
def notebook(tmp_path_factory):
    folder = tmp_path_factory.mktemp("jobs")
    kernel = Kernel(folder / ".mlops", folder)
    kernel.folder = folder
    kernel.path = folder / ".mlops"
    reply, _ = kernel.execute(SETUP, cell_id="setup-cell")
    assert reply["status"] == "ok", reply
    assert kernel.execute("unused = [i for i in range(3)]")[0]["status"] == "ok"
    yield kernel
    kernel.shutdown()


def test_trials_run_in_worker_kernels_and_a_dead_worker_is_retried_once(notebook):
    reply, outputs = notebook.execute(DIES_ONCE, cell_id="sweep-cell", timeout=180)
    assert reply["status"] == "ok", reply
    text = stream_text(outputs)
    assert "worker kernel running trial 1 died" in text
    shown = stream_text(notebook.execute(
        "r = _; v = r.register('iris-par'); import jupyter_mlops as mlops\n"
        "print(r.run_id, r.status, r.best_params['depth'], v.cell is not None)\n"
        "s = str(mlops.replay('iris-par'))\n"
        "print('max_depth=depth' in s and 'depth = 4' in s and 'load_iris(' in s\n"
        "      and '%%track' not in s and 'unused' not in s)")[1])
    parent, status, depth, lineage, replayed = shown.split()
    assert (status, depth, lineage, replayed) == ("FINISHED", "4", "True", "True")
    runs = trials(notebook.path, parent)
    finished = [r for r in runs if r[1] == "FINISHED"]
    # The best trial's replay is cut from its worker's history: the data cell and the
    # trial (its literal replaced), not the cells it did not need (verified in test_sweep).
    # Four trials finished; the one whose kernel died is a KILLED run of its own.
    assert len(finished) == 4 and [r[1] for r in runs].count("KILLED") == 1
    main_session = query(notebook.path, "SELECT session_id FROM runs WHERE run_id = ?",
                         (parent,))[0][0]
    # Real worker kernels, sessions of their own; trial 1 ran again in another kernel.
    assert main_session not in {r[2] for r in runs}
    ((killed, first),) = [(r[0], r[2]) for r in runs if r[1] == "KILLED"]
    (retry,) = query(notebook.path, "SELECT r.session_id FROM runs r JOIN tags t USING "
                     "(run_id) WHERE t.key = 'sweep.trial' AND t.value = '1' AND "
                     "r.status = 'FINISHED' AND r.parent_run_id = ?", (parent,))
    assert retry[0] != first
    assert {r[3] for r in finished} == {"sweep-cell"}
    # A worker was given only the cells the trial cell needs, not the others.
    (worker_cells,) = {tuple(s for (s,) in query(
        notebook.path, "SELECT source FROM cells WHERE session_id = ? ORDER BY id",
        (finished[0][2],)))}
    assert any("load_iris(return_X_y=True)" in s for s in worker_cells)
    assert not any("unused" in s for s in worker_cells)


def test_an_interrupt_kills_the_running_trials_and_keeps_the_finished_ones(notebook):
    from jupyter_mlops.tracking.runner import collect, execute_request

    msg_id = execute_request(notebook.client, SLOW, "slow-cell")

    def parent():
        rows = query(notebook.path, "SELECT run_id FROM runs WHERE name = 'slow'")
        return rows[0][0] if rows else None

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = parent()
        if found and len(trials(notebook.path, found, "FINISHED")) >= 1 and len(
                trials(notebook.path, found, "RUNNING")) == 2:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the sweep never had two trials running")
    notebook.manager.interrupt_kernel()
    reply, _ = collect(notebook.client, msg_id, 60)
    assert reply["status"] == "error" and reply["ename"] == "KeyboardInterrupt"
    found = parent()
    statuses = [r[1] for r in trials(notebook.path, found)]
    assert "RUNNING" not in statuses and statuses.count("KILLED") >= 1
    assert statuses.count("FINISHED") >= 1 and len(statuses) < 8
    assert query(notebook.path, "SELECT status FROM runs WHERE run_id = ?",
                 (found,))[0][0] == "KILLED"
    # The kernel lives on, and the table on the parent keeps the finished trials.
    reply, outputs = notebook.execute("print(1 + 1)")
    assert reply["status"] == "ok" and stream_text(outputs).strip() == "2"


# Trials 6 to 8 of seed 3 draw an lr far below the first five's: the pruner stops them.
PRUNED = """%%sweep lr=uniform(0, 1) -n 9 --jobs 2 --method tpe --seed 3 --maximize score --name pruned
lr = 0.5
for step in range(40):
    score = lr * step
    time.sleep(0.005)
"""


def test_the_sweep_prunes_trials_running_in_worker_kernels(notebook):
    """The workers hand each step's score to the sweep, whose Optuna pruner stops the
    trials behind the others: PRUNED trials, runs KILLED and tagged as in the kernel."""
    reply, _ = notebook.execute(PRUNED, cell_id="pruned-cell", timeout=180)
    assert reply["status"] == "ok", reply
    shown = stream_text(notebook.execute(
        "r = _\nprint(r.run_id, r.status, ','.join(t.status for t in r.trials))")[1])
    parent, status, statuses = shown.split()
    statuses = statuses.split(",")
    assert status == "FINISHED" and len(statuses) == 9 and "PRUNED" in statuses
    assert statuses[:5] == ["FINISHED"] * 5  # the pruner waits for five trials
    pruned = query(notebook.path, "SELECT r.status, t.value, r.error FROM runs r JOIN tags t "
                   "ON t.run_id = r.run_id AND t.key = 'sweep.pruned' "
                   "WHERE r.parent_run_id = ?", (parent,))
    assert len(pruned) == statuses.count("PRUNED")
    assert all(s == "KILLED" and v.isdigit() and "pruned at step" in e for s, v, e in pruned)
    # A pruned trial stopped early: its loop curve ends before the last step.
    steps = query(notebook.path, "SELECT MAX(m.step) FROM metrics m JOIN tags t ON "
                  "t.run_id = m.run_id AND t.key = 'sweep.pruned' JOIN runs r ON "
                  "r.run_id = m.run_id WHERE r.parent_run_id = ? AND m.key = 'score' "
                  "GROUP BY m.run_id", (parent,))
    assert steps and all(s < 39 for (s,) in steps)
    assert not (notebook.path / "sweeps").exists()  # the steps' folder went with the sweep
