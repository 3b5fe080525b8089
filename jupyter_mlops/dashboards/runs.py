"""HTML views of runs, run listings, cell history and run comparisons."""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from .html import escape, format_value, mark, pre, section, table, wrap

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
    status = {"FAILED": mark("bad"), "KILLED": mark("warn")}.get(run.status, "")
    title = (f'<p><b>{escape(run.name or "(unnamed run)")}</b> · {escape(run.run_id)} · '
             f"experiment {escape(run.experiment)} · <span {status}>"
             f"{escape(run.status)}</span> · started {_time(run.start_time)}"
             + (f" · {run.duration_s:.3f} s" if run.duration_s is not None else "") + "</p>")
    parts = [title]
    if run.params:
        # The cell's own params first, then each model's.
        params = sorted(run.params.items(),
                        key=lambda kv: (run.model_of(kv[0]) is not None, kv[0]))
        parts.append(section("Params", table(["param", "value"], params)))
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
    if run.system_metrics:
        parts.append(section("System metrics (latest sample; peak and CPU time of the cell)",
                             table(["metric", "value"], sorted(run.system_metrics.items()))))
    if run.environment is not None:
        from .environment import summary_rows

        parts.append(section("Environment", table(["", "value"], summary_rows(run.environment))))
    if run.error:
        parts.append(section("Error", pre(f"{run.error_type}: {run.error}\n\n{run.traceback or ''}")))
    if run.source:
        parts.append(section(f"Cell [{format_value(run.execution_count)}]", pre(run.source)))
    return wrap("".join(parts))


def frame_html(frame, columns: list[str] | None = None, row_classes=None, note: str = "",
               code: tuple[str, ...] = ()) -> str:
    """A DataFrame as an escaped HTML table (first ``LISTING_LIMIT`` rows); the columns
    named in ``code`` hold code."""
    columns = columns or list(frame.columns)
    shown = frame[columns].head(LISTING_LIMIT)
    rows = []
    for record in shown.itertuples(index=False):
        rows.append([_time(v) if hasattr(v, "strftime") else v for v in record])
    more = len(frame) - len(shown)
    tail = f"<p>… {more} more rows</p>" if more > 0 else ""
    code_at = [i for i, name in enumerate(columns) if name in code]
    return wrap((f"<p>{escape(note)}</p>" if note else "")
                + table(columns, rows, row_classes, code_at) + tail)


CHILDREN_SHOWN = 5


def _child_groups(view) -> tuple[list[int], dict[str, list[int]]]:
    """Row positions of the runs listed at top level, and of each listed parent's children
    (its best first: the ``best`` tag a search gives its best candidate)."""
    ids = set(view["run_id"])
    best = list(view["tags.best"]) if "tags.best" in view.columns else [None] * len(view)
    top: list[int] = []
    children: dict[str, list[int]] = {}
    for i, parent in enumerate(view["parent_run_id"]):
        if isinstance(parent, str) and parent in ids:
            children.setdefault(parent, []).append(i)
        else:
            top.append(i)
    names = list(view["name"])
    for rows in children.values():
        rows.sort(key=lambda i: (best[i] != "true", _natural(names[i])))
    return top, children


def _natural(name: Any) -> list[Any]:
    """``gs[2]`` before ``gs[10]``: a search's candidates in the order it tried them."""
    import re

    parts = re.split(r"(\d+)", name if isinstance(name, str) else "")
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts]


def _listed_params(view, children: dict[str, list[int]]) -> list[str]:
    """The cell's own params (no dot: an estimator's nested params would drown the table)
    that a top-level run has, or that differ between the children of one parent: what a
    search varied."""
    nested = {i for rows in children.values() for i in rows}
    top = [i for i in range(len(view)) if i not in nested]
    shown = []
    for column in view.columns:
        if not column.startswith("params.") or "." in column[7:]:
            continue
        values = view[column]
        if any(values.iloc[i] is not None for i in top) or any(
                len({repr(values.iloc[i]) for i in rows}) > 1 for rows in children.values()):
            shown.append(column)
    return shown


