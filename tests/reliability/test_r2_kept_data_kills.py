"""R2 for kept data: a SIGKILL while data is being kept leaves no row pointing at a missing
or partial chunk; every dataset recorded as kept comes back and matches its fingerprint."""

import hashlib
import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import jupyter_mlops as mlops
from jupyter_mlops.store import Store, current
from jupyter_mlops.store.gc import collect_garbage

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(300)]

CHILD = textwrap.dedent("""
    import sys
    import numpy as np, pandas as pd
    import jupyter_mlops as mlops
    mlops.set_store(sys.argv[1])
    rng = np.random.default_rng(int(sys.argv[2]))
    print("ready", flush=True)
    with mlops.start_run():
        for i in range(200):
            frame = pd.DataFrame(rng.normal(size=(40_000, 8)), columns=list("abcdefgh"))
            mlops.log_dataset(frame, f"frame{i}")
""")


@pytest.mark.parametrize("seed", range(5))
def test_a_kill_while_keeping_leaves_only_whole_chunks_behind_rows(tmp_path, seed):
    path = tmp_path / ".mlops"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path), str(seed)],
                             stdout=subprocess.PIPE, text=True,
                             env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    assert child.stdout.readline().strip() == "ready"
    time.sleep(random.Random(seed).uniform(0.8, 2.5))
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)

    store = Store(path)
    rows = store.query("SELECT fingerprint, sha256, size FROM kept_chunks")
    assert rows, "the kill came before anything was kept: nothing was tested"
    for _, sha, size in rows:
        data = store.artifacts.path_for(sha).read_bytes()
        assert len(data) == size and hashlib.sha256(data).hexdigest() == sha
    current.set_store(path)
    try:
        for (fingerprint,) in store.query("SELECT fingerprint FROM kept_data"):
            mlops.get_dataset(fingerprint)  # checked against its fingerprint
        # What the kill left half written is only ever an unreferenced file for gc.
        leftovers = collect_garbage(store, now=time.time() + 7200).files
        assert all(p.name.startswith(".incoming-") or p.name not in {r[1] for r in rows}
                   for p, _ in leftovers)
    finally:
        current.reset_store()
        store.close()
