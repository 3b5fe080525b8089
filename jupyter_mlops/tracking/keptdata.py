"""Kept data read back: the object behind a fingerprint, from its chunks, an ``.npy``, a
file's bytes, or DVC for a file it tracks. Below ``getdata`` (which resolves references,
some through the registry) so that the registry can read kept data too.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ..errors import IntegrityError, NotFoundError
from .dvcfiles import pointer_of, read_from_dvc


@dataclass(frozen=True)
class KeptRef:
    """What a reference resolved to: the fingerprint, and the name and run it came from."""

    fingerprint: str
    kind: str
    name: str | None = None
    run_id: str | None = None


def _kept(store: Any, found: KeptRef) -> tuple[str, dict[str, Any] | None, list[str]]:
    rows = store.query("SELECT format, meta FROM kept_data WHERE fingerprint = ?",
                       (found.fingerprint,))
    if not rows:
        what = found.name or found.fingerprint[:12]
        if found.kind == "file" and pointer_of(store, found.fingerprint) is not None:
            return "dvc", pointer_of(store, found.fingerprint), []
        raise NotFoundError(
            f"The bytes of {what} (fingerprint {found.fingerprint[:12]}) were not kept: only "
            "its fingerprint was recorded (the data policy was off, or the data past its "
            "caps, when it was read). Keep data from now on with mlops.set_data_policy("
            "keep=True).")
    fmt, meta = rows[0]
    chunks = [sha for (sha,) in store.query(
        "SELECT sha256 FROM kept_chunks WHERE fingerprint = ? ORDER BY seq",
        (found.fingerprint,))]
    return fmt, None if meta is None else json.loads(meta), chunks


def read_kept(store: Any, found: KeptRef, *, check_chunks: bool = True) -> Any:
    """The object kept for ``found``. Each chunk is checked against its sha256 unless
    ``check_chunks`` is False, for a caller that compares the whole object's fingerprint
    next (the stronger check: it covers the decoding too); a chunk that cannot be decoded
    is then checked anyway, so a file changed on disk is named as such."""
    fmt, meta, chunks = _kept(store, found)
    if fmt == "dvc":
        import hashlib

        data = read_from_dvc(meta, f"The file {found.name or found.fingerprint[:12]}")
        if hashlib.sha256(data).hexdigest()[:32] != found.fingerprint:
            raise IntegrityError(
                f"DVC returned other bytes for {found.name or found.fingerprint[:12]} at "
                f"revision {meta['rev'][:12]} than the run read; they were not returned.")
        return data
    if fmt == "file":
        data = store.artifacts.read_verified(chunks[0])
        if chunks[0][:32] != found.fingerprint:
            raise IntegrityError(f"The file kept for {found.fingerprint[:12]} is another file "
                                 f"({chunks[0][:12]}); it was not returned.")
        return data
    if fmt == "npy":
        import io

        import numpy as np

        return np.load(io.BytesIO(store.artifacts.read_verified(chunks[0])),
                       allow_pickle=False)
    return _frame(store, chunks, meta or {}, check_chunks)


def _frame(store: Any, chunks: list[str], meta: dict[str, Any], check_chunks: bool) -> Any:
    """A DataFrame (or Series) from its Parquet chunks: each mapped rather than copied and
    decoded by ``ParquetFile.read`` (``read_table`` sets up a dataset scan for every file,
    half again the decoding's cost at 62 chunks) on one of two threads without pyarrow's
    own pool (two pools on two cores only contend), the tables joined without a copy and
    converted to pandas once."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    def table(sha: str):
        with store.artifacts.open(sha) as handle:
            data = _mapped(handle)
        if check_chunks and hashlib.sha256(data).hexdigest() != sha:
            store.artifacts.read_verified(sha)  # names the chunk changed on disk
            raise IntegrityError(f"Artifact file {sha[:12]} changed while it was read; it "
                                 "was not loaded. Read it again.")
        try:
            return pq.ParquetFile(pa.BufferReader(data)).read(use_threads=False)
        except (pa.ArrowException, OSError):
            if not check_chunks:
                store.artifacts.read_verified(sha)  # names a chunk changed on disk
            raise

    with ThreadPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as pool:
        tables = list(pool.map(table, chunks))
    schema = {k.encode(): v.encode() for k, v in meta.get("schema", {}).items()}
    frame = pa.concat_tables(tables).replace_schema_metadata(schema).to_pandas()
    if "series" in meta:
        series = frame["__series__"]
        series.name = meta["series"]
        return series
    return frame


def _mapped(handle: Any) -> Any:
    """A chunk file's bytes mapped into memory rather than read: reading 2 MiB into a new
    bytes object faults in and zeroes fresh pages, as costly as decoding them. An artifact
    is never written in place (it is written under a temporary name and renamed), so the
    mapping holds the bytes that were opened."""
    import mmap

    import pyarrow as pa

    try:
        return pa.py_buffer(mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ))
    except (ValueError, OSError):  # an empty file cannot be mapped: read it as it is
        return handle.read()


def changed_chunk(store: Any, found: KeptRef) -> None:
    """Raise IntegrityError naming the first of ``found``'s chunks changed on disk."""
    for sha in _kept(store, found)[2]:
        store.artifacts.read_verified(sha)
