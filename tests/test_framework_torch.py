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


LIGHTNING = """%%track -n lightning
import lightning.pytorch as pl

class Regressor(pl.LightningModule):
    def __init__(self, hidden=8, lr=0.01):
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(torch.nn.Linear(10, hidden), torch.nn.ReLU(),
                                       torch.nn.Linear(hidden, 1))

    def training_step(self, batch, index):
        inputs, targets = batch
        loss = torch.nn.functional.mse_loss(self.net(inputs), targets)
        self.log("train_loss", loss, on_epoch=True, on_step=False)
        return loss

    def forward(self, inputs):
        return self.net(inputs)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)

data = torch.utils.data.DataLoader(
    torch.utils.data.TensorDataset(torch.from_numpy(X), torch.from_numpy(y).unsqueeze(1)),
    batch_size=64)
lit = Regressor(hidden=12)
trainer = pl.Trainer(max_epochs=3, logger=False, enable_checkpointing=False,
                     enable_progress_bar=False, enable_model_summary=False)
trainer.fit(lit, data)
"""


def test_lightning_module_hparams_optimizer_and_callback_metrics(shell, store):
    pytest.importorskip("lightning")
    run_cell(shell, SETUP)
    assert run_cell(shell, LIGHTNING).success
    lit, trainer = shell.user_ns["lit"], shell.user_ns["trainer"]
    run = only_run()
    assert run.params["lit.hidden"] == 12 and run.params["lit.lr"] == 0.01
    assert run.params["lit.epochs"] == 3 and run.params["lit.optimizer_name"] == "SGD"
    assert run.metrics["train_loss"] == pytest.approx(
        float(trainer.callback_metrics["train_loss"]))
    assert run.metrics["global_step"] == trainer.global_step
    assert "model/lit.pt" in artifacts(run)
    assert predictor(lit).predict(shell.user_ns["X"][:5]).shape == (5,)


TRAINER = """%%track -n trainer
config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                    intermediate_size=32, max_position_embeddings=16, num_labels=2)
torch.manual_seed(0)
bert = BertForSequenceClassification(config)
rows = [{"input_ids": torch.randint(0, 50, (8,)), "labels": torch.tensor(i % 2)}
        for i in range(16)]
arguments = TrainingArguments(output_dir=out, max_steps=4, per_device_train_batch_size=4,
                              logging_steps=1, report_to=[], use_cpu=True, save_strategy="no",
                              disable_tqdm=True)
trainer = Trainer(model=bert, args=arguments, train_dataset=rows)
trainer.train()
"""


def test_transformers_trainer_arguments_log_history_and_model(shell, store, tmp_path):
    pytest.importorskip("transformers")
    run_cell(shell, "import torch\nfrom transformers import BertConfig, "
                    "BertForSequenceClassification, Trainer, TrainingArguments\n"
                    f"out = {str(tmp_path / 'trainer')!r}")
    assert run_cell(shell, TRAINER).success
    trainer = shell.user_ns["trainer"]
    run = only_run()
    assert run.params["trainer.max_steps"] == 4 and run.params["trainer.learning_rate"] == 5e-05
    logged = [(e["step"], e["loss"]) for e in trainer.state.log_history if "loss" in e]
    assert [(m.step, m.value) for m in run.metric_history("loss")] == logged
    files = artifacts(run)
    assert "model/trainer.pkl" in files and "model/trainer.pt" in files
    state = torch.load(io.BytesIO(artifact_bytes(store, run, "model/trainer.pt")),
                       weights_only=True)
    assert set(state) == set(trainer.model.state_dict())
    assert "model/bert.pt" in files  # the model the cell also binds, on its own
