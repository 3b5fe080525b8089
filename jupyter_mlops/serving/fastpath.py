"""Small JSON requests scored without a DataFrame: rows straight into a numpy array.

For a one-row request, building a pandas DataFrame, conforming it column by column and
letting the model take the frame apart again costs several times the prediction itself.
When a version's signature is one numeric dtype over named columns, the rows of a clean
request are already the array the model would end up with: values in the signature's
column order, in its dtype. :class:`FastPath` builds that array and nothing else.

It is taken only when it is sure to answer as the general path would:

- at load, the model's predictions on a probe (the version's reference sample, else rows
  made from the signature) must be byte-identical as JSON whether it is given the conformed
  DataFrame or the array, and the array must raise no warning (scikit-learn's "X does not
  have valid feature names" is allowed in a server process that silenced it, see
  :func:`silence_feature_name_warning`);
- per request, every value must be a plain JSON number the dtype holds as it is (no
  ``true``/``false``, null, text, infinity, out-of-range or ragged rows) and the columns
  must be exactly the signature's. Anything else goes the general way, which gives the
  clear refusal it always gave.

The body is parsed with orjson when it is installed (the ``serve`` extra): several times
quicker than ``json`` on a thousand rows, and it refuses what ``json`` would refuse or
read differently (a byte order mark, NaN, a lone surrogate). A body it refuses, and any
request that then goes the general way, is parsed again by ``json``, so refusals read as
they always did.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Any

from .formats import FORMATS, InputSpec, dumps, jsonable

#: Larger bodies go the general way: the gain is in the fixed cost per request.
MAX_BYTES = 256 * 1024
#: Bodies up to this size, of a model that predicts a row in under ``INLINE_S`` seconds,
#: are scored on the event loop (which waits that long at most for them).
INLINE_BYTES = 4096
INLINE_S = 0.002
_FEATURE_NAMES = r"X does not have valid feature names, but \w+ was fitted with feature names"
_silenced = False
_orjson: Any = None  # the module once imported; False when it is not installed


def loads(body: bytes) -> Any:
    """The body parsed by orjson, or None when orjson is missing or refuses it (the
    general path then parses it with ``json`` and names what is wrong)."""
    global _orjson
    if _orjson is None:
        try:
            import orjson
        except ImportError:
            orjson = False
        _orjson = orjson
    if _orjson is False:
        return None
    try:
        return _orjson.loads(body)
    except _orjson.JSONDecodeError:
        return None


def silence_feature_name_warning() -> None:
    """In a process that only serves (``jupyter-mlops serve``, an image's entrypoint): hide
    scikit-learn's warning that an array has no feature names, so models fitted on a
    DataFrame take the fast path too (the probe checked that the columns are in order)."""
    global _silenced
    warnings.filterwarnings("ignore", message=_FEATURE_NAMES, category=UserWarning)
    _silenced = True


def _probe_rows(spec: InputSpec, dtype: Any, reference: Any) -> Any:
    """Rows to compare the two paths on: the reference sample's first rows and a few made
    from the dtype (zeros, ones, mixed signs, large values)."""
    import numpy as np
    import pandas as pd

    width = len(spec.columns)
    made = [np.zeros(width), np.ones(width), np.resize([-1.5, 2.25, 0.5, -3.0], width),
            np.resize([7.0, -2.0, 1e3, 0.125], width)]
    rows = np.array(made, dtype=dtype if dtype.kind == "f" else np.float64)
    if dtype.kind in "iu":
        rows = np.round(np.abs(rows) if dtype.kind == "u" else rows).astype(dtype)
    parts = []
    if isinstance(reference, pd.DataFrame) and set(spec.columns) <= set(map(str, reference)):
        try:
            sample = reference.head(64).set_axis([str(c) for c in reference.columns], axis=1)
            parts.append(spec.conform(sample[list(spec.columns)]).to_numpy(dtype=dtype))
        except Exception:  # noqa: BLE001 - a sample that does not conform adds nothing
            pass
    parts.append(rows)
    return np.concatenate(parts)


@dataclass(frozen=True)
class FastPath:
    """The array path of one loaded version (see the module's docstring)."""

    columns: tuple[str, ...]
    dtype: Any  # numpy dtype
    #: The quickest of a few one-row predictions at load: a request that costs less than
    #: ``INLINE_S`` is scored on the event loop, without the hop to a scoring thread.
    row_s: float = float("inf")
    #: The model is scikit-learn's own (no pipeline of user steps): its check that every
    #: value is finite is skipped, as this path has made sure of it (``_cast``).
    assume_finite: bool = False

    @property
    def inline(self) -> bool:
        return self.row_s < INLINE_S

    def predict(self, model: Any, array: Any) -> Any:
        """``model.predict`` of a :meth:`rows` array."""
        if not self.assume_finite:
            return model.predict(array)
        import sklearn

        with sklearn.config_context(assume_finite=True):
            return model.predict(array)

    @classmethod
    def probe(cls, model: Any, spec: InputSpec, reference: Any = None) -> FastPath | None:
        """A fast path for ``model`` when its signature allows one and the probe shows the
        array answers exactly as the DataFrame does; None otherwise."""
        import numpy as np
        import pandas as pd

        if spec.kind != "dataframe" or not spec.columns or len(set(spec.dtypes)) != 1:
            return None
        try:
            dtype = np.dtype(spec.dtypes[0])
        except TypeError:
            return None
        if dtype.kind not in "iuf" or dtype.itemsize < 4 and dtype.kind == "f":
            return None
        try:
            rows = _probe_rows(spec, dtype, reference)
            frame = spec.conform(pd.DataFrame(rows.tolist(), columns=list(spec.columns)))
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                if _silenced:
                    warnings.filterwarnings("ignore", message=_FEATURE_NAMES,
                                            category=UserWarning)
                from_frame = dumps(jsonable(model.predict(frame)))
                before = len(caught)
                fast = cls(spec.columns, dtype, assume_finite=_sklearn_own(model))
                from_array = dumps(jsonable(fast.predict(model, _model_input(rows, dtype))))
                warned = len(caught) > before
        except Exception:  # noqa: BLE001 - a model that refuses the probe keeps the general path
            return None
        if warned or from_frame != from_array:
            return None
        one = _model_input(rows[:1], dtype)
        times = []
        for _ in range(5):
            started = time.perf_counter()
            fast.predict(model, one)
            times.append(time.perf_counter() - started)
        return cls(spec.columns, dtype, min(times), fast.assume_finite)

    def rows(self, payload: Any, body: bytes) -> Any:
        """The request's inputs as an array, or None when it must go the general way."""
        import numpy as np

        if len(body) > MAX_BYTES or b"true" in body or b"false" in body or \
                not isinstance(payload, dict) or len(payload) != 1:
            return None
        key, value = next(iter(payload.items()))
        if key not in FORMATS:
            return None
        width = len(self.columns)
        if key == "dataframe_split":
            if not isinstance(value, dict):
                return None
            columns = value.get("columns")
            data = value.get("data")
            if (columns is not None and columns != list(self.columns)) or \
                    not isinstance(data, list):
                return None
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            wanted = set(self.columns)
            data = []
            for record in value:
                if not isinstance(record, dict) or len(record) != width or \
                        record.keys() != wanted:
                    return None
                data.append([record[c] for c in self.columns])
        elif isinstance(value, list) and key in ("instances", "inputs"):
            data = value
        else:
            return None
        if not data:
            return None
        try:
            array = np.array(data)
        except (ValueError, TypeError, OverflowError):
            return None
        if array.ndim != 2 or array.shape[1] != width:
            return None
        return self._cast(array)

    def _cast(self, array: Any) -> Any:
        """``array`` in the signature's dtype, or None when a value needs the general
        path's checks (it may be refused there, or converted in its own way)."""
        import numpy as np

        target, kind = self.dtype, array.dtype.kind
        if target.kind == "f":
            if kind not in "if":
                return None
            if kind == "f" and not np.isfinite(array).all():
                return None
            if target.itemsize < 8 and kind == "f" and \
                    (np.abs(array) > np.finfo(target).max).any():
                return None
            return _model_input(array, target)
        if kind != "i":
            return None
        info = np.iinfo(target)
        if target != array.dtype and (array.min() < info.min or array.max() > info.max):
            return None
        return _model_input(array, target)


def _sklearn_own(model: Any) -> bool:
    """A scikit-learn estimator whose inputs reach its own code unchanged: not a pipeline
    or column transformer, whose user steps could make a finite value infinite."""
    module = type(model).__module__
    return module.startswith("sklearn.") and not module.startswith(
        ("sklearn.pipeline", "sklearn.compose"))


def _model_input(array: Any, dtype: Any) -> Any:
    """The array as a conformed DataFrame hands it to a model: pandas keeps a frame's
    columns in one block, so ``np.asarray(frame)`` is column-major. The same layout gives
    the same sums to the last bit (a matrix product adds in an order that follows it)."""
    import numpy as np

    return np.asarray(array, dtype=dtype, order="F")

