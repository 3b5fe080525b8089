"""A real ipykernel, driven over ZMQ as JupyterLab drives it (cell ids included)."""

import os
import signal
import time

import pytest

from jupyter_mlops.errors import SchemaVersionError
from jupyter_mlops.store import Store
from jupyter_mlops.tracking import storage

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(180)]

TRAIN = """%%track -n kernel-run
from sklearn.datasets import load_iris
from sklearn.tree import DecisionTreeClassifier
X, y = load_iris(return_X_y=True)
depth = 3
model = DecisionTreeClassifier(max_depth=depth, random_state=0).fit(X, y)
train_acc = model.score(X, y)
round(train_acc, 4)
"""


def runs(tmp_path, settled: int | None = None):
    """Runs by name and the captured cells, read from another process as the sidebar does.

    Cell rows are written by the kernel's capture thread just after each cell; with
    ``settled`` the read waits (up to 10 s) until that many finished rows are there.
    """
    deadline = time.monotonic() + 10
    while True:
        store = Store(tmp_path / ".mlops")
        try:
            cells = storage.cells(store)
            done = [c for c in cells if c.status != "running"]
            if settled is None or len(done) >= settled or time.monotonic() > deadline:
                return {r.name: r for r in (storage.get_run(store, i) for (i,) in store.query(
                    "SELECT run_id FROM runs ORDER BY start_time"))}, cells
        finally:
            store.close()
        time.sleep(0.02)


def test_track_failures_and_order_in_a_real_kernel(kernel, tmp_path):
    reply, _ = kernel.execute("%load_ext jupyter_mlops", cell_id="load")
    assert reply["status"] == "ok"
    reply, outputs = kernel.execute(TRAIN, cell_id="train")
    assert reply["status"] == "ok"
    results = [m for m in outputs if m["msg_type"] == "execute_result"]
    assert results[0]["content"]["data"]["text/plain"] == "0.9733"
    assert results[0]["content"]["execution_count"] == reply["execution_count"]
    reply, _ = kernel.execute("%%track -n broken\nraise RuntimeError('nope')", cell_id="bad")
    assert reply["status"] == "error" and reply["ename"] == "RuntimeError"
    reply, _ = kernel.execute("depth = 5", cell_id="load")  # back up to an earlier cell

    by_name, cells = runs(tmp_path, settled=4)
    good, bad = by_name["kernel-run"], by_name["broken"]
    assert good.status == "FINISHED" and good.cell_id == "train"
    assert good.params["depth"] == 3 and good.params["model.max_depth"] == 3
    assert good.metrics["train_acc"] == pytest.approx(0.9733, abs=1e-4)
    assert any(a.kind == "model" for a in good.artifacts)
    assert bad.status == "FAILED" and bad.error == "nope"
    # The cell that loaded the extension is the first one logged.
    assert [c.cell_id for c in cells] == ["load", "train", "bad", "load"]
    assert [c.status for c in cells] == ["ok", "ok", "error", "ok"]
    counts = [c.execution_count for c in cells]
    assert counts == sorted(counts) and len(set(counts)) == 4


def test_interrupt_marks_the_run_killed(kernel, tmp_path):
    kernel.execute("%load_ext jupyter_mlops")
    from jupyter_mlops.tracking.runner import collect, execute_request

    msg_id = execute_request(kernel.client, "%%track -n sleepy\nimport time\n"
                             "print('sleeping', flush=True)\ntime.sleep(30)", "sleep")
    # Interrupt once the body runs: IPython itself swallows (and prints) a KeyboardInterrupt
    # that lands in a pre_run_cell hook, ours or anyone's.
    deadline = time.time() + 30
    while time.time() < deadline:
        message = kernel.client.get_iopub_msg(timeout=30)
        if (message["parent_header"].get("msg_id") == msg_id
                and message["msg_type"] == "stream" and "sleeping" in message["content"]["text"]):
            break
    kernel.manager.interrupt_kernel()
    reply, _ = collect(kernel.client, msg_id, 60)
    assert reply["status"] == "error" and reply["ename"] == "KeyboardInterrupt"
    by_name, cells = runs(tmp_path, settled=1)
    assert by_name["sleepy"].status == "KILLED"
    assert cells[-1].status == "interrupted"


def test_kill_9_mid_run_leaves_a_clean_store_and_a_killed_run(kernel, tmp_path):
    kernel.execute("%load_ext jupyter_mlops\nimport jupyter_mlops as mlops")
    from jupyter_mlops.tracking.runner import execute_request

    execute_request(kernel.client, "%%track -n doomed\nimport time\nfor i in range(10**6):\n"
                    "    mlops.log_metric('loss', 1 / (i + 1))\n    time.sleep(0.001)", "loop")
    deadline = time.time() + 30
    logged = 0
    while time.time() < deadline and logged < 50:
        if not (tmp_path / ".mlops" / "mlops.db").exists():
            time.sleep(0.05)
            continue
        try:
            store = Store(tmp_path / ".mlops", read_only=True)
        except SchemaVersionError:
            time.sleep(0.05)  # the kernel is still creating the store: its migrations run
            continue
        logged = store.query("SELECT count(*) FROM metrics")[0][0]
        store.close()
        time.sleep(0.05)
    assert logged >= 50
    process = kernel.manager.provisioner.process
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    store = Store(tmp_path / ".mlops")
    assert store.query("PRAGMA integrity_check")[0][0] == "ok"
    (run_id,) = store.query("SELECT run_id FROM runs")[0]
    run = storage.get_run(store, run_id)
    assert run.status == "KILLED" and run.end_time is not None
    assert len(run.metric_history("loss")) >= 50
    assert storage.cells(store)[-1].status == "killed"
    storage.create_run(store, "f" * 32, "default", "after")  # the store takes new writes at once
    store.close()
