"""JSON-ready values from the store: non-finite numbers named, JSON columns decoded, and
tables read over whatever columns they have (the registry's may grow).

The sidebar reads plain JSON: a NaN or infinite metric is ``null`` with its name
(``jsoncodec.nonfinite_name``: ``"nan"``, ``"inf"``, ``"-inf"``) in a ``nonfinite`` marker
beside it, and one nested in a param or a registry column is its name in place
(``jsoncodec.plain(..., nonfinite="name")``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from ...store import Store, jsoncodec

# Maps a notebook's absolute path to its path under the server root (None outside it).
Relative = Callable[[str | None], str | None]


def number(value: float | None) -> tuple[float | None, str | None]:
    """``(JSON number or None, marker)``: the marker names a NaN or an infinity."""
    if value is None:
        return None, None
    name = jsoncodec.nonfinite_name(value)
    return (value, None) if name is None else (None, name)


def plain(value: Any) -> Any:
    """A value decoded from the store with every non-finite float replaced by its name."""
    return jsoncodec.plain(value, nonfinite="name")


def metric_value(value: float | None, is_nan: int) -> tuple[float | None, str | None]:
    return number(float("nan") if is_nan else value)  # SQLite keeps NaN as NULL and a flag


def json_or_text(text: Any) -> Any:
    if not isinstance(text, str):
        return plain(text)
    try:
        return plain(json.loads(text))
    except ValueError:
        return text


def has_table(store: Store, name: str) -> bool:
    return bool(store.query(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)))


def table_columns(store: Store, table: str) -> list[str]:
    return [row[1] for row in store.query(f"PRAGMA table_info({table})")]


def table_rows(store: Store, table: str, where: str, params: Sequence[Any],
          order: str) -> list[dict[str, Any]]:
    """Rows of ``table`` as dicts over whatever columns it has."""
    columns = table_columns(store, table)
    quoted = ", ".join(f'"{c}"' for c in columns)
    rows = store.query(f"SELECT {quoted} FROM {table} WHERE {where} ORDER BY {order}", params)
    return [dict(zip(columns, row)) for row in rows]


def like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
