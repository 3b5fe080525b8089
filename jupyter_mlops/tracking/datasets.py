"""Data fingerprints: what a run read, identified by content rather than by name.

A fingerprint is a sha256 over the shape, column names, dtypes and every value, so two
runs that read the same numbers share it whatever the variable was called, and any
change to one value changes it.
"""

from __future__ import annotations

import hashlib
import json
import sys
from typing import Any

REFERENCE_ROWS = 10_000  # rows kept of a dataset sample or a model's reference data

FINGERPRINT_LENGTH = 32


def data_kind(value: Any) -> str | None:
    """'dataframe', 'series', 'ndarray', 'sparse' (a scipy sparse matrix or array), 'dmatrix'
    (XGBoost) or 'lgb_dataset' (LightGBM) for data we fingerprint, else None; never imports."""
    cls = type(value)
    module = cls.__module__
    if module.startswith("scipy.sparse") and hasattr(value, "tocsr") and hasattr(value, "shape"):
        return "sparse"
    if module.startswith("xgboost") and cls.__name__ in ("DMatrix", "QuantileDMatrix"):
        return "dmatrix"
    if module.startswith("lightgbm") and cls.__name__ == "Dataset":
        return "lgb_dataset"
    if module.startswith("pandas"):
        if cls.__name__ == "DataFrame":
            return "dataframe"
        if cls.__name__ == "Series":
            return "series"
        return None
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(value, numpy.ndarray):
        return "ndarray"
    return None


PARALLEL_ROWS = 200_000  # from here a frame's rows are hashed in slices on two threads
# Rows a slice: small enough that a column's slice stays in the CPU cache through the
# several passes of pandas' hashing (a quarter less CPU than hashing halves of 1M rows),
# large enough that the per-call overhead does not count.
SLICE_ROWS = 2**17


def _pandas_bytes(obj: Any) -> bytes:
    """The per-row hashes of a frame or Series, index included. Each row's hash depends
    on that row alone, so a large frame is hashed in slices on two threads (pandas
    releases the GIL while hashing) and joined: the same bytes as one call."""
    import pandas as pd

    def hashed(whole: Any) -> bytes:
        if len(whole) < PARALLEL_ROWS:
            return pd.util.hash_pandas_object(whole, index=True).to_numpy().tobytes()
        from concurrent.futures import ThreadPoolExecutor

        import numpy as np

        with ThreadPoolExecutor(max_workers=2) as pool:
            slices = list(pool.map(lambda start: pd.util.hash_pandas_object(
                whole.iloc[start:start + SLICE_ROWS], index=True).to_numpy(),
                range(0, len(whole), SLICE_ROWS)))
        return np.concatenate(slices).tobytes()

    try:
        return hashed(obj)
    except TypeError:  # unhashable cells such as lists (in either half): hash their text
        return hashed(obj.astype(str))


def _container(value: Any, kind: str) -> tuple[list[int], Any, Any, list[Any]] | None:
    """A DMatrix or lgb.Dataset as shape, columns, dtypes and the arrays that hold its
    content (features and labels); None when its data is gone (a LightGBM Dataset frees
    its raw data once trained, unless made with ``free_raw_data=False``)."""
    import numpy as np

    if kind == "dmatrix":
        matrix = value.get_data()  # CSR: missing values are simply not stored
        names, types = value.feature_names, value.feature_types
        return ([int(value.num_row()), int(value.num_col())],
                [str(n) for n in names] if names else None,
                [str(t) for t in types] if types else None,
                [matrix.data, matrix.indices, matrix.indptr, value.get_label(),
                 value.get_weight()])
    raw = value.data
    if raw is None or data_kind(raw) not in ("dataframe", "ndarray"):
        return None
    inner = fingerprint(raw)
    label = value.label if value.label is not None else value.get_label()
    label = np.asarray(label if data_kind(label) != "series" else label.to_numpy(), dtype=float)
    return (inner["shape"], inner["columns"], inner["dtypes"],
            [np.frombuffer(inner["fingerprint"].encode(), dtype=np.uint8), label])


def _sparse_bytes(matrix: Any) -> bytes:
    """The content of a sparse matrix, the same whatever its format (CSR, CSC, COO, …), its
    stored zeros or the order of its entries: canonical CSR's values, columns and row starts."""
    import numpy as np

    canonical = matrix.tocsr(copy=True)
    canonical.sum_duplicates()  # also sorts the column indices of each row
    canonical.eliminate_zeros()
    return b"".join(np.ascontiguousarray(part).view(np.uint8).reshape(-1).tobytes()
                    for part in (canonical.data, canonical.indices.astype(np.int64),
                                 canonical.indptr.astype(np.int64)))


def fingerprint(value: Any) -> dict[str, Any] | None:
    """``{fingerprint, kind, shape, columns, dtypes}`` for a DataFrame, Series or array, an
    XGBoost DMatrix or a LightGBM Dataset."""
    kind = data_kind(value)
    if kind is None:
        return None
    hasher = hashlib.sha256()
    columns = dtypes = None
    if kind in ("dmatrix", "lgb_dataset"):
        import numpy as np

        parts = _container(value, kind)
        if parts is None:
            return None
        shape, columns, dtypes, arrays = parts
        hasher.update(json.dumps([kind, shape, columns, dtypes], allow_nan=False,
                                   separators=(",", ":")).encode())
        for array in arrays:
            array = np.ascontiguousarray(array)
            hasher.update(str(array.dtype).encode() + b"\0")
            hasher.update(array.view(np.uint8).reshape(-1).data)
        return {"fingerprint": hasher.hexdigest()[:FINGERPRINT_LENGTH], "kind": kind,
                "shape": shape, "columns": columns, "dtypes": dtypes}
    if kind == "sparse":
        dtypes = [str(value.dtype)]
        body = _sparse_bytes(value)
    elif kind == "dataframe":
        columns = [str(c) for c in value.columns]
        dtypes = [str(t) for t in value.dtypes]
        body = _pandas_bytes(value)
    elif kind == "series":
        columns = [str(value.name)]
        dtypes = [str(value.dtype)]
        body = _pandas_bytes(value)
    else:
        import numpy as np

        dtypes = [str(value.dtype)]
        if value.dtype.hasobject:
            import pandas as pd

            body = _pandas_bytes(pd.Series(value.reshape(-1)))
        else:
            body = np.ascontiguousarray(value).view(np.uint8).reshape(-1).data
    shape = [int(n) for n in value.shape]
    header = json.dumps([kind, shape, columns, dtypes], allow_nan=False, separators=(",", ":"))
    hasher.update(header.encode())
    hasher.update(body)
    return {
        "fingerprint": hasher.hexdigest()[:FINGERPRINT_LENGTH],
        "kind": kind,
        "shape": shape,
        "columns": columns,
        "dtypes": dtypes,
    }


def sample_rows(data: Any, limit: int = REFERENCE_ROWS) -> Any:
    """At most ``limit`` rows, drawn with a fixed seed and kept in their original order (a
    DMatrix or lgb.Dataset gives its features as a DataFrame or an array)."""
    from .frameworks import plain_data

    data = plain_data(data)
    if data_kind(data) == "sparse":
        data = data.tocsr()  # rows can be picked from CSR (not from COO)
    rows = data.shape[0] if data_kind(data) == "sparse" else len(data)
    if rows <= limit:
        return data.copy()
    import numpy as np

    positions = np.sort(np.random.default_rng(0).choice(rows, size=limit, replace=False))
    return data.iloc[positions].copy() if hasattr(data, "iloc") else data[positions].copy()
