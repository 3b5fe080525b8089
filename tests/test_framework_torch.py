"""PyTorch modules (marker ``frameworks``: torch is not in the test extra; run with
``make test-frameworks``, which installs its CPU build)."""

import io

import numpy as np
import pytest

import jupyter_mlops as mlops
from frameworks_support import artifact_bytes, artifacts, assert_signed, only_run
from jupyter_mlops.tracking.frameworks import predictor
from support import run_cell

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.frameworks

SETUP = """
import numpy as np
import torch
from sklearn.datasets import load_diabetes
X, y = load_diabetes(return_X_y=True)
X = ((X - X.mean(axis=0)) / X.std(axis=0)).astype("float32")
y = ((y - y.mean()) / y.std()).astype("float32")
torch.manual_seed(0)
"""

LOOP = """%%track -n torch
net = torch.nn.Sequential(torch.nn.Linear(10, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
optimizer = torch.optim.Adam(net.parameters(), lr=0.01)
inputs, targets = torch.from_numpy(X), torch.from_numpy(y).unsqueeze(1)
for epoch in range(30):
    optimizer.zero_grad()
    loss = torch.nn.functional.mse_loss(net(inputs), targets)
    loss.backward()
    optimizer.step()
"""


def test_module_params_state_dict_and_class_path(shell, store):
    run_cell(shell, SETUP)
    assert run_cell(shell, LOOP).success
    net = shell.user_ns["net"]
    run = only_run()
    assert run.params["net.module_class"] == "torch.nn.modules.container.Sequential"
    assert run.params["net.parameters"] == sum(p.numel() for p in net.parameters())
    assert artifacts(run)["model/net.pt"].kind == "model-native"
    assert_signed(store, run, "model/net.pt")
    state = torch.load(io.BytesIO(artifact_bytes(store, run, "model/net.pt")), weights_only=True)
    rebuilt = torch.nn.Sequential(torch.nn.Linear(10, 16), torch.nn.ReLU(),
                                  torch.nn.Linear(16, 1))
    rebuilt.load_state_dict(state)
    X = torch.from_numpy(shell.user_ns["X"])
    assert torch.equal(rebuilt(X), net(X))
    assert artifact_bytes(store, run, "model/net.class.txt") == \
        b"torch.nn.modules.container.Sequential"


def test_module_registers_evaluates_serves_and_exports(store, tmp_path):
    mlflow = pytest.importorskip("mlflow")
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    X = X.astype("float32")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(10, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    mlops.register_model(net, "net", reference=X)
    loaded = mlops.load_model("net/1")
    np.testing.assert_array_equal(predictor(loaded).predict(X), predictor(net).predict(X))
    result = mlops.evaluate("net/1", X, y, importance=False)
    assert result.task == "regression" and np.isfinite(result.metrics["r2"])
    path = mlops.export_mlflow("net/1", tmp_path / "net")
    assert "\n  pytorch:\n" in (path / "MLmodel").read_text()
    exported = mlflow.pyfunc.load_model(str(path))
    np.testing.assert_allclose(np.asarray(exported.predict(X)).reshape(-1),
                               net(torch.from_numpy(X)).detach().numpy().reshape(-1),
                               rtol=1e-6)
