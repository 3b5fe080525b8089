"""Evaluation dashboards: plots, static HTML with PNGs, a tabbed widget, a progress bar.

Rendering only: everything drawn here comes from an EvaluationResult's stored numbers, so a
result read back from the store draws exactly like the one just computed. Figures are drawn
by the functions ``drawers`` hands out; the result's own figure cache decides when (and keeps
the PNGs), so nothing here writes. Every
user string (labels, feature names, names, notes) is escaped for HTML and drawn by
matplotlib with math parsing off.
"""

from __future__ import annotations

import sys
from typing import Any

from .bundle import in_kernel
from .html import escape, format_value, mark, png_img, section, table, wrap
from .plots import text_inches

TITLES = {
    "roc_curve": "ROC curve",
    "pr_curve": "Precision-recall curve",
    "calibration_curve": "Calibration curve",
    "confusion_matrix": "Confusion matrix",
    "confusion_matrix_normalized": "Confusion matrix, normalised by true class",
    "predicted_vs_actual": "Predicted vs actual",
    "residuals_vs_predicted": "Residuals vs predicted",
    "residual_histogram": "Residual histogram",
    "permutation_importance": "Permutation importance",
}
MAX_TEXT = 24
FIGURES = "display:flex;flex-wrap:wrap;gap:8px;align-items:flex-start"


def _short(value: Any) -> str:
    text = format_value(value) if not isinstance(value, str) else value
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


# -- plots: each takes ax=None and returns the Axes it drew on ----------------------------

def _axes(ax, size=(4.8, 3.6), layout="constrained"):
    if ax is not None:
        return ax
    from matplotlib.figure import Figure

    # A bare Figure, not pyplot: nothing is registered with the notebook's backend.
    return Figure(figsize=size, layout=layout).add_subplot()


def _finish(ax, title: str, xlabel: str, ylabel: str, legend: bool = False):
    ax.set_title(title, parse_math=False)
    ax.set_xlabel(xlabel, parse_math=False)
    ax.set_ylabel(ylabel, parse_math=False)
    if legend and ax.get_legend_handles_labels()[0]:
        for text in ax.legend(fontsize=7, loc="best").get_texts():
            text.set_parse_math(False)
    return ax


