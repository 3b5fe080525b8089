"""HTML views of runs, run listings, cell history and run comparisons."""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from .html import escape, format_value, pre, section, table, wrap

LISTING_LIMIT = 200


def _time(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (int, float)):
        value = dt.datetime.fromtimestamp(value, dt.timezone.utc)
    try:
        return value.strftime("%Y-%m-%d %H:%M:%S")
    except (AttributeError, ValueError):
        return ""


def run_html(run) -> str:
    status_class = {"FAILED": "bad", "KILLED": "warn"}.get(run.status, "")
    title = (f'<p><b>{escape(run.name or "(unnamed run)")}</b> · {escape(run.run_id)} · '
             f'experiment {escape(run.experiment)} · <span class="{status_class}">'
             f"{escape(run.status)}</span> · started {_time(run.start_time)}"
             + (f" · {run.duration_s:.3f} s" if run.duration_s is not None else "") + "</p>")
    parts = [title]
    if run.params:
        parts.append(section("Params", table(["param", "value"], sorted(run.params.items()))))
    if run.metrics:
        parts.append(section("Metrics", table(["metric", "latest value"],
                                              sorted(run.metrics.items()))))
    if run.tags:
        parts.append(section("Tags", table(["tag", "value"], sorted(run.tags.items()))))
    if run.inputs:
        parts.append(section("Input data", table(
            ["name", "role", "fingerprint", "shape", "columns"],
            [(d.name, d.role, d.fingerprint, "×".join(map(str, d.shape)),
              ", ".join(d.columns or [])[:200]) for d in run.inputs])))
    if run.artifacts:
        parts.append(section("Artifacts", table(
            ["name", "kind", "size", "sha256"],
            [(a.name, a.kind, a.size, a.sha256[:16]) for a in run.artifacts])))
    if run.error:
        parts.append(section("Error", pre(f"{run.error_type}: {run.error}\n\n{run.traceback or ''}")))
    if run.source:
        parts.append(section(f"Cell [{format_value(run.execution_count)}]", pre(run.source)))
    return wrap("".join(parts))


def frame_html(frame, columns: list[str] | None = None, row_classes=None, note: str = "") -> str:
    """A DataFrame as an escaped HTML table (first ``LISTING_LIMIT`` rows)."""
    columns = columns or list(frame.columns)
    shown = frame[columns].head(LISTING_LIMIT)
    rows = []
    for record in shown.itertuples(index=False):
        rows.append([_time(v) if hasattr(v, "strftime") else v for v in record])
    more = len(frame) - len(shown)
    tail = f"<p>… {more} more rows</p>" if more > 0 else ""
    return wrap((f"<p>{escape(note)}</p>" if note else "") + table(columns, rows, row_classes)
                + tail)


def history_html(frame) -> str:
    classes = []
    marks = []
    for out_of_order, stale, maybe, status, files in zip(
            frame["out_of_order"], frame["stale"], frame["possibly_stale"], frame["status"],
            frame["files"]):
        flags = []
        if out_of_order:
            flags.append("out of order")
        if isinstance(stale, str) and stale:
            flags.append(f"stale: {stale}")
        if isinstance(maybe, str) and maybe:
            flags.append(f"inputs {maybe}")
        if status not in ("ok",):
            flags.append(status)
        classes.append("diff" if flags else "")  # what needs a look; a file written does not
        if isinstance(files, list) and files:
            flags.append("wrote " + ", ".join(os.path.basename(f) for f in files[:3]))
        marks.append("; ".join(flags))
    view = frame.assign(
        marks=marks, source=[s if len(s) <= 300 else s[:297] + "..." for s in frame["source"]],
        run=[r[:8] if isinstance(r, str) else "" for r in frame["run_id"]],
    )
    return frame_html(view, ["seq", "execution_count", "source", "status", "duration_s", "run",
                             "marks"], classes)


def comparison_html(comparison) -> str:
    parts = []
    for title, frame in (("Params", comparison.params), ("Metrics", comparison.metrics)):
        if frame.empty:
            continue
        header = [title[:-1].lower(), *frame.columns]
        rows = [[key, *values] for key, values in zip(frame.index, frame.itertuples(index=False))]
        classes = ["diff" if differs else "" for differs in comparison.differs(frame)]
        parts.append(section(f"{title} (differences highlighted)", table(header, rows, classes)))
    if comparison.figure_png:
        from .html import png_img

        parts.append(section("Metric histories", png_img(comparison.figure_png,
                                                          "metric histories")))
    return wrap("".join(parts))
