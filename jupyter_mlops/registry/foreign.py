"""Models kept in another runtime's format, behind scikit-learn's predict API.

An imported ONNX file predicts through ONNX Runtime, and an MLflow model of a flavor we
cannot load natively through ``mlflow.pyfunc``. Evaluation, drift, serving and monitoring
want an object with ``predict`` (and ``predict_proba`` with ``classes_`` for a classifier),
which the registry pickles like any model. These wrappers are that object: they pickle as
the source's own bytes and build their runtime session lazily, once per process.
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ValidationError

# ONNX-ML node attributes that carry a classifier's labels (skl2onnx and onnxmltools
# write them on the classifier node and on ZipMap).
_LABEL_ATTRIBUTES = ("classlabels_int64s", "classlabels_strings", "classlabels_ints")


def _require(module: str, install: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ValidationError(f"This needs {module}, which is not installed: pip install "
                              f"{install}.") from None


class OnnxModel:
    """An ONNX graph answering ``predict`` (and ``predict_proba`` when the graph outputs
    probabilities) through ONNX Runtime, on a DataFrame or an array.

    A graph with one input gets the rows as one float32 matrix (the input's own element
    type); a graph with one input per column (what skl2onnx makes of a DataFrame with
    mixed types) gets each column as an ``(n, 1)`` tensor.
    """

    def __init__(self, data: bytes) -> None:
        self.data = bytes(data)
        self._session: Any = None
        self._lock = threading.Lock()
        labels = self._labels()
        if labels is not None:  # a regressor has none: hasattr() must say so
            self.classes_ = labels
        if self._proba_output() is None:
            self.__dict__["_no_proba"] = True

    # -- pickling: the graph's bytes only ----------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        return {"data": self.data}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["data"])

    def __repr__(self) -> str:
        return f"<OnnxModel {len(self.data):,} bytes>"

    # -- the graph -----------------------------------------------------------------------

    def _graph(self) -> Any:
        onnx = _require("onnx", "'jupyter-mlops[onnx]'")
        return onnx.load_model_from_string(self.data).graph

    def _labels(self) -> np.ndarray | None:
        for node in self._graph().node:
            for attribute in node.attribute:
                if attribute.name in _LABEL_ATTRIBUTES:
                    values = (list(attribute.ints) if attribute.ints
                              else [s.decode() for s in attribute.strings])
                    if values:
                        return np.asarray(values)
        return None

    def _proba_output(self) -> str | None:
        outputs = [o.name for o in self._graph().output]
        if getattr(self, "classes_", None) is None or len(outputs) < 2:
            return None
        return outputs[1]

    def session(self) -> Any:
        if self._session is None:
            with self._lock:
                if self._session is None:
                    ort = _require("onnxruntime", "'jupyter-mlops[onnx]'")
                    options = ort.SessionOptions()
                    options.log_severity_level = 3  # errors only: converters' shape notes
                    self._session = ort.InferenceSession(
                        self.data, options, providers=["CPUExecutionProvider"])
        return self._session

    @property
    def input_names(self) -> list[str]:
        return [i.name for i in self.session().get_inputs()]

    def _feed(self, X: Any) -> dict[str, Any]:
        inputs = self.session().get_inputs()
        if len(inputs) > 1 and hasattr(X, "columns"):
            missing = [i.name for i in inputs if i.name not in X.columns]
            if missing:
                raise ValidationError(f"The ONNX graph takes the columns {missing}, which "
                                      "the data lacks.")
            return {i.name: _column(X[i.name], i.type) for i in inputs}
        if len(inputs) > 1:
            raise ValidationError(f"The ONNX graph takes {len(inputs)} named inputs; pass a "
                                  "DataFrame with those columns.")
        rows = X.to_numpy() if hasattr(X, "to_numpy") else np.asarray(X)
        if rows.ndim == 1:
            rows = rows.reshape(1, -1)
        return {inputs[0].name: rows.astype(_dtype(inputs[0].type))}

    def _run(self, X: Any) -> list[Any]:
        return self.session().run(None, self._feed(X))

    def predict(self, X: Any) -> np.ndarray:
        """The graph's first output: labels for a classifier, values for a regressor."""
        out = np.asarray(self._run(X)[0])
        if out.ndim == 2 and out.shape[1] == 1:
            out = out[:, 0]
        return out

    def __getattr__(self, name: str) -> Any:
        # predict_proba exists only for a graph that outputs probabilities, so that
        # evaluation and serving treat a regressor or a label-only graph as such.
        if name == "predict_proba" and not self.__dict__.get("_no_proba", False):
            return self._predict_proba
        raise AttributeError(name)

    def _predict_proba(self, X: Any) -> np.ndarray:
        proba = self._run(X)[1]
        if isinstance(proba, list):  # ZipMap: one {label: probability} per row
            return np.asarray([[row[label] for label in row] for row in proba], dtype=float)
        return np.asarray(proba, dtype=float)


def _dtype(onnx_type: str) -> Any:
    """The numpy dtype of an ONNX Runtime type name such as ``tensor(float)``."""
    inner = onnx_type[len("tensor("):-1] if onnx_type.startswith("tensor(") else onnx_type
    return {"float": np.float32, "double": np.float64, "int64": np.int64, "int32": np.int32,
            "string": object, "bool": np.bool_}.get(inner, np.float32)


def _column(values: Any, onnx_type: str) -> np.ndarray:
    dtype = _dtype(onnx_type)
    array = np.asarray(values)
    array = array.astype(str).astype(object) if dtype is object else array.astype(dtype)
    return array.reshape(-1, 1)


class PyfuncModel:
    """An MLflow model folder of a flavor jupyter_mlops does not load itself, predicting
    through ``mlflow.pyfunc.load_model``: a black box with ``predict`` only.

    It pickles as the folder's files; loading it needs MLflow, and MLflow may unpickle
    what the folder holds, which is why importing one needs ``trust=True``.
    """

    def __init__(self, files: dict[str, bytes], flavor: str) -> None:
        self.files = dict(files)
        self.flavor = flavor
        self._loaded: Any = None
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        return {"files": self.files, "flavor": self.flavor}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["files"], state["flavor"])

    def __repr__(self) -> str:
        return f"<PyfuncModel flavor={self.flavor} files={len(self.files)}>"

    def loaded(self) -> Any:
        if self._loaded is None:
            with self._lock:
                if self._loaded is None:
                    pyfunc = _require("mlflow.pyfunc", "mlflow")
                    # Kept for the process's life: a model may read its files lazily.
                    folder = Path(tempfile.mkdtemp(prefix="jupyter-mlops-pyfunc-"))
                    for name, data in self.files.items():
                        (folder / name).parent.mkdir(parents=True, exist_ok=True)
                        (folder / name).write_bytes(data)
                    self._loaded = pyfunc.load_model(str(folder))
        return self._loaded

    def predict(self, X: Any) -> Any:
        out = self.loaded().predict(X)
        return out.to_numpy() if hasattr(out, "to_numpy") else np.asarray(out)
