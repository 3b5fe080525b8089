"""A run's input data previewed: the first rows of its kept bytes, and a version's card.

Only the first chunk of a kept DataFrame is read (a chunk holds at most about 2 MiB), an
array only when small, a file's first lines; every value leaves as text, so the sidebar
shows it as text.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ...errors import NotFoundError, ValidationError
from ...store import Store
from .runs import check_run_id

PREVIEW_ROWS = 10
PREVIEW_COLUMNS = 30
MAX_ARRAY_BYTES = 16 * 2**20
MAX_FILE_BYTES = 64 * 1024
_FINGERPRINT_RE = re.compile(r"^[0-9a-f]{32}\Z")


def _text(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 80 else text[:79] + "…"


def data_preview(store: Store | None, run_id: str, fingerprint: str) -> dict[str, Any]:
    """``{kept, columns, rows, total_rows, note}``: the first rows of an input of the run."""
    check_run_id(run_id)
    if not _FINGERPRINT_RE.fullmatch(fingerprint or ""):
        raise ValidationError(f"A fingerprint is 32 hex digits; got {fingerprint[:40]!r}.")
    found = None if store is None else store.query(
        "SELECT d.shape FROM run_datasets rd JOIN datasets d USING (fingerprint) "
        "WHERE rd.run_id = ? AND rd.fingerprint = ? LIMIT 1", (run_id, fingerprint))
    if not found:
        raise NotFoundError(f"Run {run_id[:8]} read no data with fingerprint "
                            f"{fingerprint[:12]}.")
    shape = json.loads(found[0][0] or "null")
    kept = store.query("SELECT format, meta FROM kept_data WHERE fingerprint = ?",
                       (fingerprint,))
    if not kept:
        return {"kept": False, "columns": [], "rows": [], "total_rows": None,
                "note": "Not kept: only the fingerprint was recorded."}
    fmt, meta = kept[0][0], json.loads(kept[0][1] or "null") or {}
    chunks = store.query("SELECT sha256, size FROM kept_chunks WHERE fingerprint = ? "
                         "ORDER BY seq LIMIT 1", (fingerprint,))
    sha, size = chunks[0]
    total = shape[0] if shape else None
    if fmt == "parquet":
        return _parquet(store, sha, meta, total)
    if fmt == "npy":
        if size > MAX_ARRAY_BYTES:
            return {"kept": True, "columns": [], "rows": [], "total_rows": total,
                    "note": "Too large to preview here: get it with get_dataset."}
        return _array(store, sha, total)
    return _file(store, sha, size)


def _parquet(store: Store, sha: str, meta: dict[str, Any], total: int | None) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(pa.BufferReader(store.artifacts.read_verified(sha)))
    head = table.slice(0, PREVIEW_ROWS)
    names = [n for n in head.column_names if not n.startswith("__index_level_")]
    names = names[:PREVIEW_COLUMNS]
    columns = [meta.get("series") if n == "__series__" and "series" in meta else n
               for n in names]
    data = [head.column(n).to_pylist() for n in names]
    rows = [[_text(column[i]) for column in data] for i in range(head.num_rows)]
    return {"kept": True, "columns": [str(c) for c in columns], "rows": rows,
            "total_rows": total, "note": None}


def _array(store: Store, sha: str, total: int | None) -> dict[str, Any]:
    import io

    import numpy as np

    array = np.load(io.BytesIO(store.artifacts.read_verified(sha)), allow_pickle=False)
    head = array[:PREVIEW_ROWS].reshape(min(len(array), PREVIEW_ROWS), -1)[:, :PREVIEW_COLUMNS]
    return {"kept": True, "columns": [str(i) for i in range(head.shape[1])],
            "rows": [[_text(v) for v in row] for row in head.tolist()],
            "total_rows": total, "note": None}


def _file(store: Store, sha: str, size: int) -> dict[str, Any]:
    with store.artifacts.open(sha) as handle:
        start = handle.read(MAX_FILE_BYTES)
    try:
        text = start.decode("utf-8")
    except UnicodeDecodeError:
        return {"kept": True, "columns": [], "rows": [], "total_rows": None,
                "note": f"A binary file of {size:,} bytes: get it with get_dataset."}
    lines = text.splitlines()[:PREVIEW_ROWS]
    return {"kept": True, "columns": ["line"], "rows": [[_text(line)] for line in lines],
            "total_rows": None, "note": None}


def model_card_html(store: Store | None, name: str, version: int) -> dict[str, Any]:
    """``{html}``: the model card of ``name/version`` as the standalone page the sidebar
    shows in a sandboxed frame (every store string escaped by the card's renderer)."""
    from ...registry.cards import model_card
    from .models import check_model_name

    check_model_name(name)
    if store is None:
        raise NotFoundError(f"No model {name!r} in the store (no model is registered yet).")
    return {"html": model_card(f"{name}/{int(version)}", store=store).html(standalone=True)}
