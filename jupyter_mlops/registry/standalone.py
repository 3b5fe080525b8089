"""Standalone export: a registered version as a file other tools load without us.

- ``skops``: a scikit-learn model in skops' zip format, which ``skops.io.load`` reads
  without unpickling; the types outside skops' own trusted list are named in the
  manifest, to be passed as ``trusted=``.
- ``onnx``: an ONNX graph made by skl2onnx (scikit-learn) or onnxmltools (XGBoost,
  LightGBM), kept only when ONNX Runtime predicts what the model predicts on the
  version's reference sample: probabilities (a classifier) within ``atol`` (1e-5 by
  default), values (a regressor) within ``atol + rtol * |value|`` (rtol 1e-4): ONNX
  Runtime computes in float32. Beyond that the export is refused with the largest
  difference shown.
- ``native``: the framework's own file: XGBoost JSON, LightGBM text, CatBoost ``.cbm``,
  Keras ``.keras``.

Every export is a new folder holding the model file, ``manifest.json`` (the version, its
sha256, the files' sha256 and sizes, the check that was made) and ``SHA256SUMS``
(``sha256sum -c SHA256SUMS`` verifies the folder).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from ..errors import ValidationError, shorten
from ..store import Store
from .export import staged_folder

FORMATS = ("skops", "onnx", "native")
ATOL = 1e-5
RTOL = 1e-4


def _skops(model: Any, label: str) -> tuple[dict[str, bytes], Any, dict[str, Any]]:
    import skops.io as sio

    try:
        data = sio.dumps(model)
    except Exception as exc:  # noqa: BLE001 - skops refuses objects in many ways
        raise ValidationError(
            f"skops cannot write {label} ({type(exc).__name__}: {shorten(str(exc), 120)}): "
            "skops keeps scikit-learn models. Export it with format='native' or 'onnx'. "
            "Nothing was written.") from None
    trusted = sio.get_untrusted_types(data=data)
    return {"model.skops": data}, sio.loads(data, trusted=trusted), {"trusted_types": trusted}


def _onnx_input(reference: Any) -> Any:
    """What the converters infer input types from: one float32 matrix for numeric data,
    else the DataFrame itself (one input per column)."""
    import numpy as np

    if hasattr(reference, "dtypes") and not all(np.issubdtype(t, np.number)
                                                for t in reference.dtypes):
        return reference
    rows = reference.to_numpy() if hasattr(reference, "to_numpy") else np.asarray(reference)
    return rows.astype(np.float32)


def _convert_onnx(model: Any, family: Any, reference: Any, label: str) -> bytes:
    import numpy as np

    sample = _onnx_input(reference)
    name = family.name if family is not None else None
    try:
        if name in ("xgboost", "lightgbm"):
            import onnxmltools
            from onnxmltools.convert.common.data_types import FloatTensorType

            if not isinstance(sample, np.ndarray):
                raise ValidationError(f"onnxmltools converts {name} models over numeric "
                                      "inputs only; the reference sample has other columns.")
            types = [("X", FloatTensorType([None, sample.shape[1]]))]
            if name == "xgboost":
                import xgboost as xgb

                if isinstance(model, xgb.Booster):  # its converter reads f0, f1, ...
                    model = model.copy()
                    model.feature_names = None
                onnx_model = onnxmltools.convert_xgboost(model, initial_types=types)
            else:
                onnx_model = onnxmltools.convert_lightgbm(model, initial_types=types,
                                                          zipmap=False)
        elif name == "sklearn":
            from skl2onnx import to_onnx

            onnx_model = to_onnx(model, sample[:1] if isinstance(sample, np.ndarray)
                                 else sample.iloc[:1])
        else:
            raise ValidationError(f"No ONNX converter for {label} here: skl2onnx converts "
                                  "scikit-learn models, onnxmltools XGBoost and LightGBM. "
                                  "Export it with format='native'. Nothing was written.")
    except ImportError as exc:
        raise ValidationError(f"The ONNX export needs {exc.name}, which is not installed: "
                              "pip install 'jupyter-mlops[onnx]'. Nothing was written.") from None
    except ValidationError:
        raise
    except Exception as exc:  # noqa: BLE001 - converters fail with many exception types
        raise ValidationError(f"The ONNX converter could not convert {label} "
                              f"({type(exc).__name__}: {shorten(str(exc), 160)}). Nothing "
                              "was written.") from None
    return onnx_model.SerializeToString()


def _onnx(model: Any, family: Any, reference: Any, label: str
          ) -> tuple[dict[str, bytes], Any, dict[str, Any]]:
    from .foreign import OnnxModel

    if reference is None:
        raise ValidationError(f"{label} has no reference sample, which the ONNX export needs "
                              "to check ONNX Runtime's predictions: register it with "
                              "reference= (import it with sample=). Nothing was written.")
    data = _convert_onnx(model, family, reference, label)
    candidate = OnnxModel(data)
    candidate.session()
    return {"model.onnx": data}, candidate, {"inputs": candidate.input_names}


def _native(model: Any, family: Any, label: str) -> tuple[dict[str, bytes], Any, dict]:
    from .imports import _native_file

    if family is None or family.name not in ("xgboost", "lightgbm", "catboost", "keras"):
        raise ValidationError(
            f"{label} has no native format besides its pickle (XGBoost, LightGBM, CatBoost "
            "and Keras models have one); export it with format='skops' or 'onnx'. Nothing "
            "was written.")
    if family.name == "xgboost":
        from ..tracking.frameworks.files import saved_bytes

        file_name, data = "model.json", saved_bytes(model.save_model, "model.json")
    else:
        native = family.native(model)
        file_name, data = f"model.{native.suffix}", native.data
    # Read back as import_model reads it: what a user of the file gets.
    import tempfile

    with tempfile.TemporaryDirectory(prefix="jupyter-mlops-native-") as folder:
        path = Path(folder) / file_name
        path.write_bytes(data)
        loaded = _native_file(path, trust=False).model
    return {file_name: data}, loaded, {}


def _compare(original: Any, candidate: Any, X: Any, atol: float, rtol: float, what: str
             ) -> dict[str, Any]:
    """How far ``candidate`` predicts from ``original`` on ``X``; refused beyond the
    tolerance, naming the largest difference and its row."""
    import numpy as np

    from ..tracking.frameworks import predictor

    original, candidate = predictor(original), predictor(candidate)
    if hasattr(original, "predict_proba") and hasattr(candidate, "predict_proba"):
        expected = np.asarray(original.predict_proba(X), dtype=float)
        got = np.asarray(candidate.predict_proba(X), dtype=float)
        compared, allowed = "predict_proba", np.full(expected.shape, atol)
        tolerance = f"atol {atol:g} on probabilities"
    else:
        expected = np.asarray(original.predict(X), dtype=float)
        got = np.asarray(candidate.predict(X), dtype=float)
        compared, allowed = "predict", atol + rtol * np.abs(expected)
        tolerance = f"atol {atol:g} + rtol {rtol:g} on predicted values"
    got = got.reshape(expected.shape) if got.size == expected.size else got
    if got.shape != expected.shape:
        raise ValidationError(f"The {what} predicts shape {got.shape} where the model "
                              f"predicts {expected.shape}. Nothing was written.")
    difference = np.abs(got - expected)
    worst = float(np.nanmax(difference)) if difference.size else 0.0
    if np.isnan(difference).any() or (difference > allowed).any():
        row = int(np.unravel_index(np.nanargmax(difference), difference.shape)[0])
        raise ValidationError(
            f"The {what} predicts differently from the model: the largest difference is "
            f"{worst:.3g} (row {row} of the reference sample: {expected.flat[np.nanargmax(difference)]:.6g} "
            f"vs {got.flat[np.nanargmax(difference)]:.6g}), beyond the tolerance ({tolerance}). "
            "Nothing was written.")
    return {"rows": int(expected.shape[0]), "compared": compared,
            "max_abs_difference": worst, "tolerance": tolerance}


def _write(target: Path, files: dict[str, bytes], manifest: dict[str, Any]) -> Path:
    with staged_folder(target) as staging:
        sums = {}
        for name, data in files.items():
            (staging / name).write_bytes(data)
            sums[name] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
        manifest["files"] = sums
        text = json.dumps(manifest, indent=2, sort_keys=True, allow_nan=False) + "\n"
        (staging / "manifest.json").write_text(text, encoding="utf-8")
        listed = {**{n: s["sha256"] for n, s in sums.items()},
                  "manifest.json": hashlib.sha256(text.encode()).hexdigest()}
        (staging / "SHA256SUMS").write_text(
            "".join(f"{sha}  {name}\n" for name, sha in sorted(listed.items())))
    return target


def export_model(uri: str, path: str | os.PathLike[str], format: str = "skops", *,
                 store: Store | None = None, allow_pickle: bool = False,
                 atol: float = ATOL, rtol: float = RTOL) -> Path:
    """Write ``uri`` at ``path`` (a new folder) as a standalone ``skops``, ``onnx`` or
    ``native`` file, with a sha256 manifest. The exported file is read back and must
    predict as the model does on the version's reference sample (ONNX: within ``atol``
    on probabilities, ``atol + rtol * |value|`` on values); else nothing is written.

    Examples
    --------
    >>> export_model("churn@champion", "out/churn-onnx", format="onnx")   # doctest: +SKIP
    >>> export_model("churn/3", "out/churn-skops")                        # doctest: +SKIP
    """
    from ..store.current import get_store
    from ..tracking.frameworks import family_of
    from .versions import load_version, reference_sample

    if format not in FORMATS:
        raise ValidationError(f"format is one of {', '.join(FORMATS)} (or export_mlflow for "
                              f"an MLflow folder); got {shorten(format)}.")
    target = Path(path)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ValidationError(f"{str(target)!r} already exists and is not an empty folder; "
                              "choose a new folder.")
    store = store or get_store()
    version, model = load_version(uri, store=store, allow_pickle=allow_pickle)
    label = f"{version.name}/{version.version} ({version.class_name})"
    reference = reference_sample(uri, store=store, allow_pickle=allow_pickle)
    family = family_of(model)
    if format == "skops":
        files, candidate, extra = _skops(model, label)
    elif format == "onnx":
        files, candidate, extra = _onnx(model, family, reference, label)
    else:
        files, candidate, extra = _native(model, family, label)
    check = None
    if reference is not None:
        from ..tracking.frameworks import plain_data

        check = _compare(model, candidate, plain_data(reference), atol, rtol,
                         f"{format} export of {version.name}/{version.version}")
    libraries = {m: getattr(sys.modules.get(m), "__version__", None)
                 for m in ("sklearn", "skops", "skl2onnx", "onnxmltools", "onnxruntime",
                           "xgboost", "lightgbm", "catboost", "keras", "numpy")
                 if m in sys.modules}
    manifest = {"model": version.uri, "sha256": version.sha256, "format": format,
                "class": version.class_name, "signature": version.signature,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "check": check, "libraries": libraries, **extra}
    return _write(target, files, manifest)