def plot_confusion_matrix(matrix, labels, normalize: bool = False, ax=None):
    """Counts (or rows normalised to 1) with true labels down and predictions across."""
    import numpy as np
    from matplotlib import rcParams

    title = "Normalised by true class" if normalize else "Confusion matrix"
    names = [_short(label) for label in labels]
    widths = [text_inches(name, rcParams["xtick.labelsize"]) for name in names]
    # The matrix is square and its title centred over it: at least as wide as the title.
    side = max(2.6, min(7.0, 0.45 * len(names)),
               text_inches(title, rcParams["axes.titlesize"]) + 0.2)
    # Upright names when they do not fit side by side (the boxes of slanted ones overlap).
    crowded = any(width + 0.08 > side / max(len(names), 1) for width in widths)
    if ax is None:
        longest = max(widths, default=0)
        below = 0.8 + (longest if crowded else 0.2)
        # "compressed": the constrained layout for a square image (a plain one can push
        # the "actual" label off the edge).
        ax = _axes(None, (longest + side + 1.7, side + below + 0.5), layout="compressed")
    values = np.asarray(matrix, dtype=float)
    if normalize:
        totals = values.sum(axis=1, keepdims=True)
        values = np.divide(values, totals, out=np.zeros_like(values), where=totals > 0)
    image = ax.imshow(values, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    ax.figure.colorbar(image, ax=ax, shrink=0.8)
    ticks = range(len(labels))
    ax.set_xticks(ticks, names, rotation=90 if crowded else 0, parse_math=False)
    ax.set_yticks(ticks, names, parse_math=False)
    if len(labels) <= 20:
        high = values.max() / 2 if values.size else 0
        for (i, j), value in np.ndenumerate(values):
            ax.text(j, i, f"{value:.2f}" if normalize else f"{int(value)}", ha="center",
                    va="center", fontsize=8, color="white" if value > high else "black")
    return _finish(ax, title, "predicted", "actual")


def plot_roc_curves(curves: list[dict], ax=None):
    ax = _axes(ax)
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey", linewidth=1)
    for curve in curves:
        label = f"AUC {curve['auc']:.3f}" if len(curves) == 1 else (
            f"{_short(curve['label'])} (AUC {curve['auc']:.3f})")
        ax.plot(curve["fpr"], curve["tpr"], label=label, linewidth=1.4)
    return _finish(ax, "ROC curve" + (" (one vs rest)" if len(curves) > 1 else ""),
                   "false positive rate", "true positive rate", legend=True)


def plot_pr_curves(curves: list[dict], ax=None):
    ax = _axes(ax)
    for curve in curves:
        label = f"AP {curve['average_precision']:.3f}" if len(curves) == 1 else (
            f"{_short(curve['label'])} (AP {curve['average_precision']:.3f})")
        line = ax.step(curve["recall"], curve["precision"], where="post", label=label,
                       linewidth=1.4)[0]
        if len(curves) == 1:
            ax.axhline(curve["prevalence"], linestyle=":", color=line.get_color(), linewidth=1)
    ax.set_ylim(-0.02, 1.02)
    return _finish(ax, "Precision-recall curve", "recall", "precision", legend=True)


def plot_calibration_curves(curves: list[dict], ax=None):
    ax = _axes(ax)
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey", linewidth=1, label="perfectly calibrated")
    for curve in curves:
        ax.plot(curve["prob_pred"], curve["prob_true"], marker="o", markersize=3,
                linewidth=1.2, label=_short(curve["label"]))
    return _finish(ax, "Calibration curve", "mean predicted probability",
                   "fraction of positives", legend=True)


def plot_predicted_vs_actual(actual, predicted, n_rows: int | None = None, ax=None):
    ax = _axes(ax)
    ax.scatter(actual, predicted, s=5, alpha=0.4, linewidths=0)
    if len(actual):
        low, high = min(min(actual), min(predicted)), max(max(actual), max(predicted))
        ax.plot([low, high], [low, high], linestyle=":", color="grey", linewidth=1)
    shown = f" ({len(actual):,} of {n_rows:,} rows)" if n_rows and n_rows > len(actual) else ""
    return _finish(ax, "Predicted vs actual" + shown, "actual", "predicted")


def plot_residuals(actual, predicted, ax=None):
    import numpy as np

    ax = _axes(ax)
    residuals = np.asarray(actual, dtype=float) - np.asarray(predicted, dtype=float)
    ax.scatter(predicted, residuals, s=5, alpha=0.4, linewidths=0)
    ax.axhline(0, linestyle=":", color="grey", linewidth=1)
    return _finish(ax, "Residuals vs predicted", "predicted", "actual − predicted")


def plot_residual_histogram(counts, edges, ax=None):
    ax = _axes(ax)
    ax.stairs(counts, edges, fill=True, alpha=0.7)
    ax.axvline(0, linestyle=":", color="grey", linewidth=1)
    return _finish(ax, "Residual histogram", "actual − predicted", "rows")


def plot_importance(features, mean, std, scoring: str, top: int = 20, ax=None):
    """The ``top`` features by mean drop, largest first; a figure wide enough for the
    longest name beside the bars and the whole title over them."""
    import numpy as np
    from matplotlib import rcParams
    from matplotlib.ticker import MaxNLocator

    order = np.argsort(-np.asarray(mean), kind="stable")[:top][::-1]
    names = [_short(features[i]) for i in order]
    shown = f" (top {top} of {len(features)})" if len(features) > top else ""
    title = "Permutation importance" + shown
    if ax is None:
        # Constrained layout makes room for the names, but centres the title over the
        # bars without widening the figure: the bars must be at least as wide as it.
        bars = max(3.2, text_inches(title, rcParams["axes.titlesize"]) + 0.2)
        names_width = max((text_inches(name, rcParams["ytick.labelsize"]) for name in names),
                          default=0)
        ax = _axes(None, (names_width + bars + 0.6, max(2.4, 1.0 + 0.22 * len(order))))
    ax.barh(range(len(order)), [mean[i] for i in order], xerr=[std[i] for i in order],
            color="tab:blue", alpha=0.8)
    ax.set_yticks(range(len(order)), names, parse_math=False)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=4))  # numbers as wide as "−0.005" fit
    ax.axvline(0, color="grey", linewidth=0.8)
    return _finish(ax, title, f"drop in {scoring}", "")


# -- figures of a result, drawn on demand -------------------------------------------------

