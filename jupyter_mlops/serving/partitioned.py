"""Batch scoring on a Dask cluster: the signed model mapped over the partitions.

The client resolves the version and checks its signature, then hands the model's bytes to
the cluster once, as a task's value each worker fetches once (``cluster.share``). Each worker checks, before unpickling, that
the bytes hash to the registered sha256 and that the digest carries this user's signature
(the worker reads the same key file), keeps the loaded model for the next partitions, and
scores a partition as the single-process path scores a chunk (the same signature checks and
output columns). The scored partitions come back in order, a few at a time, and are written
by the same writers to a file beside the output, renamed into place at the end: the output
is never half-written. A worker that dies mid-partition loses only that task, which Dask
runs again on another worker.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any

from ..errors import ValidationError

_LOADED: dict[str, Any] = {}  # on a worker: sha256 -> the served model
_LOCK = threading.Lock()


def model_payload(uri: str, store: Any) -> dict[str, Any]:
    """What a worker needs to load and check the version ``uri`` names."""
    from ..registry.versions import _checked, _open_artifact
    from ..store.serialize import check_signed

    version, _row, hmac = _checked(store, uri, "scored", "model", False)
    what = f"Model {version.name}/{version.version}"
    check_signed(version.sha256, hmac, what)
    with _open_artifact(store, version, version.sha256) as handle:
        data = handle.read()
    return {"uri": uri, "label": f"{version.name}/{version.version}", "version": version,
            "sha256": version.sha256, "hmac": hmac, "bytes": data, "what": what}


def _served(payload: dict[str, Any]) -> Any:
    """The model on this worker, loaded once per process and checked before unpickling."""
    sha = payload["sha256"]
    with _LOCK:
        if sha in _LOADED:
            return _LOADED[sha]
        from ..store.serialize import _unpickle, check_signed
        from ..tracking.frameworks import predictor
        from .deployment import ServedModel
        from .formats import InputSpec

        actual = hashlib.sha256(payload["bytes"]).hexdigest()
        if actual != sha:
            raise ValidationError(f"{payload['what']} reached the worker changed: its sha256 "
                                  f"is {actual[:12]}…, the registry holds {sha[:12]}….")
        check_signed(sha, payload["hmac"], payload["what"])
        model = predictor(_unpickle(bytearray(payload["bytes"])))
        version = payload["version"]
        served = ServedModel(payload["uri"], version, model,
                             InputSpec.from_signature(version.signature))
        _LOADED[sha] = served
        return served


def _score_partition(part: Any, payload: dict[str, Any], column: str,
                     keep_columns: bool, predict_chunk: Any) -> Any:
    from .formats import BadRequest

    try:
        return predict_chunk(_served(payload), part, column, keep_columns)
    except BadRequest as exc:
        raise ValidationError(str(exc)) from None


def read_input(source: Path, in_format: str, spec: Any, blocksize: str | int) -> Any:
    """A CSV or Parquet file as a Dask DataFrame the workers read in blocks."""
    import dask.dataframe as dd

    if in_format == "csv":
        sep = "\t" if str(source).lower().endswith(".tsv") else ","
        return dd.read_csv(str(source), sep=sep, blocksize=blocksize,
                           dtype={c: str for c in spec.text_columns} or None)
    return dd.read_parquet(str(source), split_row_groups=True)


def score_partitions(frame: Any, payload: dict[str, Any], client: Any, writer: Any,
                     column: str, keep_columns: bool, predict_chunk: Any) -> tuple[int, int]:
    """Score every partition of ``frame`` on the cluster with ``predict_chunk`` (the
    chunked path's), writing them in order; the number of rows and of partitions."""
    from ..cluster import ordered, share

    if keep_columns and column in frame.columns:
        raise ValidationError(
            f"The input already has a column {column!r}; name the predictions another way "
            "with --prediction-column.")
    shared = share(payload, client)
    rows = parts = 0
    for scored in ordered(_score_partition, frame.to_delayed(), client, shared, column,
                          keep_columns, predict_chunk, window=2):
        if len(scored):
            writer.write(scored)
        rows += len(scored)
        parts += 1
    return rows, parts
