"""Sweeps in real kernels: a sweep whose kernel is killed resumes in the next kernel, and an
interrupt stops it cleanly (running trial KILLED, finished ones kept)."""

import os
import signal
import time

from jupyter_mlops.store import Store
from support import Kernel

SETUP = """%load_ext jupyter_mlops
from sklearn.datasets import load_iris
from sklearn.tree import DecisionTreeClassifier
X, y = load_iris(return_X_y=True)
"""

SLOW = """%%sweep depth=[1, 2, 3, 4, 5, 6] --maximize acc --name slow
import time
depth = 1
time.sleep(0.6)
acc = DecisionTreeClassifier(max_depth=depth, random_state=0).fit(X, y).score(X, y)
"""


def trials(path, status=None):
    store = Store(path, read_only=True)
    try:
        rows = store.query(
            "SELECT r.run_id, r.status, r.parent_run_id FROM runs r "
            "WHERE r.parent_run_id IS NOT NULL" + (" AND r.status = ?" if status else ""),
            (status,) if status else ())
    finally:
        store.close()
    return rows


def wait_for(predicate, seconds=60.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


def test_a_sweep_killed_with_its_kernel_resumes_in_the_next_one(tmp_path):
    path = tmp_path / ".mlops"
    first = Kernel(path, tmp_path)
    try:
        reply, _ = first.execute(SETUP)
        assert reply["status"] == "ok"
        from jupyter_mlops.tracking.runner import execute_request

        execute_request(first.client, SLOW)
        wait_for(lambda: len(trials(path, "FINISHED")) >= 2)
        process = first.manager.provisioner.process
        os.kill(process.pid, signal.SIGKILL)  # as an OOM kill or a crash would
        process.wait(timeout=30)
    finally:
        first.shutdown()
    done_before = {r for r, _, _ in trials(path, "FINISHED")}
    (parent,) = {p for _, _, p in trials(path)}

    second = Kernel(path, tmp_path)
    try:
        assert second.execute(SETUP)[0]["status"] == "ok"
        reply, outputs = second.execute(SLOW + "\n", timeout=120)
        assert reply["status"] == "ok", reply
        shown = second.execute("r = _; print(r.resumed, r.run_id, r.status)")[1]
    finally:
        second.shutdown()
    text = "".join(m["content"].get("text", "") for m in shown)
    assert text.split() == ["True", parent, "FINISHED"]
    # The live view is a display of its own, and the result renders as HTML with the trials.
    views = [m["content"]["data"] for m in outputs if m["msg_type"] == "display_data"]
    assert views and "Sweep slow" in views[0]["text/html"]
    (final,) = [m["content"]["data"] for m in outputs if m["msg_type"] == "execute_result"]
    assert "6 of 6 trials" in final["text/html"] and "<svg" in final["text/html"]
    finished = trials(path, "FINISHED")
    # The trials finished before the kill are kept, not run again: six in all, one parent.
    assert len(finished) == 6 and done_before <= {r for r, _, _ in finished}
    assert {p for _, _, p in trials(path)} == {parent}
    store = Store(path)
    try:
        depths = store.query(
            "SELECT p.value FROM params p JOIN runs r USING (run_id) WHERE p.key = 'depth' "
            "AND r.status = 'FINISHED' AND r.parent_run_id = ?", (parent,))
        (status,) = store.query("SELECT status FROM runs WHERE run_id = ?", (parent,))[0]
    finally:
        store.close()
    assert sorted(int(d) for (d,) in depths) == [1, 2, 3, 4, 5, 6]
    assert status == "FINISHED"


def test_an_interrupt_kills_the_running_trial_and_keeps_the_finished_ones(tmp_path):
    path = tmp_path / ".mlops"
    kernel = Kernel(path, tmp_path)
    try:
        assert kernel.execute(SETUP)[0]["status"] == "ok"
        from jupyter_mlops.tracking.runner import collect, execute_request

        msg_id = execute_request(kernel.client, SLOW)
        wait_for(lambda: len(trials(path, "FINISHED")) >= 1
                 and len(trials(path, "RUNNING")) == 1)
        kernel.manager.interrupt_kernel()
        reply, _ = collect(kernel.client, msg_id, 60)
        assert reply["status"] == "error" and reply["ename"] == "KeyboardInterrupt"
        assert kernel.execute("1")[0]["status"] == "ok"  # the kernel lives on
    finally:
        kernel.shutdown()
    assert len(trials(path, "KILLED")) == 1
    assert len(trials(path, "FINISHED")) >= 1
    assert not trials(path, "RUNNING")
    store = Store(path)
    try:
        ((status,),) = store.query("SELECT status FROM runs WHERE parent_run_id IS NULL")
    finally:
        store.close()
    assert status == "KILLED"