def drawers(result) -> dict[str, Any]:
    """Figure name → a function that draws it from the result's stored numbers."""
    details = result.details
    drawers: dict[str, Any] = {}
    if result.is_classification:
        curves = details.get("curves") or {}
        if curves.get("roc"):
            drawers["roc_curve"] = lambda: plot_roc_curves(curves["roc"])
            drawers["pr_curve"] = lambda: plot_pr_curves(curves["pr"])
        if curves.get("calibration"):
            drawers["calibration_curve"] = lambda: plot_calibration_curves(curves["calibration"])
        matrix, labels = details["confusion_matrix"], details["labels"]
        drawers["confusion_matrix"] = lambda: plot_confusion_matrix(matrix, labels)
        drawers["confusion_matrix_normalized"] = lambda: plot_confusion_matrix(
            matrix, labels, normalize=True)
    else:
        scatter, hist = details["scatter"], details["residual_histogram"]
        drawers["predicted_vs_actual"] = lambda: plot_predicted_vs_actual(
            scatter["actual"], scatter["predicted"], scatter["n_rows"])
        drawers["residuals_vs_predicted"] = lambda: plot_residuals(
            scatter["actual"], scatter["predicted"])
        drawers["residual_histogram"] = lambda: plot_residual_histogram(
            hist["counts"], hist["edges"])
    record = details.get("importance")
    if record:
        drawers["permutation_importance"] = lambda: plot_importance(
            record["features"], record["mean"], record["std"], record["scoring"])
    return drawers


# -- HTML ---------------------------------------------------------------------------------

def _header(result) -> str:
    bits = [f"<b>{escape(result.name or 'Evaluation')}</b>", escape(result.task),
            f"{result.n_rows:,} rows"]
    model = result.details.get("model", {}).get("class")
    if model:
        bits.append(f"model {escape(model)}")
    if result.model_uri:
        bits.append(f"model URI {escape(result.model_uri)}")
    if result.run_id:
        bits.append(f"run {escape(result.run_id[:8])}")
    if result.dataset_fingerprint:
        bits.append(f"data {escape(result.dataset_fingerprint[:12])}")
    bits.append(f"id {escape(result.evaluation_id[:8])}")
    return f"<p>{' · '.join(bits)}</p>"


def _notes(result) -> str:
    items = [f"<li>{escape(k)} skipped: {escape(v)}</li>" for k, v in result.skipped.items()]
    items += [f"<li>{escape(note)}</li>" for note in result.notes]
    return f'<ul {mark("warn")}>{"".join(items)}</ul>' if items else ""


def metrics_html(result) -> str:
    from ..evaluation.directions import higher_is_better, ordered

    rows = []
    for key in ordered(result.metrics):
        direction = {True: "higher", False: "lower", None: ""}[higher_is_better(key)]
        rows.append((key, result.metrics[key], direction))
    rows += [(key, "skipped", "") for key in result.skipped if key not in result.metrics]
    parts = [_header(result), section("Metrics", table(["metric", "value", "better"], rows)),
             _notes(result)]
    per_class = result.details.get("per_class")
    if per_class:
        columns = ["label", "precision", "recall", "f1", "support", "predicted"]
        parts.append(section("Per class", table(columns, zip(*(per_class[c] for c in columns)))))
    return "".join(parts)


def _group_html(result, names: list[str], empty: str) -> str:
    figures = result.figures
    shown = [n for n in names if n in figures]
    if not shown:
        return f'<p {mark("warn")}>{escape(empty)}</p>'
    images = "".join(png_img(figures.png(n), TITLES[n]) for n in shown)
    return f'<div class="jp-mlops-figures" style="{FIGURES}">{images}</div>'


def tab_groups(result) -> list[tuple[str, list[str], str]]:
    """(tab title, figure names, what to say when there is none) after the Metrics tab."""
    no_curves = (result.skipped.get("roc_auc") or result.skipped.get("log_loss")
                 or "no curve was computed.")
    no_importance = next((n for n in result.notes if n.startswith("Permutation importance")),
                         "Permutation importance was not computed (importance=False).")
    if result.is_classification:
        return [("Curves", ["roc_curve", "pr_curve", "calibration_curve"],
                 f"No curves: {no_curves}"),
                ("Confusion", ["confusion_matrix", "confusion_matrix_normalized"], ""),
                ("Importance", ["permutation_importance"], no_importance)]
    return [("Curves", ["predicted_vs_actual"], ""),
            ("Residuals", ["residuals_vs_predicted", "residual_histogram"], ""),
            ("Importance", ["permutation_importance"], no_importance)]


