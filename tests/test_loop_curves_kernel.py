"""Loop curves in a real ipykernel: tracebacks, top-level await and magics stay as they were."""

import re

import pytest

from jupyter_mlops.store import Store
from jupyter_mlops.tracking import storage
from support import stream_text

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(180)]

ANSI = re.compile(r"\x1b\[[0-9;]*m")

FAILING_LOOP = """
import math
history = []
for epoch in range(5):
    loss = 1.0 / (epoch + 1)
    history.append(loss)
    if epoch == 3:
        values = math.log(-loss)
"""


def stored_runs(tmp_path):
    store = Store(tmp_path / ".mlops")
    try:
        return {run.name: run for run in (storage.get_run(store, i) for (i,) in store.query(
            "SELECT run_id FROM runs ORDER BY start_time"))}
    finally:
        store.close()


def traceback_text(reply):
    text = ANSI.sub("", "\n".join(reply["traceback"]))
    return re.sub(r"Cell In\[\d+\]", "Cell In[N]", text)


def test_a_traceback_inside_a_captured_loop_is_the_cells_own(kernel, tmp_path):
    kernel.execute("%load_ext jupyter_mlops")
    plain, _ = kernel.execute("# the same cell, untracked" + FAILING_LOOP)
    tracked, _ = kernel.execute("%%track -n failing" + FAILING_LOOP)
    assert plain["status"] == tracked["status"] == "error"
    assert tracked["ename"] == "ValueError"
    assert traceback_text(tracked) == traceback_text(plain)
    assert "line 8" in traceback_text(tracked)  # math.log(-loss), counted from %%track
    assert "values = math.log(-loss)" in traceback_text(tracked)
    run = stored_runs(tmp_path)["failing"]
    assert run.status == "FAILED"
    assert [m.step for m in run.metric_history("loss")] == [0, 1, 2, 3]
    assert "line 8" in run.traceback


def test_top_level_await_inside_a_captured_loop(kernel, tmp_path):
    kernel.execute("%load_ext jupyter_mlops")
    reply, _ = kernel.execute("""%%track -n awaiting
import asyncio
for epoch in range(3):
    await asyncio.sleep(0)
    loss = await asyncio.sleep(0, result=0.5 ** epoch)
""")
    assert reply["status"] == "ok"
    run = stored_runs(tmp_path)["awaiting"]
    assert [(m.step, m.value) for m in run.metric_history("loss")] == [
        (0, 1.0), (1, 0.5), (2, 0.25)]


def test_a_loop_in_a_cell_with_other_magics(kernel, tmp_path):
    kernel.execute("%load_ext jupyter_mlops")
    reply, outputs = kernel.execute("""%%track -n magics
%time warmup = sum(range(10))
for epoch in range(3):
    loss = 1.0 / (epoch + 1)
    print(f"epoch {epoch}: {loss:.2f}")
%who_ls
""")
    assert reply["status"] == "ok"
    out = stream_text(outputs)
    assert "epoch 2: 0.33" in out and "Wall time" in out
    result = [m for m in outputs if m["msg_type"] == "execute_result"][0]
    assert "jupyter_mlops" not in result["content"]["data"]["text/plain"]  # hidden names
    reply, _ = kernel.execute("""%%track -n captured
%%capture captured
for epoch in range(2):
    acc = 0.5 + epoch / 4
    print(acc)
""")
    assert reply["status"] == "ok"
    runs = stored_runs(tmp_path)
    assert [m.step for m in runs["magics"].metric_history("loss")] == [0, 1, 2]
    assert [(m.step, m.value) for m in runs["captured"].metric_history("acc")] == [
        (0, 0.5), (1, 0.75)]
    reply, outputs = kernel.execute("print(captured.stdout.split())")
    assert "['0.5', '0.75']" in stream_text(outputs)
