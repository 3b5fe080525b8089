"""The datasets of a store, with the runs and model versions that used them.

One row a dataset: its fingerprint, kind and shape, whether its bytes are kept (and how
many), and which runs read it under which names, and which registered versions name it
among their data.
"""

from __future__ import annotations

import json
from typing import Any


def list_datasets(store: Any = None, *, run: str | None = None) -> Any:
    """A DataFrame of the datasets in the store, newest first; with ``run`` (an id or a
    prefix) only those that run read.

    Examples
    --------
    >>> import jupyter_mlops as mlops
    >>> mlops.list_datasets()[["fingerprint", "kind", "kept", "runs"]]  # doctest: +SKIP
    >>> mlops.list_datasets(run="3f2a9c01")                             # doctest: +SKIP
    """
    import pandas as pd

    from ..store.current import get_store

    store = store or get_store()
    where, params = "", ()
    if run is not None:
        from .storage import resolve_run_id

        where = ("WHERE d.fingerprint IN (SELECT fingerprint FROM run_datasets "
                 "WHERE run_id = ?) ")
        params = (resolve_run_id(store, run),)
    rows = store.query(
        "SELECT d.fingerprint, d.kind, d.shape, d.created, k.size FROM datasets d "
        f"LEFT JOIN kept_data k USING (fingerprint) {where}"
        "ORDER BY d.created DESC, d.fingerprint", params)
    uses: dict[str, list[tuple[str, str, str]]] = {}
    for fp, run_id, name, role in store.query(
            "SELECT fingerprint, run_id, name, role FROM run_datasets ORDER BY run_id"):
        uses.setdefault(fp, []).append((run_id, name, role))
    versions: dict[str, list[str]] = {}
    for name, version, datasets in store.query(
            "SELECT name, version, datasets FROM model_versions ORDER BY name, version"):
        for dataset in json.loads(datasets or "[]"):
            versions.setdefault(dataset["fingerprint"], []).append(f"{name}/{version}")
    records = []
    for fp, kind, shape, created, size in rows:
        used = uses.get(fp, [])
        records.append({
            "fingerprint": fp, "kind": kind, "shape": tuple(json.loads(shape)),
            "kept": size is not None, "kept_bytes": size,
            "names": sorted({name for _, name, _ in used}),
            "roles": sorted({role for _, _, role in used}),
            "runs": list(dict.fromkeys(run_id[:8] for run_id, _, _ in used)),
            "versions": versions.get(fp, []),
            "created": pd.Timestamp(created, unit="s"),
        })
    columns = ["fingerprint", "kind", "shape", "kept", "kept_bytes", "names", "roles", "runs",
               "versions", "created"]
    return pd.DataFrame.from_records(records, columns=columns)
