"""A Keras 3 model (jax backend) in a ``%%track`` cell."""

import os
import re

import numpy as np
import pytest

from frameworks_support import artifact_bytes, artifacts, assert_signed, history, only_run
from support import run_cell

os.environ.setdefault("KERAS_BACKEND", "jax")
keras = pytest.importorskip("keras")

SETUP = """
import numpy as np
import keras
from sklearn.datasets import load_breast_cancer
X, y = load_breast_cancer(return_X_y=True)
X = ((X - X.mean(axis=0)) / X.std(axis=0)).astype("float32")
keras.utils.set_random_seed(0)
"""


def test_history_optimizer_params_summary_and_keras_file(shell, store):
    run_cell(shell, SETUP)
    assert run_cell(shell, """%%track -n keras
model = keras.Sequential([keras.Input((30,)), keras.layers.Dense(8, activation="relu"),
                          keras.layers.Dense(1, activation="sigmoid")])
model.compile(keras.optimizers.Adam(learning_rate=0.01), "binary_crossentropy",
              metrics=["accuracy"])
fitted = model.fit(X, y, epochs=4, batch_size=64, validation_split=0.2, verbose=0)
""").success
    model = shell.user_ns["model"]
    run = only_run()
    # Keras numbers a name it has given before in the process (adam_2): the kind is kept.
    assert re.fullmatch(r"adam(_\d+)?", run.params["model.optimizer_name"])
    assert run.params["model.optimizer_learning_rate"] == pytest.approx(0.01)
    assert run.params["model.epochs"] == 4
    recorded = model.history.history
    for key in ("loss", "val_loss", "accuracy", "val_accuracy"):
        assert history(run, key) == list(enumerate(recorded[key]))
    summary = artifact_bytes(store, run, "model/model.summary.txt").decode()
    assert "dense" in summary.lower() and "Total params" in summary
    assert artifacts(run)["model/model.keras"].kind == "model-native"
    assert_signed(store, run, "model/model.keras")
    path = store.path / "native.keras"
    path.write_bytes(artifact_bytes(store, run, "model/model.keras"))
    reloaded = keras.saving.load_model(path)
    X = shell.user_ns["X"]
    np.testing.assert_allclose(reloaded.predict(X, verbose=0), model.predict(X, verbose=0),
                               rtol=1e-6)
