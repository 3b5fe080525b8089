"""Reading an MLflow model folder: its ``MLmodel`` file and the signature it declares.

``MLmodel`` is YAML written by MLflow (or by ``export_mlflow``); it is read with a safe
loader, so it can hold data only. Its ``signature`` is MLflow's: a JSON list of
column specs (``{"type": "double", "name": "age"}``) or one tensor spec, which becomes the
registry's own signature (column names and numpy dtypes, or a shape and dtype).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import ValidationError, shorten

# MLflow's column types as the numpy dtypes a DataFrame of them has.
_DTYPES = {"double": "float64", "float": "float32", "long": "int64", "integer": "int32",
           "boolean": "bool", "string": "object", "binary": "object",
           "datetime": "datetime64[ns]"}


def read_mlmodel(folder: Path) -> dict[str, Any]:
    """The parsed ``MLmodel`` of ``folder``; refused when it is missing or not a mapping."""
    import yaml

    path = folder / "MLmodel"
    if not path.is_file():
        raise ValidationError(f"{str(folder)!r} holds no MLmodel file, so it is not an MLflow "
                              "model folder. Pass the folder MLflow saved (with MLmodel), or "
                              "a model file (.json, .ubj, .txt, .cbm, .keras, .onnx, .skops).")
    try:
        # libyaml's safe loader when PyYAML has it: ten times the pure-Python one.
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        parsed = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)  # noqa: S506
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ValidationError(f"{str(path)!r} is not readable YAML: "
                              f"{str(exc).splitlines()[0]}. Nothing was imported.") from None
    if not isinstance(parsed, dict) or not isinstance(parsed.get("flavors"), dict):
        raise ValidationError(f"{str(path)!r} names no flavors; it is not an MLmodel file "
                              "MLflow wrote. Nothing was imported.")
    return parsed


def signature_from_mlflow(signature: Any) -> dict[str, Any] | None:
    """The registry's signature for MLflow's ``signature`` section (None when it has no
    inputs we can read)."""
    if not isinstance(signature, dict) or not signature.get("inputs"):
        return None
    try:
        inputs = json.loads(signature["inputs"])
    except (TypeError, ValueError):
        raise ValidationError(f"The MLmodel signature's inputs are not JSON: "
                              f"{shorten(signature['inputs'])}. Pass sample= instead.") from None
    if not isinstance(inputs, list) or not inputs:
        return None
    if inputs[0].get("type") == "tensor":
        spec = inputs[0].get("tensor-spec", {})
        shape = spec.get("shape")
        if len(inputs) != 1 or not isinstance(shape, list):
            return None
        return {"kind": "ndarray", "dtype": spec.get("dtype"),
                "shape": [-1, *[int(s) for s in shape[1:]]]}
    columns = []
    for spec in inputs:
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            return None  # unnamed columns: the model's own signature says more
        columns.append({"name": spec["name"], "dtype": _DTYPES.get(spec.get("type"))})
    return {"kind": "dataframe", "columns": columns}
