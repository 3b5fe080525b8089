"""Evaluations in the store: one row of strict JSON, figures as artifacts once drawn.

SQLite and strict JSON have no NaN or infinity, so a non-finite number is written as
``null`` and its JSON Pointer recorded beside it (``"nonfinite": {"/r2": "nan"}``); reading
puts the number back. Nothing here imports numpy, pandas or scikit-learn.
"""

from __future__ import annotations

import json
import math
import re
import time
from typing import Any

from ..errors import NotFoundError, ValidationError, shorten
from ..store.sqlite import write_datasets

_ID_PREFIX = re.compile(r"^[0-9a-f]{4,32}\Z")
_COLUMNS = ("evaluation_id, run_id, model_uri, name, task, created, dataset_fingerprint, "
            "target_fingerprint, n_rows, metrics, details, figures")


def plain(value: Any) -> Any:
    """``value`` with numpy arrays and scalars turned into lists and Python numbers."""
    if isinstance(value, dict):
        return {k if isinstance(k, str) else str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return float(value)  # np.float64 is a float subclass: make it a plain float
    tolist = getattr(value, "tolist", None)  # numpy arrays and scalars
    if tolist is not None:
        return plain(tolist())
    return str(value)


def _pointer_part(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def encode(value: Any) -> tuple[Any, dict[str, str]]:
    """A strict-JSON copy of a plain value, and the JSON Pointers of the non-finite numbers."""
    flags: dict[str, str] = {}

    def walk(item: Any, path: str) -> Any:
        if isinstance(item, float):
            if math.isfinite(item):
                return item
            flags[path] = "nan" if math.isnan(item) else ("inf" if item > 0 else "-inf")
            return None
        if isinstance(item, dict):
            return {k: walk(v, f"{path}/{_pointer_part(k)}") for k, v in item.items()}
        if isinstance(item, list):
            return [walk(v, f"{path}/{i}") for i, v in enumerate(item)]
        return item

    return walk(value, ""), flags


def decode(value: Any, flags: dict[str, str]) -> Any:
    """Undo ``encode``: put the flagged non-finite numbers back in place."""
    for pointer, kind in flags.items():
        parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
        if not parts:
            return float(kind)
        target = value
        for part in parts[:-1]:
            target = target[int(part)] if isinstance(target, list) else target[part]
        last = parts[-1]
        target[int(last) if isinstance(target, list) else last] = float(kind)
    return value


def dumps(value: Any) -> str:
    return json.dumps(value, allow_nan=False, ensure_ascii=False, separators=(",", ":"))


def insert(store, row: dict[str, Any], datasets: list[tuple[str, str, dict[str, Any]]]) -> None:
    """Write one evaluation and the data it was computed on, in one transaction."""
    metrics, metric_flags = encode(row["metrics"])
    details, detail_flags = encode(row["details"])
    details["nonfinite"] = {"metrics": metric_flags, "details": detail_flags}
    with store.write() as conn:
        write_datasets(conn, datasets, row["run_id"])
        conn.execute(
            f"INSERT INTO evaluations ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (row["evaluation_id"], row["run_id"], row["model_uri"], row["name"], row["task"],
             row["created"], row["dataset_fingerprint"], row["target_fingerprint"],
             row["n_rows"], dumps(metrics), dumps(details), dumps({})),
        )


def load(store, evaluation_id: str) -> dict[str, Any]:
    """The stored row of one evaluation, numbers decoded, as a dict of its columns."""
    rows = store.query(f"SELECT {_COLUMNS} FROM evaluations WHERE evaluation_id = ?",
                       (evaluation_id,))
    if not rows:
        raise NotFoundError(f"No evaluation {evaluation_id!r} in {store.path}.")
    names = [c.strip() for c in _COLUMNS.split(",")]
    row = dict(zip(names, rows[0]))
    details = json.loads(row["details"])
    flags = details.pop("nonfinite", {"metrics": {}, "details": {}})
    row["metrics"] = decode(json.loads(row["metrics"]), flags["metrics"])
    row["details"] = decode(details, flags["details"])
    row["figures"] = json.loads(row["figures"] or "{}")
    return row


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
        figures = json.loads(current or "{}")
        if figures.get(figure) == digest:
            return digest
        figures[figure] = digest
        conn.execute("UPDATE evaluations SET figures = ? WHERE evaluation_id = ?",
                     (dumps(figures), evaluation_id))
        if run_id is not None:
            conn.execute(
                "INSERT INTO artifacts (run_id, name, kind, sha256, size, media_type, created) "
                "VALUES (?, ?, 'figure', ?, ?, 'image/png', ?) ON CONFLICT (run_id, name) DO "
                "UPDATE SET sha256 = excluded.sha256, size = excluded.size, "
                "created = excluded.created",
                (run_id, artifact_name, digest, size, time.time()),
            )
    return digest
