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
    """'dataframe', 'series', 'ndarray' or 'sparse' (a scipy sparse matrix or array) for data
    we fingerprint, else None; never imports."""
    cls = type(value)
    module = cls.__module__
    if module.startswith("scipy.sparse") and hasattr(value, "tocsr") and hasattr(value, "shape"):
        return "sparse"
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


def _pandas_bytes(obj: Any) -> bytes:
    import pandas as pd

    try:
        hashed = pd.util.hash_pandas_object(obj, index=True)
    except TypeError:  # unhashable cells such as lists: hash their text instead
        hashed = pd.util.hash_pandas_object(obj.astype(str), index=True)
    return hashed.to_numpy().tobytes()


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
    """``{fingerprint, kind, shape, columns, dtypes}`` for a DataFrame, Series or array."""
    kind = data_kind(value)
    if kind is None:
        return None
    hasher = hashlib.sha256()
    columns = dtypes = None
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
    header = json.dumps([kind, shape, columns, dtypes], separators=(",", ":"))
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
    """At most ``limit`` rows, drawn with a fixed seed and kept in their original order."""
    if data_kind(data) == "sparse":
        data = data.tocsr()  # rows can be picked from CSR (not from COO)
    rows = data.shape[0] if data_kind(data) == "sparse" else len(data)
    if rows <= limit:
        return data.copy()
    import numpy as np

    positions = np.sort(np.random.default_rng(0).choice(rows, size=limit, replace=False))
    return data.iloc[positions].copy() if hasattr(data, "iloc") else data[positions].copy()
