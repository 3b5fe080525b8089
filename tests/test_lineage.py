"""Lineage on notebooks as people write them: each model registered from a real kernel is
linked to the executions that made it, and its replay rebuilds it (``verify=True``)."""

from __future__ import annotations

import pytest

import jupyter_mlops as mlops
from jupyter_mlops.store import Store

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(300)]


def run_cells(kernel, *cells, ok=True):
    """Run ``(cell_id, source)`` pairs; every one must succeed unless ``ok`` is False."""
    replies = []
    for cell_id, source in cells:
        reply, outputs = kernel.execute(source, cell_id=cell_id)
        if ok:
            assert reply["status"] == "ok", (source, reply, outputs)
        replies.append((reply, outputs))
    return replies


def verified(tmp_path, uri):
    """The replay of ``uri``, verified in a fresh interpreter."""
    store = Store(tmp_path / ".mlops")
    try:
        script = mlops.replay(uri, verify=True, store=store)
    finally:
        store.close()
    assert script.verification.ok, (script.verification.message, script.source,
                                    script.verification.details.get("stderr"))
    return script


def test_names_a_function_body_reads_come_with_the_function(kernel, tmp_path):
    """Data loaded through a function: the import its body reads is part of the slice."""
    run_cells(
        kernel,
        ("load", "%load_ext jupyter_mlops"),
        ("numpy", "import numpy as np"),
        ("sklearn", "from sklearn.linear_model import LinearRegression"),
        ("make", "def make_data(n):\n    X = np.linspace(0, 1, 2*n).reshape(n, 2)\n"
                 "    return X, X @ [1.0, 2.0]"),
        ("train", "%%track\nX, y = make_data(50)\nmodel = LinearRegression().fit(X, y)"),
        ("register", "%mlops register linear --var model"),
    )
    script = verified(tmp_path, "linear/1")
    assert "import numpy as np" in script.source
    assert [e.cell_id for e in script.executions] == ["numpy", "sklearn", "make", "train"]
