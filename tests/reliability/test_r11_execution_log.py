"""R11: every executed cell is logged, in order, through a real kernel.

The latency side of R11 (capture adds < 2 ms median) is measured by bench/tracking.py,
not asserted here: tests carry no timing assertions.
"""

import pytest

from jupyter_mlops.tracking.runner import collect, execute_request
from jupyter_mlops.store import Store
from jupyter_mlops.tracking import storage

pytestmark = [pytest.mark.reliability, pytest.mark.kernel, pytest.mark.timeout(300)]


def test_a_thousand_cells_are_logged_completely_and_in_order(kernel, tmp_path, scale):
    cells_run = scale.cells  # a thousand; ten thousand with --soak
    kernel.execute("%load_ext jupyter_mlops")
    client = kernel.client
    # Send them all at once, as "Run All" does; the kernel queues them.
    ids = [execute_request(client, f"x_{i % 7} = {i}", f"cell-{i % 50}") for i in range(cells_run)]
    nested = execute_request(client, "%%capture out\nget_ipython().run_cell('inner = 1')", "c")
    for msg_id in [*ids, nested]:
        reply, _ = collect(client, msg_id, 60)
        assert reply["status"] == "ok"
    kernel.execute("%unload_ext jupyter_mlops")
    kernel.execute("after_unload = 1")

    store = Store(tmp_path / ".mlops", read_only=True)
    cells = storage.cells(store)
    store.close()
    # The %load_ext cell, those, the %%capture cell, the %unload_ext cell.
    assert len(cells) == cells_run + 3
    assert cells[0].source == "%load_ext jupyter_mlops"
    cells = cells[1:]
    counts = [c.execution_count for c in cells]
    assert counts == sorted(counts) and len(set(counts)) == len(counts)
    assert [c.source for c in cells[:cells_run]] == [f"x_{i % 7} = {i}" for i in range(cells_run)]
    assert [c.cell_id for c in cells[:3]] == ["cell-0", "cell-1", "cell-2"]
    assert all(c.status == "ok" for c in cells)
    assert not any("after_unload" in c.source for c in cells)
