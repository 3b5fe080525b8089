"""Child runs recorded after the fact: a search's candidates, each of several fits of a cell.

A search has already run every candidate by the time autolog sees it, so a child is written
whole, already ended, in one write transaction (a savepoint of the caller's batch when
there is one, so a tracked cell still costs one transaction). Everything is checked
before anything is written: a bad key or value refuses the child, never half of it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import storage
from ..entities import TERMINAL_STATUSES
from ..errors import NotFoundError, ValidationError, shorten
from ..store import Store
from ..validation import check_name, check_tag, encode_param, metric_step, metric_value
from .runs import new_run_id


@dataclass(frozen=True)
class ChildArtifact:
    """Bytes already put in the artifact store (``store.artifacts.put_bytes``), to link."""

    name: str
    kind: str
    sha256: str
    size: int
    media_type: str | None = None
    pickled: bool = False


def _metric_rows(metrics: Mapping[str, Any]) -> list[tuple[str, float, int]]:
    """``key -> number`` is one value at step 0, ``key -> sequence`` one value per step
    from 0, ``key -> {step: number}`` values at those steps."""
    rows = []
    for key, value in metrics.items():
        check_name("Metric name", key)
        if isinstance(value, Mapping):
            rows.extend((key, metric_value(key, v), metric_step(s, key)) for s, v in value.items())
        elif isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
            rows.extend((key, metric_value(key, v), step) for step, v in enumerate(value))
        else:
            rows.append((key, metric_value(key, value), 0))
    return rows


def log_child_run(
    parent_run_id: str,
    *,
    name: str | None = None,
    params: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
    artifacts: Iterable[ChildArtifact] = (),
    datasets: Iterable[tuple[str, str, dict[str, Any]]] = (),
    status: str = "FINISHED",
    start_time: float | None = None,
    end_time: float | None = None,
    store: Store | None = None,
) -> str:
    """Record a finished child of ``parent_run_id``, whole, in one write; returns its id.

    The child takes its parent's experiment, session and cell, and a ``parent_run_id``
    tag beside the column (MLflow keeps the parent in a tag). ``metrics`` maps a key to a
    number (step 0), a sequence of numbers (steps 0, 1, ...) or a ``{step: number}`` dict.

    Examples
    --------
    >>> with start_run("search") as parent:                         # doctest: +SKIP
    ...     log_child_run(parent.run_id, name="C=0.1", params={"C": 0.1},
    ...                   metrics={"mean_test_score": 0.93})
    """
    from ..store.current import get_store

    store = store or get_store()
    if status not in TERMINAL_STATUSES:
        raise ValidationError(f"A child run ends FINISHED, FAILED or KILLED; got "
                              f"{shorten(status)}.")
    if name is not None:
        check_name("Run name", name)
    encoded = {check_name("Param name", k): encode_param(k, v) for k, v in (params or {}).items()}
    rows = _metric_rows(metrics or {})
    checked_tags = {check_name("Tag key", k): check_tag(k, v) for k, v in (tags or {}).items()}
    for when in (start_time, end_time):
        if when is not None and not (isinstance(when, (int, float)) and math.isfinite(when)):
            raise ValidationError(f"A child run's start and end are POSIX times in seconds; "
                                  f"got {shorten(when)}.")
    artifacts, datasets = list(artifacts), list(datasets)
    found = store.query(
        "SELECT e.name, r.session_id, r.cell_id, r.execution_count FROM runs r "
        "JOIN experiments e USING (experiment_id) WHERE r.run_id = ?", (parent_run_id,))
    if not found:
        raise NotFoundError(f"No run {shorten(parent_run_id)} to be the parent of a child run.")
    experiment, session_id, cell_id, execution_count = found[0]
    checked_tags.setdefault("parent_run_id", parent_run_id)
    run_id = new_run_id()
    now = time.time()
    ended = now if end_time is None else end_time
    started = min(now, ended) if start_time is None else start_time
    with store.batch():
        storage.create_run(
            store, run_id, experiment, name, checked_tags, session_id=session_id, cell_id=cell_id,
            execution_count=execution_count, parent_run_id=parent_run_id,
            start_time=started)
        storage.log_params(store, run_id, encoded)
        if rows:
            storage.log_metrics(store, run_id, rows, ended)
        for artifact in artifacts:
            storage.add_artifact(store, run_id, artifact.name, artifact.kind, artifact.sha256,
                               artifact.size, artifact.media_type, pickled=artifact.pickled)
        if datasets:
            storage.add_datasets(store, run_id, datasets)
        storage.finish_run(store, run_id, status, end_time=ended)
    return run_id


__all__ = ["ChildArtifact", "log_child_run"]
