"""Dask for data that outgrows one machine: recognising Dask collections, finding the
client, and running one task per partition with the results back in partition order.

Dask stays optional: nothing here imports it until a Dask collection or a ``client=`` is
given (a ``dask.dataframe.DataFrame`` is recognised by its type's module, not by import).
Results come back through a bounded window of partitions in flight, so the caller's memory
holds a few partitions' summaries at a time, never the whole data set.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from .errors import ValidationError, shorten

WINDOW = 4  # partitions in flight per call of ``ordered``


def is_dask(value: Any) -> bool:
    """Whether ``value`` is a Dask DataFrame or Series (without importing Dask)."""
    module = type(value).__module__ or ""
    return module.split(".")[0] in ("dask", "dask_expr") and hasattr(value, "npartitions")


def get_client(client: Any = None) -> Any:
    """The ``dask.distributed.Client`` to run on: ``client`` itself, a client connected to
    the address ``client`` names, or None (Dask's own scheduler, or the default client)."""
    if client is None:
        try:
            from distributed import default_client
        except ImportError:
            return None
        try:
            return default_client()
        except ValueError:  # no client started in this process
            return None
    if isinstance(client, str):
        try:
            from distributed import Client
        except ImportError:
            raise ValidationError("client='...' needs dask.distributed: "
                                  "pip install 'jupyter-mlops[dask]'") from None
        try:
            return Client(client, timeout=10)
        except (OSError, TimeoutError) as exc:
            raise ValidationError(f"No Dask scheduler answers at {shorten(client)} ({exc}); "
                                  "start one or pass a running Client.") from None
    if type(client).__name__ != "Client" or not hasattr(client, "compute"):
        raise ValidationError(f"client= is a dask.distributed.Client or a scheduler address; "
                              f"got {type(client).__name__}.")
    return client


def as_dask(data: Any, client: Any, what: str, npartitions: int | None = None) -> Any:
    """``data`` as a Dask DataFrame: itself when it is one; a pandas frame split into
    partitions when only ``client=`` asks for Dask."""
    if is_dask(data):
        return data
    import pandas as pd

    if not isinstance(data, (pd.DataFrame, pd.Series)):
        raise ValidationError(f"With client=, the {what} is a pandas or Dask DataFrame; got "
                              f"{type(data).__name__}.")
    import dask.dataframe as dd

    workers = len(client.scheduler_info().get("workers", {})) if client is not None else 2
    return dd.from_pandas(data, npartitions=npartitions or max(2, workers))


def ordered(fn: Callable[..., Any], parts: list[Any], client: Any, *args: Any,
            window: int = WINDOW) -> Iterator[Any]:
    """``fn(part, *args)`` for every partition (a Dask delayed object), yielded in
    partition order with at most ``window`` results waiting. On a distributed client a
    task whose worker dies is run again elsewhere (Dask's ``allowed-failures``)."""
    import dask

    if client is None:
        for start in range(0, len(parts), window):
            batch = [dask.delayed(fn)(part, *args) for part in parts[start:start + window]]
            yield from dask.compute(*batch, scheduler="threads")
        return
    pending = []
    for part in parts:
        pending.append(client.compute(dask.delayed(fn)(part, *args)))
        if len(pending) >= window:
            yield pending.pop(0).result()
    while pending:
        yield pending.pop(0).result()


def share(value: Any, client: Any) -> Any:
    """``value`` sent once to every worker (a future tasks take as an argument), or
    ``value`` itself without a distributed client."""
    if client is None:
        return value
    return client.scatter(value, broadcast=True, hash=False)


__all__ = ["as_dask", "get_client", "is_dask", "ordered", "share"]


def _row_hashes(part: Any) -> bytes:
    from .tracking.datasets import _pandas_bytes

    return _pandas_bytes(part)


def fingerprint(frame: Any, client: Any) -> dict[str, Any]:
    """The fingerprint ``tracking.datasets.fingerprint`` gives the same rows as one pandas
    frame: each row's hash (index included) depends on that row alone, so the partitions'
    hashes, joined in order, are the very bytes hashed on one machine."""
    import hashlib
    import json

    from .tracking.datasets import FINGERPRINT_LENGTH

    bodies = list(ordered(_row_hashes, frame.to_delayed(), client))
    rows = sum(len(b) for b in bodies) // 8
    series = getattr(frame, "ndim", 2) == 1
    meta = frame._meta
    columns = [str(meta.name)] if series else [str(c) for c in meta.columns]
    dtypes = [str(meta.dtype)] if series else [str(t) for t in meta.dtypes]
    kind = "series" if series else "dataframe"
    shape = [rows] if series else [rows, len(columns)]
    hasher = hashlib.sha256(json.dumps([kind, shape, columns, dtypes], allow_nan=False,
                                       separators=(",", ":")).encode())
    for body in bodies:
        hasher.update(body)
    return {"fingerprint": hasher.hexdigest()[:FINGERPRINT_LENGTH], "kind": kind,
            "shape": shape, "columns": columns, "dtypes": dtypes}