def runs_html(view) -> str:
    """The runs listing: each parent's children right under it (the first
    ``CHILDREN_SHOWN``, the rest counted), a ``children`` column with their number."""
    top, children = _child_groups(view)
    params = _listed_params(view, children)
    # The system.* metrics of every tracked cell stay out too: `%mlops show RUN` has them.
    metrics = [c for c in view.columns if c.startswith("metrics.")
               and not c.startswith("metrics.system.")]
    # Who made each run, and the server a pulled run came from (only when some were pulled).
    team = [c for c in ("user", "origin") if c in view.columns and view[c].notna().any()]
    columns = ["run_id", "experiment", "name", "status", *team, "start_time", "duration_s",
               "children", *params, *metrics]
    values = {c: list(view[c]) for c in columns if c in view.columns}
    run_ids = values["run_id"]

    def row(i: int, child: bool) -> list[Any]:
        cells = []
        for column in columns:
            value = len(children.get(run_ids[i], [])) or "" if column == "children" else \
                values[column][i]
            if column == "run_id":
                value = value[:8]
            elif column == "name" and child:
                value = f"↳ {value or ''}"
            cells.append(_time(value) if hasattr(value, "strftime") else value)
        return cells

    rows, classes = [], []
    for i in top:
        rows.append(row(i, False))
        classes.append("")
        kids = children.get(run_ids[i], [])
        for j in kids[:CHILDREN_SHOWN]:
            rows.append(row(j, True))
            classes.append("child")
        if len(kids) > CHILDREN_SHOWN:
            more = [""] * len(columns)
            more[columns.index("name")] = (
                f"… {len(kids) - CHILDREN_SHOWN} more: %mlops runs -f "
                f"\"parent_run_id = '{run_ids[i]}'\"")
            rows.append(more)
            classes.append("child")
    shown = rows[:LISTING_LIMIT]
    hidden = sum(c.startswith("params.") for c in view.columns) - len(params)
    note = f"{len(view)} runs" + (f"; {hidden} more param columns are in the DataFrame, not "
                                  "shown" if hidden else "")
    if any(c.startswith("metrics.system.") for c in view.columns):
        note += "; system.* metric columns are in the DataFrame, not shown"
    tail = f"<p>… {len(rows) - len(shown)} more rows</p>" if len(rows) > len(shown) else ""
    return wrap(f"<p>{escape(note)}</p>" + table(columns, shown, classes) + tail)


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
    return frame_html(view, ["seq", "execution_count", "source", "status", "duration_s",
                             "cpu_time_s", "peak_rss_mb", "peak_rss_added_mb", "run", "marks"],
                      classes, code=("source", "run"))


def _comparison_rows(comparison, frame, keys) -> tuple[list, list[str], int]:
    """Rows of ``keys`` (all, or those that differ) and their tints; how many were equal."""
    flags = dict(zip(frame.index, comparison.differs(frame)))
    shown = [k for k in keys if comparison.show_all or flags[k]]
    rows = [[key, *frame.loc[key].tolist()] for key in shown]
    return rows, ["diff" if flags[k] else "" for k in shown], len(keys) - sum(
        flags[k] for k in keys)


def comparison_html(comparison, histories: bool = True) -> str:
    """The cell's own params, then each model's folded under it, then metrics; only the
    rows that differ unless the comparison was asked for all of them. Then the metric
    histories, unless ``histories`` is False (a view that draws them itself)."""
    parts, hidden = [], 0
    params, owners = comparison.params, comparison.model_params
    groups: dict[str | None, list[str]] = {}
    for key in params.index:
        groups.setdefault(owners.get(key), []).append(key)
    sections = [("Params", "param", params, groups.pop(None, []), None)]
    sections += [(f"Params of the model {model!r}", f"{model}.…", params, keys, model)
                 for model, keys in groups.items()]
    sections.append(("Metrics", "metric", comparison.metrics, list(comparison.metrics.index),
                     None))
    for title, first, frame, keys, model in sections:
        if not keys:
            continue
        rows, classes, equal = _comparison_rows(comparison, frame, keys)
        if not comparison.show_all:
            hidden += equal
        if model is not None:  # folded: open it to see the estimator's rows
            rows = [[key[len(model) + 1:], *rest] for key, *rest in rows]
            summary = f"{title}: {len(rows)} of {len(keys)} differ" if not comparison.show_all \
                else f"{title}: {len(keys)}"
            body = table([first, *frame.columns], rows, classes) if rows else ""
            parts.append(f"<details><summary>{escape(summary)}</summary>{body}</details>")
        elif rows:
            parts.append(section(title, table([first, *frame.columns], rows, classes)))
    if hidden:
        what = "1 row equal in every run is" if hidden == 1 else \
            f"{hidden} rows equal in every run are"
        parts.append(f"<p>{what} not shown: <code>%mlops compare --all</code> shows "
                     f"{'it' if hidden == 1 else 'them'}.</p>")
    if comparison.omitted:
        parts.append(f"<p>… {comparison.omitted} more child runs not compared</p>")
    if histories and comparison.figure_png:
        from .html import png_img

        parts.append(section("Metric histories", png_img(comparison.figure_png,
                                                          "metric histories")))
    return wrap("".join(parts))
