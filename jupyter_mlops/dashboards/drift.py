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

from .html import escape, mark, png_img, table, wrap
from .plots import _axes, fit_text, text_inches
from .png import display_size, figure_png

MAX_PLOTS = 12
GRID_COLUMNS = 3
PLOT_SIZE = (3.2, 2.6)  # inches of one plot of the grid
COLUMN_PLOT_SIZE = (5.5, 3.4)  # the larger plot of one column in the widget
MAX_LABEL = 12  # characters of a value under its bars
TITLE_SIZE = 9
TICK_SIZE = 7
GRID_ALT = "reference and current distributions, drifted columns first"
SORT_KEYS = {
    "drifted first": "drifted",
    "column": "column",
    "kind": "kind",
    "test": "test",
    "statistic": "statistic",
    "p-value": "p_value",
    "missing values": "missing",
}
# The banner's colour says how much moved: green only when no column drifted.
_BANNER = "padding:6px 10px;margin:4px 0;border-radius:4px;border-left:4px solid "
BANNERS = {
    "jp-mlops-drift-yes": _BANNER + "#c33;background:rgba(220,50,50,.15)",
    "jp-mlops-drift-some": _BANNER + "#d98c00;background:rgba(255,170,0,.16)",
    "jp-mlops-drift-no": _BANNER + "#2a5;background:rgba(40,160,80,.12)",
}
REFERENCE_COLOR = "#4c72b0"
CURRENT_COLOR = "#dd8452"


# -- text ------------------------------------------------------------------------------


def banner_html(report) -> str:
    """N of M columns drifted and the dataset verdict, with what was compared."""
    verdict = "Dataset drift detected" if report.drifted else "No dataset drift"
    css = banner_kind(report)
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
        lines.append(f"<span {mark('warn')}>Not tested: {listed}{more}.</span>")
    body = "<br/>".join(lines)
    return f'<div class="jp-mlops-drift-banner {css}" style="{BANNERS[css]}">{body}</div>'


def banner_kind(report) -> str:
    """``jp-mlops-drift-yes`` (dataset drift), ``-some`` (a column drifted), ``-no``."""
    if report.drifted:
        return "jp-mlops-drift-yes"
    return "jp-mlops-drift-some" if report.n_drifted else "jp-mlops-drift-no"


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
        ax.set_ylabel("share of rows", fontsize=8, parse_math=False)
    else:
        labels = _bar_labels(distribution)
        ref = list(np.asarray(distribution["reference"], dtype=float) / n_ref)
        cur = list(np.asarray(distribution["current"], dtype=float) / n_cur)
        other_ref, other_cur = distribution.get("other", [0, 0])
        if len(labels) > len(ref):
            ref.append(other_ref / n_ref)
            cur.append(other_cur / n_cur)
        x = np.arange(len(labels))
        ax.bar(x - 0.2, ref, width=0.4, color=REFERENCE_COLOR, label="reference")
        ax.bar(x + 0.2, cur, width=0.4, color=CURRENT_COLOR, label="current")
        # Upright names when they do not fit side by side: the boxes of slanted ones overlap.
        upright = _crowded(labels, _axes_inches(ax))
        ax.set_xticks(x, labels, rotation=90 if upright else 0, fontsize=TICK_SIZE,
                      parse_math=False)
        ax.set_ylabel("share of rows", fontsize=8, parse_math=False)
    if distribution["type"] == "hist":
        ax.xaxis.set_major_locator(MaxNLocator(5))
    # Few ticks: drawing tick marks is most of matplotlib's time on a grid of small plots.
    ax.yaxis.set_major_locator(MaxNLocator(4))
    if title:
        ax.set_title(title, fontsize=TITLE_SIZE, color="#c00" if drifted else "black",
                     parse_math=False)
    ax.tick_params(labelsize=TICK_SIZE)
    if legend:
        ax.legend(fontsize=TICK_SIZE)
    return ax


def _bar_labels(distribution: dict[str, Any]) -> list[str]:
    """The values under the bars, cut to ``MAX_LABEL`` characters, and "(other)" for the
    rest when there is a rest."""
    labels = [label if len(label) <= MAX_LABEL else label[:MAX_LABEL - 1] + "…"
              for label in distribution["labels"]]
    return labels + ["(other)"] if any(distribution.get("other", [0, 0])) else labels


def _crowded(labels: list[str], width: float) -> bool:
    """Whether ``labels`` side by side need more than the ``width`` (inches) of the Axes."""
    room = width / max(len(labels), 1)
    return any(text_inches(label, TICK_SIZE) + 0.08 > room for label in labels)


def _axes_inches(ax) -> float:
    return ax.get_position().width * ax.figure.get_figwidth()


def _title(record: dict[str, Any], width: float) -> str:
    """The column, then its score: two short lines, each fitting ``width`` inches, over a
    plot of the grid."""
    column = fit_text(str(record["column"]), TITLE_SIZE, width)
    if not record["test"]:
        return f"{column}\nnot tested"
    score = record["p_value"] if not _missing(record, "p_value") else record["statistic"]
    name = "p" if not _missing(record, "p_value") else record["test"]
    verdict = "DRIFT" if record["drifted"] else "ok"
    return f"{column}\n{name} = {score:.3g} ({verdict})"


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
    return plot_distribution(distribution, _title(record, _axes_inches(ax)), ax,
                             bool(record["drifted"]), legend)


