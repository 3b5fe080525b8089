"""The inline views of a dataset diff and of a data quality result: rendering only."""

from __future__ import annotations

from typing import Any

from .html import escape, section, table, wrap

MAX_ROWS = 10  # rows of added, removed or changed data shown


def _rows(frame: Any) -> str:
    shown = frame.head(MAX_ROWS)
    more = f"<p>… and {len(frame) - MAX_ROWS:,} more</p>" if len(frame) > MAX_ROWS else ""
    return table([str(c) for c in shown.columns],
                 [list(row) for row in shown.itertuples(index=False)]) + more


def datadiff_html(diff: Any) -> str:
    counts = diff.counts
    changed = "" if counts["changed"] is None else f", {counts['changed']:,} changed"
    head = (f"<p><b>{escape(diff.names[0])}</b> ({counts['rows_a']:,} rows) → "
            f"<b>{escape(diff.names[1])}</b> ({counts['rows_b']:,} rows): "
            f"{counts['added']:,} added, {counts['removed']:,} removed{changed}"
            f"{'' if diff.key else ' (rows matched by content)'}; "
            f"{len(diff.schema)} schema changes.</p>")
    parts = [head]
    if not diff.schema.empty:
        parts.append(section("Schema", table(list(diff.schema.columns),
                                             diff.schema.itertuples(index=False))))
    for title, frame in (("Added rows", diff.added), ("Removed rows", diff.removed),
                         ("Changed rows", diff.changed)):
        if frame is not None and len(frame):
            parts.append(section(title, _rows(frame)))
    shifted = diff.columns[diff.columns["a"].astype(str) != diff.columns["b"].astype(str)]
    if len(shifted):
        parts.append(section("Column summaries that moved",
                             table(list(shifted.columns), shifted.itertuples(index=False))))
    return wrap("".join(parts))


def quality_html(result: Any) -> str:
    verdict = "all checks pass" if result.ok else f"{result.failed} checks fail"
    head = f"<p><b>Data quality</b>: {result.rows:,} rows × {result.n_columns} columns; " \
           f"{escape(verdict)}.</p>"
    checks = result.checks
    classes = ["" if ok else "bad" for ok in checks["ok"]]
    body = table(list(checks.columns), checks.itertuples(index=False), row_classes=classes)
    return wrap(head + section("Checks", body) + section(
        "Columns", table(list(result.columns.columns), result.columns.itertuples(index=False))))
