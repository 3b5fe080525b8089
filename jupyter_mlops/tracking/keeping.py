"""Keeping the bytes behind a fingerprint, deduplicated, so a run's data can be had back.

A DataFrame (or Series) is cut into row chunks of a fixed, power-of-two number of rows
(about 2 MiB of memory each) counted from its first row, and each chunk is written as
Parquet by pyarrow and stored as an artifact named by its own sha256: a dataset with rows
appended shares every chunk but its last with the one before, and only the new chunks take
room. The pandas metadata (index, column names, dtypes) lives in the ``kept_data`` row, not
in the chunks, since it changes with the row count. An array is kept as one ``.npy``, a file
as it is. Every chunk is written to a temporary file and renamed into place before the rows
naming it are written in one transaction: a kill leaves no partial chunk and no row
pointing at a missing one (at worst an unreferenced chunk, which ``gc`` lists).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .datapolicy import DataPolicy, data_policy

CHUNK_MEMORY = 2 * 2**20
MIN_CHUNK_ROWS = 1024
MAX_CHUNK_ROWS = 2**20
_KEPT_KINDS = ("dataframe", "series", "ndarray")
_THREADS = min(2, os.cpu_count() or 1)
_READ_WHOLE = 16 * 2**20  # a file this small is read into memory once rather than streamed


def note(message: str) -> None:
    """One line, never an error: the data was fingerprinted, its bytes were not kept."""
    warnings.warn(f"jupyter_mlops: {message}", stacklevel=3)


def is_kept(store: Any, fingerprint: str) -> bool:
    return bool(store.query("SELECT 1 FROM kept_data WHERE fingerprint = ?", (fingerprint,)))


def kept_bytes(store: Any) -> int:
    """The bytes of kept data in the store, each chunk counted once."""
    (total,) = store.query(
        "SELECT coalesce(sum(size), 0) FROM (SELECT DISTINCT sha256, size FROM kept_chunks)")[0]
    return int(total)


def chunk_rows(frame: Any) -> int:
    """Rows a chunk holds: a power of two near ``CHUNK_MEMORY`` of the frame's memory, so
    the same columns give the same boundaries however many rows follow."""
    if len(frame) == 0:
        return MAX_CHUNK_ROWS
    per_row = max(1.0, float(frame.memory_usage(index=True, deep=False).sum()) / len(frame))
    rows = 2 ** round(math.log2(CHUNK_MEMORY / per_row))
    return int(min(MAX_CHUNK_ROWS, max(MIN_CHUNK_ROWS, rows)))


def _memory(value: Any, kind: str) -> int:
    if kind == "ndarray":
        return int(value.nbytes)
    usage = value.memory_usage(index=True, deep=False)
    return int(usage.sum() if kind == "dataframe" else usage)


def keep_data(store: Any, info: dict[str, Any], value: Any,
              policy: DataPolicy | None = None, label: str | None = None) -> bool:
    """Keep ``value`` (whose fingerprint record is ``info``, already in ``datasets``) under
    the store's policy; True when its bytes are kept (now or before)."""
    fingerprint, kind = info["fingerprint"], info["kind"]
    policy = policy or data_policy(store)
    if not policy.keep or is_kept(store, fingerprint):
        return policy.keep
    what = label or fingerprint[:12]
    if kind not in _KEPT_KINDS:
        note(f"{what!s} ({kind}) is fingerprinted only: only DataFrames, Series, arrays and "
             "files are kept.")
        return False
    size = _memory(value, kind)
    if not _room(store, policy, size, what):
        return False

    def put(index: int) -> tuple[str, int | None, int]:
        """Encode, hash and store one chunk: a chunk's bytes are written while the next is
        encoded, and only a few chunks are in memory at once."""
        try:
            data, rows = encode(index)
        except Exception as exc:  # noqa: BLE001 - an odd column type: fingerprint only
            raise _Unkeepable(exc) from None
        digest, length = store.artifacts.put_bytes(data, hashlib.sha256(data).hexdigest())
        return digest, rows, length

    def unkeepable(exc: BaseException) -> bool:
        note(f"{what} is fingerprinted only: its content cannot be written as "
             f"{'.npy' if kind == 'ndarray' else 'Parquet'} ({type(exc).__name__}: "
             f"{str(exc)[:120]}).")
        return False

    try:
        if kind == "ndarray":
            encode, count, fmt, meta = _npy(value)
        else:
            encode, count, fmt, meta = _parquet(value, kind)
    except Exception as exc:  # noqa: BLE001 - an odd column type: fingerprint only
        return unkeepable(exc)
    try:
        # pyarrow and hashlib release the GIL: two chunks are encoded, hashed and written
        # at once.
        with ThreadPoolExecutor(max_workers=_THREADS) as pool:
            chunks = list(pool.map(put, range(count)))
    except _Unkeepable as exc:  # chunks stored before it are unreferenced: gc lists them
        return unkeepable(exc.args[0])
    record(store, fingerprint, fmt, meta, chunks)
    return True


