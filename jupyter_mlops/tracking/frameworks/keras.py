"""Keras 3 models (any backend) once trained.

- params: the optimizer's configuration as ``optimizer_<key>`` (the names MLflow's Keras
  callback logs) and ``epochs`` and ``steps_per_epoch`` from the last ``fit``;
- histories: the last ``fit``'s ``History`` (``loss``, ``val_loss``, ``accuracy``, ...), one
  step per epoch, as MLflow logs them;
- text: ``summary()``, as MLflow's ``model_summary.txt``;
- native file: ``.keras`` (configuration and weights), as MLflow's ``keras`` flavor saves it.

A ``.keras`` file is not inert: its configuration names the classes to build, and a
``Lambda`` layer carries marshalled Python bytecode that ``keras.saving.load_model`` runs
unless ``safe_mode`` (its default) refuses it. So it is treated like a pickle: signed with
this user's key, and the registry never loads one; a registered Keras model is its pickle
(Keras pickles a model as the same ``.keras`` archive), loaded only through the signature
check.

Evaluation and serving read the model's loss to tell its task: binary cross-entropy gives a
binary classifier (one sigmoid output), categorical cross-entropy a multiclass one (one
softmax output per class), anything else a regressor.
"""

from __future__ import annotations

import sys
from typing import Any

from .family import Family, Flavor, NativeFile
from .files import saved_bytes

_BINARY = ("binary_crossentropy", "BinaryCrossentropy", "binary_focal_crossentropy")
_MULTICLASS = ("categorical_crossentropy", "sparse_categorical_crossentropy",
               "CategoricalCrossentropy", "SparseCategoricalCrossentropy")


def _keras() -> Any:
    return sys.modules["keras"]


def _loss_name(model: Any) -> str:
    loss = getattr(model, "loss", None)
    if isinstance(loss, str):
        return loss
    return getattr(loss, "name", None) or type(loss).__name__


class KerasFamily(Family):
    name = "keras"
    modules = ("keras",)

    def recognises(self, value: Any) -> bool:
        if not isinstance(value, _keras().Model) or not value.built:
            return False
        optimizer = getattr(value, "optimizer", None)
        return optimizer is not None and int(optimizer.iterations) > 0

    def _history(self, value: Any) -> Any:
        return getattr(value, "history", None)

    def params(self, value: Any) -> dict[str, Any]:
        found = {f"optimizer_{k}": v for k, v in value.optimizer.get_config().items()}
        history = self._history(value)
        if history is not None:
            for key, name in (("epochs", "epochs"), ("steps", "steps_per_epoch")):
                if history.params.get(key) is not None:
                    found[name] = history.params[key]
        return found

    def histories(self, value: Any) -> dict[str, list[float]]:
        history = self._history(value)
        return {key: list(values) for key, values in (history.history if history else {}).items()}

    def texts(self, value: Any) -> dict[str, str]:
        lines: list[str] = []
        value.summary(print_fn=lambda line, *args, **kwargs: lines.append(line))
        return {"summary.txt": "\n".join(lines)}

    def native(self, value: Any) -> NativeFile:
        return NativeFile("keras", saved_bytes(value.save, "model.keras"), "application/zip")

    def predictor(self, value: Any) -> Any:
        import numpy as np

        from .sklearn_api import native_predictor

        def scores(X: Any) -> Any:
            rows = X.to_numpy() if hasattr(X, "to_numpy") else X
            return np.asarray(value.predict(np.asarray(rows, dtype="float32"), verbose=0))

        loss = _loss_name(value)
        if loss in _BINARY:
            return native_predictor(value, "proba", scores, [0, 1])
        if loss in _MULTICLASS:
            return native_predictor(value, "proba", scores,
                                    list(range(int(value.outputs[0].shape[-1]))))
        return native_predictor(value, "regression", scores)

    def signature(self, value: Any) -> dict[str, Any] | None:
        shape = value.inputs[0].shape if getattr(value, "inputs", None) else None
        if shape is None or len(shape) != 2 or shape[1] is None:
            return None
        return {"kind": "ndarray", "dtype": None, "shape": [-1, int(shape[1])]}

    def flavor(self, model: Any) -> Flavor:
        keras = _keras()
        return Flavor("keras",
                      {"data": "data", "keras_backend": keras.backend.backend(),
                       "keras_version": keras.__version__, "save_exported_model": False},
                      "mlflow.keras", {},
                      files={"data/model.keras": self.native(model).data,
                             "data/keras_module.txt": b"keras"},
                      packages=[("keras", "keras"), (keras.backend.backend(), "")])


FAMILY = KerasFamily()
