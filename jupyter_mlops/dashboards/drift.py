"""The drift dashboard: a banner, a sortable table of every column, and per-column plots.

Rendering only: everything drawn comes from the report's records and its stored
distributions (histogram counts or value counts), never from the raw data, so a report
read back from the store draws the same. In a kernel with ipywidgets the report shows as
a widget (sort the table, pick a column); every other frontend (nbconvert, nbval, GitHub)
gets the static HTML with PNG plots, drifted columns first.
"""

from __future__ import annotations

import math
from typing import Any

from .html import escape, png_img, table, wrap
from .plots import _axes
from .png import figure_png

MAX_PLOTS = 12
GRID_COLUMNS = 3
SORT_KEYS = {
    "drifted first": "drifted",
    "column": "column",
    "kind": "kind",
    "test": "test",
    "statistic": "statistic",
    "p-value": "p_value",
    "missing values": "missing",
}
_STYLE = """<style>
.jp-mlops-drift .jp-mlops-drift-banner{padding:6px 10px;margin:4px 0;border-radius:4px}
.jp-mlops-drift .jp-mlops-drift-yes{background:rgba(220,50,50,.15);border-left:4px solid #c33}
.jp-mlops-drift .jp-mlops-drift-no{background:rgba(40,160,80,.12);border-left:4px solid #2a5}
.jp-mlops .jp-mlops-drifted td{background:rgba(220,50,50,.12)}
.jp-mlops .jp-mlops-skipped td{color:#777}
</style>"""
REFERENCE_COLOR = "#4c72b0"
CURRENT_COLOR = "#dd8452"


# -- text ------------------------------------------------------------------------------


def banner_html(report) -> str:
    """N of M columns drifted and the dataset verdict, with what was compared."""
    verdict = "Dataset drift detected" if report.drifted else "No dataset drift"
    css = "jp-mlops-drift-yes" if report.drifted else "jp-mlops-drift-no"
    share = f"{report.share_drifted:.0%}" if report.n_columns else "—"
    lines = [
        f"<b>{escape(verdict)}</b>: {report.n_drifted} of {report.n_columns} columns drifted "
        f"({share}; dataset drift at ≥ {escape(format(report.drift_share, 'g'))} of the "
        "columns).",
        f"reference {report.reference_rows:,} rows"
        + (f" · data {escape((report.reference_fingerprint or '')[:12])}"
           if report.reference_fingerprint else "")
        + f" — current {report.current_rows:,} rows"
        + (f" · data {escape((report.current_fingerprint or '')[:12])}"
           if report.current_fingerprint else "")
        + (f" — model {escape(report.model_uri)}" if report.model_uri else "")
        + f" — report {escape(report.report_id[:8])}",
    ]
    skipped = report.skipped
    if skipped:
        listed = "; ".join(f"{escape(name)} ({escape(why)})" for name, why in
                           list(skipped.items())[:10])
        more = f" and {len(skipped) - 10} more" if len(skipped) > 10 else ""
        lines.append(f'<span class="warn">Not tested: {listed}{more}.</span>')
    body = "<br/>".join(lines)
    return f'<div class="jp-mlops-drift-banner {css}">{body}</div>'


def _sort_records(records: list[dict[str, Any]], key: str = "drifted",
                  descending: bool = True) -> list[dict[str, Any]]:
    """Rows in display order. ``drifted``: drifted columns first, untested last; any other
    key sorts by that value, rows without one (NaN, not tested) last in their own order."""
    if key == "drifted":
        drifted = [r for r in records if r["test"] and r["drifted"]]
        calm = [r for r in records if r["test"] and not r["drifted"]]
        untested = [r for r in records if not r["test"]]
        return (drifted + calm if descending else calm + drifted) + untested

    def value(record):
        if key == "missing":
            return record["missing_reference"] + record["missing_current"]
        found = record.get(key)
        if found is None or (isinstance(found, float) and math.isnan(found)):
            return None
        return found.lower() if isinstance(found, str) else found

    valued = [r for r in records if value(r) is not None]
    valued.sort(key=value, reverse=descending)
    return valued + [r for r in records if value(r) is None]


def _missing(record, key) -> bool:
    value = record.get(key)
    return value is None or (isinstance(value, float) and math.isnan(value))