class _Unkeepable(Exception):
    """Encoding a chunk failed (its cause is the first argument): the value is
    fingerprinted only."""


def _room(store: Any, policy: DataPolicy, size: int, what: str,
          used: int | None = None) -> bool:
    if size > policy.max_dataset_bytes:
        note(f"{what} is fingerprinted only: {size:,} bytes is past the data policy's "
             f"{policy.max_dataset_bytes:,} a dataset (mlops.set_data_policy("
             "max_dataset_bytes=...) raises it).")
        return False
    if (kept_bytes(store) if used is None else used) + size > policy.max_store_bytes:
        note(f"{what} is fingerprinted only: the store keeps at most "
             f"{policy.max_store_bytes:,} bytes of data (mlops.set_data_policy("
             "max_store_bytes=...) raises it; jupyter-mlops gc --dry-run lists what is unused).")
        return False
    return True


def record(store: Any, fingerprint: str, fmt: str, meta: dict[str, Any] | None,
           chunks: list[tuple[str, int | None, int]]) -> None:
    """The rows naming kept chunks, in one transaction, once the chunks are on disk."""
    with store.write() as conn:
        _record(conn, fingerprint, fmt, meta, chunks)


def _record(conn: Any, fingerprint: str, fmt: str, meta: dict[str, Any] | None,
            chunks: list[tuple[str, int | None, int]]) -> None:
    inserted = conn.execute(
        "INSERT OR IGNORE INTO kept_data (fingerprint, format, meta, size, created) "
        "VALUES (?, ?, ?, ?, ?)",
        (fingerprint, fmt, None if meta is None else json.dumps(meta, allow_nan=False),
         sum(c[2] for c in chunks), time.time())).rowcount
    if inserted:
        conn.executemany(
            "INSERT INTO kept_chunks (fingerprint, seq, sha256, rows, size) "
            "VALUES (?, ?, ?, ?, ?)",
            [(fingerprint, seq, *chunk) for seq, chunk in enumerate(chunks)])


def _npy(array: Any) -> tuple[Callable[[int], tuple[bytes, int | None]], int, str, None]:
    """(encode, 1, "npy", None): the array is one ``.npy`` chunk."""
    import numpy as np

    if array.dtype.hasobject:
        raise TypeError("an array of Python objects is not kept (np.save would pickle it)")

    def encode(_: int) -> tuple[bytes, int | None]:
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        return buffer.getvalue(), int(array.shape[0]) if array.ndim else None

    return encode, 1, "npy", None


