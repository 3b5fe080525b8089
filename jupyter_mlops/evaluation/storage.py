"""Evaluations in the store: one row of strict JSON (``store.jsoncodec``), figures as
artifacts once drawn. Nothing here imports numpy, pandas or scikit-learn.

Rows written before the codec hold a non-finite number as ``null`` with its JSON Pointer
recorded in ``details`` (``"nonfinite": {"metrics": {"/r2": "nan"}, "details": {...}}``);
``load`` still reads them.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from ..errors import NotFoundError, ValidationError, shorten
from ..store import jsoncodec
from ..tracking.storage import write_datasets

_ID_PREFIX = re.compile(r"^[0-9a-f]{4,32}\Z")
_COLUMNS = ("evaluation_id, run_id, model_uri, name, task, created, dataset_fingerprint, "
            "target_fingerprint, n_rows, metrics, details, figures")


def insert(store, row: dict[str, Any], datasets: list[tuple[str, str, dict[str, Any]]]) -> None:
    """Write one evaluation and the data it was computed on, in one transaction."""
    with store.write() as conn:
        write_datasets(conn, datasets, row["run_id"])
        conn.execute(
            f"INSERT INTO evaluations ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (row["evaluation_id"], row["run_id"], row["model_uri"], row["name"], row["task"],
             row["created"], row["dataset_fingerprint"], row["target_fingerprint"],
             row["n_rows"], jsoncodec.dumps(row["metrics"]),
             jsoncodec.dumps(row["details"]), jsoncodec.dumps({})),
        )


def load(store, evaluation_id: str) -> dict[str, Any]:
    """The stored row of one evaluation, numbers decoded, as a dict of its columns."""
    rows = store.query(f"SELECT {_COLUMNS} FROM evaluations WHERE evaluation_id = ?",
                       (evaluation_id,))
    if not rows:
        raise NotFoundError(f"No evaluation {evaluation_id!r} in {store.path}.")
    names = [c.strip() for c in _COLUMNS.split(",")]
    row = dict(zip(names, rows[0]))
    details = jsoncodec.loads(row["details"])
    if "nonfinite" in details:  # written before the codec
        row["metrics"], row["details"] = _before_codec(row["metrics"], row["details"])
    else:
        row["metrics"], row["details"] = jsoncodec.loads(row["metrics"]), details
    row["figures"] = jsoncodec.loads(row["figures"] or "{}")
    return row


def _before_codec(metrics: str, details: str) -> tuple[Any, Any]:
    """Metrics and details as rows written before the codec hold them: plain JSON, each
    non-finite number null and named by its JSON Pointer in ``details["nonfinite"]``."""
    values = {"metrics": json.loads(metrics), "details": json.loads(details)}
    flags = values["details"].pop("nonfinite")
    for part, pointers in flags.items():
        for pointer, name in pointers.items():
            keys = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
            if not keys:
                values[part] = float(name)
                continue
            target = values[part]
            for key in keys[:-1]:
                target = target[int(key)] if isinstance(target, list) else target[key]
            last = keys[-1]
            target[int(last) if isinstance(target, list) else last] = float(name)
    return values["metrics"], values["details"]


def resolve(store, ref: str) -> str:
    """An evaluation id from a full id or a unique prefix of at least 4 hex characters."""
    text = ref.strip().lower() if isinstance(ref, str) else ""
    if not _ID_PREFIX.match(text):
        raise ValidationError(
            f"An evaluation is named by its id or an id prefix of at least 4 hex characters; "
            f"got {shorten(ref)}."
        )
    rows = store.query("SELECT evaluation_id FROM evaluations WHERE evaluation_id >= ? AND "
                       "evaluation_id < ? LIMIT 2", (text, text + "g"))
    if len(rows) > 1:
        raise ValidationError(f"Evaluation prefix {text!r} matches several; give more characters.")
    if not rows:
        raise NotFoundError(f"No evaluation {text!r} in {store.path}.")
    return rows[0][0]


def latest_for(store, column: str, value: str) -> str | None:
    """The newest evaluation whose ``run_id`` or ``model_uri`` is ``value``, or None."""
    assert column in ("run_id", "model_uri")
    rows = store.query(f"SELECT evaluation_id FROM evaluations WHERE {column} = ? "
                       "ORDER BY created DESC, rowid DESC LIMIT 1", (value,))
    return rows[0][0] if rows else None


def add_figure(store, evaluation_id: str, run_id: str | None, artifact_name: str,
               figure: str, png: bytes) -> str:
    """Keep a drawn figure: its PNG as an artifact, linked to the evaluation and the run."""
    digest, size = store.artifacts.put_bytes(png)
    with store.write() as conn:
        (current,) = conn.execute("SELECT figures FROM evaluations WHERE evaluation_id = ?",
                                  (evaluation_id,)).fetchone()
        figures = jsoncodec.loads(current or "{}")
        if figures.get(figure) == digest:
            return digest
        figures[figure] = digest
        conn.execute("UPDATE evaluations SET figures = ? WHERE evaluation_id = ?",
                     (jsoncodec.dumps(figures), evaluation_id))
        if run_id is not None:
            conn.execute(
                "INSERT INTO artifacts (run_id, name, kind, sha256, size, media_type, created) "
                "VALUES (?, ?, 'figure', ?, ?, 'image/png', ?) ON CONFLICT (run_id, name) DO "
                "UPDATE SET sha256 = excluded.sha256, size = excluded.size, "
                "created = excluded.created",
                (run_id, artifact_name, digest, size, time.time()),
            )
    return digest
