"""Time-travel: change the CSV on disk, still get the training rows back and replay the
model bit for bit from the kept bytes."""

import numpy as np
import pandas as pd

import jupyter_mlops as mlops
from jupyter_mlops.store import Store
from jupyter_mlops.store import current

TRAIN = """%%track -n train
import pandas as pd
from sklearn.linear_model import LogisticRegression
df = pd.read_csv('data/train.csv')
X, y = df[['a', 'b']], df['label']
model = LogisticRegression(C=0.5).fit(X, y)
"""


def write_csv(path, seed, rows=300):
    rng = np.random.default_rng(seed)
    data = pd.DataFrame({"a": rng.normal(size=rows), "b": rng.normal(size=rows)})
    data["label"] = (data["a"] + data["b"] > 0).astype(int)
    path.parent.mkdir(exist_ok=True)
    data.to_csv(path, index=False)
    return data


def test_a_changed_csv_is_restored_for_replay_and_its_rows_come_back(kernel, tmp_path):
    original = write_csv(tmp_path / "data" / "train.csv", 0)
    kernel.execute("%load_ext jupyter_mlops", cell_id="load")
    reply, outputs = kernel.execute(TRAIN, cell_id="train")
    assert reply["status"] == "ok", outputs
    reply, outputs = kernel.execute("v = %mlops register churn --alias champion",
                                    cell_id="register")
    assert reply["status"] == "ok", outputs
    kernel.shutdown()

    current.set_store(tmp_path / ".mlops")
    try:
        store = Store(tmp_path / ".mlops")
        csv = tmp_path / "data" / "train.csv"
        old_bytes = csv.read_bytes()
        write_csv(csv, 1, rows=320)  # the file on disk changes after training
        X = mlops.get_dataset("churn@champion:train")
        pd.testing.assert_frame_equal(X, original[["a", "b"]])
        run_id = mlops.get_model_version("churn@champion").run_id
        assert mlops.get_dataset(f"{run_id}:data/train.csv") == old_bytes
        plain = mlops.replay("churn@champion", verify=True, store=store).verification
        assert not plain.ok and "differs" in plain.message
        restored = mlops.replay("churn@champion", verify=True, restore_data=True,
                                store=store).verification
        assert restored.ok, restored.message
        assert "restored from kept data: data/train.csv" in restored.message
        assert restored.details["restored"] == ["data/train.csv"]
        assert csv.read_bytes() != old_bytes  # the user's file is left as it is
        # With the file gone too.
        csv.unlink()
        again = mlops.replay("churn@champion", verify=True, restore_data=True,
                             store=store).verification
        assert again.ok, again.message
    finally:
        current.reset_store()
