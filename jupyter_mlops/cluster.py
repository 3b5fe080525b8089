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

from .errors import MLOpsError, ValidationError, shorten

WINDOW = 4  # partitions in flight per call of ``ordered``


class ClusterError(MLOpsError):
    """The Dask cluster lost a task for good: its workers died or it went away."""


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
    task whose worker dies is run again elsewhere (Dask's ``allowed-failures``); a task
    that kills every worker it is given ends in one line (``ClusterError``)."""
    import dask

    if client is None:
        for start in range(0, len(parts), window):
            batch = [dask.delayed(fn)(part, *args) for part in parts[start:start + window]]
            yield from dask.compute(*batch, scheduler="threads")
        return
    pending = []
    try:
        for index, part in enumerate(parts):
            pending.append((index, client.compute(dask.delayed(fn)(part, *args))))
            if len(pending) >= window:
                yield _result(*pending.pop(0), len(parts))
        while pending:
            yield _result(*pending.pop(0), len(parts))
    finally:
        for _, future in pending:
            future.cancel()


def _result(index: int, future: Any, total: int) -> Any:
    """A partition's result; a cluster that lost the task is one line naming it."""
    from distributed import KilledWorker
    from distributed.client import FutureCancelledError
    from distributed.comm import CommClosedError

    try:
        return future.result()
    except KilledWorker:
        raise ClusterError(
            f"Partition {index + 1} of {total} killed every Dask worker that ran it (out of "
            "memory, or a crash in the model); give the workers more memory or smaller "
            "partitions (blocksize=).") from None
    except (FutureCancelledError, CommClosedError) as exc:
        raise ClusterError(f"The Dask cluster lost partition {index + 1} of {total} "
                           f"({type(exc).__name__}); check that its scheduler and workers "
                           "are up, then run again.") from None


def _same(value: Any) -> Any:
    return value


def share(value: Any, client: Any) -> Any:
    """``value`` as a future the tasks take as an argument (each worker fetches it once), or
    ``value`` itself without a distributed client. It is a task holding the value, not
    scattered data: when every worker that held it dies, the scheduler makes it again."""
    if client is None:
        return value
    return client.submit(_same, value, pure=False)


__all__ = ["ClusterError", "as_dask", "get_client", "is_dask", "ordered", "share"]


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
