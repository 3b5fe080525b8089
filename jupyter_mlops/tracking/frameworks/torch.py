"""PyTorch: any ``nn.Module`` with parameters, and Lightning modules.

- params: the module's class, its parameter count, and for a Lightning module its saved
  hyperparameters (``hparams``), ``epochs`` (the trainer's ``max_epochs``) and the
  optimizer as ``optimizer_name`` and its defaults (``lr``, ...), the names MLflow's
  Lightning autolog uses;
- metrics: a Lightning trainer's ``callback_metrics`` (its last value of each logged
  metric), ``epoch`` and ``global_step``;
- text: the module's ``repr`` (its layers);
- native file: the ``state_dict`` (``torch.save``), with the class path in a text file
  beside it, as the issue asks: the weights alone, loadable with ``weights_only=True``.

A state_dict holds tensors only, and ``torch.load(weights_only=True)`` refuses anything
else in the file, so loading it runs no code from the file; but rebuilding the module from
its class path imports and runs that class's code. So both files are signed, and nothing in
jupyter_mlops loads them: a registered torch model is its pickle, loaded through the
signature check like any other. The export is MLflow's ``pytorch`` flavor (the whole module
pickled by ``torch.save``, with ``pickle`` as its pickle module), written from that checked
model.

A module predicts on a float32 tensor of the rows; one output column is read as a
regression, several as class scores (the class is the largest, without probabilities).
"""

from __future__ import annotations

import io
import sys
from typing import Any

from .family import Family, Flavor, NativeFile


def _torch() -> Any:
    return sys.modules["torch"]


def _lightning_trainer(value: Any) -> Any:
    """The trainer a Lightning module was fitted by, duck-typed (no Lightning import)."""
    for module in ("lightning.pytorch", "pytorch_lightning"):
        lightning = sys.modules.get(module)
        if lightning is not None and isinstance(value, lightning.LightningModule):
            return getattr(value, "_trainer", None)
    return None


def _scalar(value: Any) -> Any:
    item = getattr(value, "item", None)
    return item() if callable(item) and getattr(value, "numel", lambda: 1)() == 1 else value


def class_path(value: Any) -> str:
    return f"{type(value).__module__}.{type(value).__qualname__}"


def state_dict_bytes(module: Any) -> bytes:
    buffer = io.BytesIO()
    _torch().save(module.state_dict(), buffer)
    return buffer.getvalue()


class TorchFamily(Family):
    name = "torch"
    modules = ("torch",)

    def recognises(self, value: Any) -> bool:
        torch = _torch()
        return isinstance(value, torch.nn.Module) and any(True for _ in value.parameters())

    def params(self, value: Any) -> dict[str, Any]:
        found: dict[str, Any] = {
            "module_class": class_path(value),
            "parameters": sum(p.numel() for p in value.parameters()),
        }
        hparams = getattr(value, "hparams", None)
        if hparams:
            found.update({str(k): v for k, v in dict(hparams).items()})
        trainer = _lightning_trainer(value)
        if trainer is not None:
            found["epochs"] = trainer.max_epochs
            optimizers = getattr(trainer, "optimizers", None) or []
            if optimizers:
                found["optimizer_name"] = type(optimizers[0]).__name__
                found.update({k: v for k, v in optimizers[0].defaults.items()})
        return found

    def metrics(self, value: Any) -> dict[str, float]:
        trainer = _lightning_trainer(value)
        if trainer is None:
            return {}
        found = {str(k): _scalar(v) for k, v in dict(trainer.callback_metrics).items()}
        found["epoch"] = trainer.current_epoch
        found["global_step"] = trainer.global_step
        return found

    def texts(self, value: Any) -> dict[str, str]:
        return {"layers.txt": repr(value), "class.txt": class_path(value)}

    def native(self, value: Any) -> NativeFile:
        return NativeFile("pt", state_dict_bytes(value))

    def predictor(self, value: Any) -> Any:
        import numpy as np

        from .sklearn_api import native_predictor

        torch = _torch()

        def scores(X: Any) -> Any:
            rows = X.to_numpy() if hasattr(X, "to_numpy") else X
            was_training = value.training
            value.eval()
            try:
                with torch.no_grad():
                    out = value(torch.as_tensor(np.asarray(rows, dtype="float32")))
            finally:
                value.train(was_training)
            out = out.detach().cpu().numpy()
            return out if out.ndim == 1 or out.shape[1] == 1 else out.argmax(axis=1)

        outputs = [m for m in value.modules() if isinstance(m, torch.nn.Linear)]
        width = outputs[-1].out_features if outputs else 1
        if width > 1:
            return native_predictor(value, "labels", scores, list(range(width)))
        return native_predictor(value, "regression", scores)

    def signature(self, value: Any) -> dict[str, Any] | None:
        torch = _torch()
        first = next((m for m in value.modules() if isinstance(m, torch.nn.Linear)), None)
        if first is None:
            return None
        return {"kind": "ndarray", "dtype": None, "shape": [-1, first.in_features]}

    def flavor(self, model: Any) -> Flavor:
        import pickle

        torch = _torch()
        buffer = io.BytesIO()
        torch.save(model, buffer, pickle_module=pickle)
        return Flavor("pytorch",
                      {"code": None, "model_data": "data",
                       "pytorch_version": str(torch.__version__)},
                      "mlflow.pytorch",
                      {"data": "data", "pickle_module_name": "pickle",
                       "model_config": {"device": None}},
                      files={"data/model.pth": buffer.getvalue(),
                             "data/pickle_module_info.txt": b"pickle"},
                      packages=[("torch", "torch"), ("cloudpickle", "")])


FAMILY = TorchFamily()