def _importance_table(result) -> str:
    frame = result.importance
    if frame is None:
        return ""
    rows = frame.head(20).itertuples(index=False)
    return table(["feature", "mean drop", "std"], rows)


def evaluation_html(result) -> str:
    """The whole dashboard as static HTML with PNG figures (drawn now if not yet)."""
    parts = [metrics_html(result)]
    for title, names, empty in tab_groups(result):
        body = _group_html(result, names, empty)
        if title == "Importance":
            body += _importance_table(result)
        parts.append(section(title, body))
    return wrap("".join(parts))


def comparison_html(comparison) -> str:
    a, b = comparison.a, comparison.b
    head = (f"<p><b>a</b>: {escape(a.label)} ({escape(a.task)}, {a.n_rows:,} rows, id "
            f"{escape(a.evaluation_id[:8])}) · <b>b</b>: {escape(b.label)} ({escape(b.task)}, "
            f"{b.n_rows:,} rows, id {escape(b.evaluation_id[:8])})</p>")
    frame = comparison.table
    rows, classes = [], []
    for metric, row in frame.iterrows():
        direction = {True: "higher", False: "lower"}.get(row["higher_is_better"], "")
        better = {"a": "a", "b": "b", "tie": "="}.get(row["better"], "")
        rows.append((metric, row["a"], row["b"], row["delta"], direction, better))
        classes.append(f"jp-mlops-better-{row['better']}" if row["better"] in ("a", "b")
                       else "")
    notes = "".join(f"<li>{escape(note)}</li>" for note in comparison.notes)
    body = head + table(["metric", "a", "b", "delta (b − a)", "better is", "better"], rows,
                        classes)
    return wrap(body + (f'<ul {mark("warn")}>{notes}</ul>' if notes else ""))


# -- widget -------------------------------------------------------------------------------

def evaluation_widget(result):
    """A Tab: Metrics | Curves | Confusion (or Residuals) | Importance. A figure tab is
    drawn the first time it is selected."""
    import ipywidgets as widgets

    groups = tab_groups(result)
    pages = [widgets.HTML(wrap(metrics_html(result)))]
    pages += [widgets.HTML(wrap("<p>Drawing…</p>")) for _ in groups]
    tab = widgets.Tab(children=pages, titles=["Metrics", *(g[0] for g in groups)])
    filled = {0}

    def fill(index: int | None) -> None:
        if index is None or index in filled or not 0 < index <= len(groups):
            return
        filled.add(index)
        title, names, empty = groups[index - 1]
        body = _group_html(result, names, empty)
        if title == "Importance":
            body += _importance_table(result)
        pages[index].value = wrap(body)

    tab.observe(lambda change: fill(change["new"]), names="selected_index")
    return tab


def mimebundle(result) -> dict[str, Any]:
    """The widget for frontends that have widgets, and HTML with PNGs for the others."""
    from .bundle import widget_bundle

    return widget_bundle(repr(result), evaluation_html(result),
                         lambda: evaluation_widget(result))


# -- progress -----------------------------------------------------------------------------

class _TextBar:
    def __init__(self, total: int, description: str) -> None:
        self.total, self.description, self.last = total, description, -1

    def update(self, done: int, total: int | None = None) -> None:
        percent = int(100 * done / max(1, self.total))
        if percent != self.last:
            self.last = percent
            sys.stderr.write(f"\r{self.description}: {percent:3d}% ({done}/{self.total})")
            sys.stderr.flush()

    def close(self) -> None:
        sys.stderr.write("\n")
        sys.stderr.flush()


class _WidgetBar:
    def __init__(self, total: int, description: str) -> None:
        import ipywidgets as widgets
        from IPython.display import display

        self.bar = widgets.IntProgress(value=0, min=0, max=total, description=description,
                                       style={"description_width": "initial"})
        display(self.bar)

    def update(self, done: int, total: int | None = None) -> None:
        self.bar.value = done

    def close(self) -> None:
        self.bar.close()


def progress_bar(total: int, description: str):
    """A progress display with ``update(done, total)`` and ``close()``: a widget in a
    kernel, a line on stderr elsewhere."""
    if in_kernel():
        try:
            return _WidgetBar(total, description)
        except Exception:  # noqa: BLE001 - widgets unavailable: fall back to text
            pass
    return _TextBar(total, description)