def table_html(report, sort_by: str = "drifted", descending: bool = True,
               drifted_only: bool = False) -> str:
    """Every column with its test, statistic, p-value, threshold and verdict."""
    records = _sort_records(report.records, sort_by, descending)
    if drifted_only:
        records = [r for r in records if r["drifted"]]
    header = ["column", "kind", "role", "test", "statistic", "p-value", "threshold", "drifted",
              "missing (ref / cur)", "binning", "note"]
    rows, classes = [], []
    for r in records:
        verdict = ("drifted" if r["drifted"] else "no") if r["test"] else "not tested"
        missing = f"{r['missing_reference']:,} / {r['missing_current']:,}"
        rows.append([r["column"], r["kind"], r["role"], r["test"] or "",
                     r["statistic"] if r["test"] else "",
                     r["p_value"] if r["test"] and not _missing(r, "p_value") else "",
                     r["threshold"] if r["test"] else "", verdict, missing, r["binning"],
                     r["note"]])
        classes.append("jp-mlops-drifted" if r["drifted"] else
                       ("" if r["test"] else "jp-mlops-skipped"))
    if not rows:
        return "<p>No column drifted.</p>" if drifted_only else "<p>No columns.</p>"
    return table(header, rows, classes)


# -- plots -----------------------------------------------------------------------------


def plot_distribution(distribution: dict[str, Any], title: str = "", ax=None,
                      drifted: bool = False, legend: bool = True):
    """Reference against current: overlaid histograms (numbers) or paired bars (values).

    Shares, not counts, so sets of different sizes compare. Returns the Axes.
    """
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    ax = _axes(ax)
    n_ref = max(distribution["n_reference"], 1)
    n_cur = max(distribution["n_current"], 1)
    if distribution["type"] == "hist":
        edges = np.asarray(distribution["edges"], dtype=float)
        ref = np.asarray(distribution["reference"], dtype=float) / n_ref
        cur = np.asarray(distribution["current"], dtype=float) / n_cur
        ax.stairs(ref, edges, fill=True, alpha=0.45, color=REFERENCE_COLOR, label="reference")
        ax.stairs(cur, edges, fill=True, alpha=0.45, color=CURRENT_COLOR, label="current")
        ax.stairs(cur, edges, color=CURRENT_COLOR, linewidth=1)
        ax.set_ylabel("share of rows", parse_math=False)
    else:
        labels = list(distribution["labels"])
        ref = list(np.asarray(distribution["reference"], dtype=float) / n_ref)
        cur = list(np.asarray(distribution["current"], dtype=float) / n_cur)
        other_ref, other_cur = distribution.get("other", [0, 0])
        if other_ref or other_cur:
            labels.append("(other)")
            ref.append(other_ref / n_ref)
            cur.append(other_cur / n_cur)
        x = np.arange(len(labels))
        ax.bar(x - 0.2, ref, width=0.4, color=REFERENCE_COLOR, label="reference")
        ax.bar(x + 0.2, cur, width=0.4, color=CURRENT_COLOR, label="current")
        ax.set_xticks(x)
        shown = [label if len(label) <= 12 else label[:11] + "…" for label in labels]
        crowded = len(labels) > 6
        ax.set_xticklabels(shown, rotation=45 if crowded else 0,
                           ha="right" if crowded else "center", fontsize=7)
        for text in ax.get_xticklabels():
            text.set_parse_math(False)
        ax.set_ylabel("share of rows", parse_math=False)
    if distribution["type"] == "hist":
        ax.xaxis.set_major_locator(MaxNLocator(5))
    # Few ticks: drawing tick marks is most of matplotlib's time on a grid of small plots.
    ax.yaxis.set_major_locator(MaxNLocator(4))
    if title:
        ax.set_title(title, fontsize=9, color="#c00" if drifted else "black", parse_math=False)
    ax.tick_params(labelsize=7)
    if legend:
        ax.legend(fontsize=7)
    return ax


def _title(record: dict[str, Any]) -> str:
    if not record["test"]:
        return f"{record['column']}: not tested"
    score = record["p_value"] if not _missing(record, "p_value") else record["statistic"]
    name = "p" if not _missing(record, "p_value") else record["test"]
    verdict = "DRIFT" if record["drifted"] else "ok"
    return f"{record['column']}: {name} = {score:.3g} ({verdict})"


def plot_column(report, column: str, ax=None, legend: bool = True):
    """The plot of one column of ``report``; returns the Axes."""
    record = report.column(column)
    distribution = report.distributions.get(column)
    ax = _axes(ax)
    if distribution is None:
        ax.text(0.5, 0.5, f"{column}: nothing to plot", ha="center", va="center",
                parse_math=False)
        ax.set_axis_off()
        return ax
    return plot_distribution(distribution, _title(record), ax, bool(record["drifted"]), legend)


