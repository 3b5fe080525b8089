"""transformers: a ``Trainer`` after ``train()``.

- params: ``TrainingArguments`` (``args.to_dict()``), as transformers' own MLflow callback
  logs them;
- histories: ``trainer.state.log_history`` by its ``step`` (``loss``, ``learning_rate``,
  ``eval_loss``, ...), the keys the Trainer logged;
- the model: the Trainer's ``model`` (a torch module) is what is pickled, and its
  ``state_dict`` the native file; see the ``torch`` family for what loading those runs.

A Trainer is recognised only when transformers is imported; its model predicts through a
tokenizer, so it is logged and registered but not evaluated or served here.
"""

from __future__ import annotations

import sys
from typing import Any

from .family import Family, NativeFile
from .torch import class_path, state_dict_bytes

_NOT_METRICS = {"step", "epoch", "total_flos"}


class TransformersFamily(Family):
    name = "transformers"
    modules = ("transformers",)

    def recognises(self, value: Any) -> bool:
        trainer = getattr(sys.modules["transformers"], "Trainer", None)
        return (trainer is not None and isinstance(value, trainer)
                and getattr(value.state, "global_step", 0) > 0)

    def saved(self, value: Any) -> Any:
        return value.model

    def params(self, value: Any) -> dict[str, Any]:
        return dict(value.args.to_dict())

    def histories(self, value: Any) -> dict[str, list[Any]]:
        found: dict[str, list[Any]] = {}
        for entry in value.state.log_history:
            step = int(entry.get("step", 0))
            for key, number in entry.items():
                if key not in _NOT_METRICS and isinstance(number, (int, float)):
                    found.setdefault(key, []).append((step, number))
        return found

    def texts(self, value: Any) -> dict[str, str]:
        return {"class.txt": class_path(value.model)}

    def native(self, value: Any) -> NativeFile:
        return NativeFile("pt", state_dict_bytes(value.model))


FAMILY = TransformersFamily()