def _parquet(value: Any, kind: str) -> tuple[Callable[[int], tuple[bytes, int]], int, str,
                                             dict[str, Any]]:
    """(encode, chunks, "parquet", meta): ``encode(i)`` gives chunk ``i`` as Parquet bytes
    and its row count."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    meta: dict[str, Any] = {}
    frame = value
    if kind == "series":
        name = value.name
        if name is not None and not isinstance(name, (str, int, float)):
            raise TypeError(f"a Series named by a {type(name).__name__} is not kept")
        meta["series"] = name
        frame = value.to_frame(name="__series__")
    table = pa.Table.from_pandas(frame, preserve_index=None)
    meta["schema"] = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
    bare = table.replace_schema_metadata(None)
    step = chunk_rows(frame)
    # A chunk's floats are mostly distinct: a dictionary of them only adds bytes (a whole
    # frame's grows past the dictionary page limit and falls back to plain on its own).
    dictionary = [f.name for f in bare.schema if not pa.types.is_floating(f.type)]

    def encode(index: int) -> tuple[bytes, int]:
        piece = bare.slice(index * step, step)
        sink = pa.BufferOutputStream()
        pq.write_table(piece, sink, compression="snappy", use_dictionary=dictionary)
        return sink.getvalue().to_pybytes(), piece.num_rows

    return encode, max(1, math.ceil(len(frame) / step)), "parquet", meta


def keep_files(store: Any, paths: list[str], policy: DataPolicy | None = None,
               skip: frozenset[str] = frozenset()) -> list[tuple[str, str, int, float]]:
    """Fingerprint the files at ``paths`` and keep them under the policy, except those in
    ``skip`` (under DVC at a committed revision): ``(path, sha256, size, mtime)`` of each
    that is still a regular file. Their rows are written in one transaction once every
    kept file is on disk."""
    policy = policy or data_policy(store)
    used = kept_bytes(store) if policy.keep else 0
    found, kept = [], []
    for path in paths:
        try:
            info = os.stat(path)
        except OSError:
            continue
        if not os.path.isfile(path):
            continue
        keep = policy.keep and path not in skip and _room(store, policy, info.st_size,
                                                          path, used)
        if keep and info.st_size <= _READ_WHOLE:  # read once: hashed, then stored if new
            with open(path, "rb") as handle:
                data = handle.read()
            digest, size = store.artifacts.put_bytes(data, hashlib.sha256(data).hexdigest())
            used += size
            kept.append((digest, size, os.path.basename(path)))
        elif keep:
            digest, size = store.artifacts.put_file(path)
            used += size
            kept.append((digest, size, os.path.basename(path)))
        else:
            hasher = hashlib.sha256()
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(2**20), b""):
                    hasher.update(block)
            digest, size = hasher.hexdigest(), info.st_size
        found.append((path, digest, size, info.st_mtime))
    if kept:
        from . import storage

        with store.write() as conn:
            storage.write_datasets(
                conn, [(name, "file", file_info(sha, size)) for sha, size, name in kept], None)
            for sha, size, name in kept:
                _record(conn, sha[:32], "file", {"name": name}, [(sha, None, size)])
    return found


def file_info(sha256: str, size: int) -> dict[str, Any]:
    """The fingerprint record of a file: its sha256 (cut as every fingerprint is)."""
    return {"fingerprint": sha256[:32], "kind": "file", "shape": [size], "columns": None,
            "dtypes": None}


def keep_training(store: Any, data: Any, label: str, lineage: set[str]) -> bool:
    """Keep a registered model's training data under the policy when it is data of the
    version's ``lineage`` (fingerprints), not a sample of it; never raises: its fingerprint
    is in the lineage either way."""
    from . import storage
    from .datasets import fingerprint

    try:
        info = fingerprint(data)
        if info is None or info["fingerprint"] not in lineage:
            return False
        if is_kept(store, info["fingerprint"]):
            return True
        with store.write() as conn:
            storage.write_datasets(conn, [("reference", "reference", info)], None)
        return keep_data(store, info, data, label=label)
    except Exception as exc:  # noqa: BLE001
        note(f"{label} was not kept ({type(exc).__name__}: {str(exc)[:120]}).")
        return False


def keep_inputs(store: Any, inputs: list[tuple[str, str, dict[str, Any]]],
                namespace: Any) -> int:
    """Keep the data of ``(name, role, fingerprint record)`` inputs whose value is still
    ``namespace[name]``; how many are kept. Never raises: keeping is a convenience."""
    kept = 0
    try:
        policy = data_policy(store)
        if not policy.keep:
            return 0
        for name, _role, info in inputs:
            value = namespace.get(name) if hasattr(namespace, "get") else None
            if value is None:
                continue
            try:
                kept += keep_data(store, info, value, policy, label=name)
            except Exception as exc:  # noqa: BLE001
                note(f"{name} is fingerprinted only: keeping it failed "
                     f"({type(exc).__name__}: {str(exc)[:120]}).")
    except Exception as exc:  # noqa: BLE001 - an older store without the tables, say
        note(f"the data of this run was not kept ({type(exc).__name__}: {str(exc)[:120]}).")
    return kept