def plotted_columns(report, limit: int = MAX_PLOTS) -> list[str]:
    """Columns to plot, drifted first, at most ``limit``."""
    ordered = _sort_records(report.records)
    return [r["column"] for r in ordered if r["column"] in report.distributions][:limit]


def drift_figure(report, columns: list[str] | None = None):
    """A grid of per-column plots (a bare matplotlib Figure)."""
    from matplotlib.figure import Figure

    columns = plotted_columns(report) if columns is None else columns
    n = max(len(columns), 1)
    ncols = min(GRID_COLUMNS, n)
    nrows = math.ceil(n / ncols)
    height = 2.6 * nrows
    figure = Figure(figsize=(3.4 * ncols, height))
    # Fixed margins instead of a layout engine, which would triple the drawing time.
    figure.subplots_adjust(left=0.07 if ncols > 1 else 0.15, right=0.98, wspace=0.3,
                           top=1 - 0.35 / height, bottom=0.75 / height, hspace=0.6)
    axes = figure.subplots(nrows, ncols, squeeze=False)
    for i, (ax, name) in enumerate(zip(axes.flat, columns)):
        plot_column(report, name, ax, legend=i == 0)
        if i % ncols:
            ax.set_ylabel("")
    for ax in list(axes.flat)[len(columns):]:
        ax.set_axis_off()
    return figure


def _png(report, key: str, make) -> bytes:
    cache = report._render_cache
    if key not in cache:
        cache[key] = figure_png(make(), dpi=72)
    return cache[key]


def grid_png(report) -> bytes | None:
    if not plotted_columns(report):
        return None
    return _png(report, "grid", lambda: drift_figure(report))


def column_png(report, column: str) -> bytes:
    def make():
        from matplotlib.figure import Figure

        figure = Figure(figsize=(5.5, 3.2))
        figure.subplots_adjust(left=0.12, right=0.97, top=0.9, bottom=0.2)
        plot_column(report, column, figure.add_subplot())
        return figure

    return _png(report, f"column:{column}", make)


# -- the whole dashboard ------------------------------------------------------------------


def drift_html(report) -> str:
    """Static dashboard: banner, table (drifted first) and the plots as one PNG."""
    parts = [_STYLE, banner_html(report), table_html(report)]
    png = grid_png(report)
    if png is not None:
        shown = plotted_columns(report)
        more = len(report.distributions) - len(shown)
        parts.append(png_img(png, "reference and current distributions, drifted columns first"))
        if more > 0:
            parts.append(f"<p>{more} more columns not plotted; report.widget() shows any of "
                         "them.</p>")
    return wrap(f'<div class="jp-mlops-drift">{"".join(parts)}</div>')


def drift_widget(report):
    """The interactive dashboard: sortable table, a plot for any column, and the grid."""
    import ipywidgets as widgets

    banner = widgets.HTML(wrap(_STYLE + f'<div class="jp-mlops-drift">{banner_html(report)}'
                               "</div>"))
    sort = widgets.Dropdown(options=list(SORT_KEYS.items()), value="drifted",
                            description="Sort by")
    descending = widgets.Checkbox(value=True, description="descending", indent=False)
    only = widgets.Checkbox(value=False, description="drifted only", indent=False)
    grid = widgets.HTML(_table_block(report, "drifted", True, False))

    def refresh(_change=None):
        grid.value = _table_block(report, sort.value, descending.value, only.value)

    for control in (sort, descending, only):
        control.observe(refresh, names="value")
    children = [banner, widgets.HBox([sort, descending, only]), grid]
    names = plotted_columns(report, limit=len(report.records))
    if names:
        pick = widgets.Dropdown(options=names, value=names[0], description="Column")
        image = widgets.Image(value=column_png(report, names[0]), format="png")

        def show(change):
            image.value = column_png(report, change["new"])

        pick.observe(show, names="value")
        children += [pick, image]
    box = widgets.VBox(children)
    box.add_class("jp-mlops-drift-widget")
    return box


def _table_block(report, sort_by, descending, drifted_only) -> str:
    return wrap(_STYLE + table_html(report, sort_by, descending, drifted_only))


def widget_bundle(report) -> dict[str, Any]:
    """The widget's mime bundle inside a kernel with ipywidgets; ``{}`` elsewhere, so the
    display falls back to the static HTML."""
    try:
        from IPython import get_ipython

        shell = get_ipython()
        if shell is None or getattr(shell, "kernel", None) is None:
            return {}
        import ipywidgets  # noqa: F401
    except ImportError:
        return {}
    bundle = dict(drift_widget(report)._repr_mimebundle_() or {})
    bundle["text/plain"] = repr(report)
    return bundle