def plotted_columns(report, limit: int = MAX_PLOTS) -> list[str]:
    """Columns to plot, drifted first, at most ``limit``."""
    ordered = _sort_records(report.records)
    return [r["column"] for r in ordered if r["column"] in report.distributions][:limit]


def drift_figure(report, columns: list[str] | None = None, plot_size=PLOT_SIZE):
    """A grid of per-column plots (a bare matplotlib Figure)."""
    from matplotlib.figure import Figure

    columns = plotted_columns(report) if columns is None else columns
    n = max(len(columns), 1)
    ncols = min(GRID_COLUMNS, n)
    nrows = math.ceil(n / ncols)
    # Fixed margins in inches instead of a layout engine, which would triple the drawing
    # time: two title lines above each plot, the ticks (or upright names) below it.
    left, right, between = 0.6, 0.15, 0.45
    axes_width = (plot_size[0] * ncols - left - right - between * (ncols - 1)) / ncols
    above = 0.45
    below = 0.3 + (0.65 if any(_upright(report, name, axes_width) for name in columns) else 0)
    row = plot_size[1] + below - 0.3
    width, height = plot_size[0] * ncols, row * nrows
    figure = Figure(figsize=(width, height))
    figure.subplots_adjust(left=left / width, right=1 - right / width,
                           wspace=between / axes_width, top=1 - above / height,
                           bottom=below / height, hspace=(above + below) / (row - above - below))
    axes = figure.subplots(nrows, ncols, squeeze=False)
    for i, (ax, name) in enumerate(zip(axes.flat, columns)):
        plot_column(report, name, ax, legend=i == 0)
        if i % ncols:
            ax.set_ylabel("")
    for ax in list(axes.flat)[len(columns):]:
        ax.set_axis_off()
    return figure


def _upright(report, column: str, width: float) -> bool:
    distribution = report.distributions.get(column)
    if not distribution or distribution["type"] != "bars":
        return False
    return _crowded(_bar_labels(distribution), width)


def _png(report, key: str, make) -> bytes:
    cache = report._render_cache
    if key not in cache:
        cache[key] = figure_png(make())
    return cache[key]


def grid_png(report) -> bytes | None:
    if not plotted_columns(report):
        return None
    return _png(report, "grid", lambda: drift_figure(report))


def column_png(report, column: str) -> bytes:
    return _png(report, f"column:{column}",
                lambda: drift_figure(report, [column], plot_size=COLUMN_PLOT_SIZE))


# -- the whole dashboard ------------------------------------------------------------------


def drift_html(report) -> str:
    """Static dashboard: banner, table (drifted first) and the plots as one PNG."""
    parts = [banner_html(report), table_html(report)]
    png = grid_png(report)
    if png is not None:
        parts.append(png_img(png, GRID_ALT))
        more = _not_plotted(report)
        if more > 0:
            parts.append(f"<p>{more} more columns not plotted; report.widget() shows any of "
                         "them.</p>")
    return wrap(f'<div class="jp-mlops-drift">{"".join(parts)}</div>')


def _not_plotted(report) -> int:
    return len(report.distributions) - len(plotted_columns(report))


def drift_widget(report):
    """The interactive dashboard: sortable table, the grid of plots the static view shows,
    and a larger plot of any column."""
    import ipywidgets as widgets

    banner = widgets.HTML(wrap(f'<div class="jp-mlops-drift">{banner_html(report)}</div>'))
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
    png = grid_png(report)
    if png is not None:
        plots = _image(widgets.Image(format="png"), png)
        plots.add_class("jp-mlops-drift-grid")
        children.append(plots)
        more = _not_plotted(report)
        if more > 0:
            children.append(widgets.HTML(wrap(f"<p>{more} more columns not plotted; pick "
                                              "any column below.</p>")))
    names = plotted_columns(report, limit=len(report.records))
    if names:
        pick = widgets.Dropdown(options=names, value=names[0], description="Column")
        image = _image(widgets.Image(format="png"), column_png(report, names[0]))
        image.add_class("jp-mlops-drift-column")

        def show(change):
            _image(image, column_png(report, change["new"]))

        pick.observe(show, names="value")
        children += [pick, image]
    box = widgets.VBox(children)
    box.add_class("jp-mlops-drift-widget")
    return box


def _image(image, png: bytes):
    """``image`` showing ``png`` at its figure's size: a box of widgets would otherwise
    stretch it to the output's width, blurring it."""
    width, _ = display_size(png)
    image.value = png
    image.layout.width = f"{width}px"
    image.layout.max_width = "100%"
    image.layout.height = "auto"
    image.layout.align_self = "flex-start"
    return image


def _table_block(report, sort_by, descending, drifted_only) -> str:
    return wrap(table_html(report, sort_by, descending, drifted_only))


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
