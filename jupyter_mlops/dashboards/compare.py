"""Many runs at a glance: parallel coordinates over params and metrics, a param against the
metric with the params ranked by how much they moved it, the metric's histories overlaid,
and the table of one row a run, cells that differ from the best run tinted.

Plain HTML and inline SVG, no script: the same markup is the static output nbconvert and
nbval keep and the board of the live widget, which redraws it when a control changes or a
followed run moves. Every user string goes through ``escape``.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any

from .bundle import widget_bundle
from .html import MUTED, TINTS, cell, escape, wrap

MAX_AXES = 24  # of the parallel coordinates: params, then metrics
MAX_METRIC_AXES = 4
MANY = 12  # runs past which the table has one row a run instead of one column
TABLE_ROWS = 50
HISTORY_RUNS = 20
_BEST = "#d62728"
_H, _PAD_TOP, _PAD_BOTTOM = 230, 34, 22
_SCATTER_W, _SCATTER_H, _PAD = 340, 200, 30


def _cut(text: str, size: int = 14) -> str:
    return text if len(text) <= size else text[:size - 1] + "…"


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and \
        math.isfinite(value)


class _Axis:
    """Where a value sits on an axis in [0, 1]: linear, logarithmic for positive numbers
    over three decades or more, or the sorted choices evenly spaced."""

    def __init__(self, name: str, values: list[Any]) -> None:
        self.name = name
        present = [v for v in values if v is not None]
        self.numeric = bool(present) and all(_finite(v) for v in present)
        self.log = False
        if self.numeric:
            low, high = min(present), max(present)
            self.log = low > 0 and high / low >= 1000
            if self.log:
                low, high = math.log10(low), math.log10(high)
            self.low, self.high = low, (high if high != low else low + 1)
            self.labels = (format(min(present), ".3g"), format(max(present), ".3g"))
        else:
            self.choices = sorted({repr(v) if not isinstance(v, str) else v
                                   for v in present if not (isinstance(v, float)
                                                            and math.isnan(v))})
            self.labels = ((self.choices[0], self.choices[-1]) if self.choices else ("", ""))

    def at(self, value: Any) -> float | None:
        if value is None:
            return None
        if self.numeric:
            if not _finite(value) or (self.log and value <= 0):
                return None
            v = math.log10(value) if self.log else value
            return (v - self.low) / (self.high - self.low)
        text = value if isinstance(value, str) else repr(value)
        if text not in self.choices:
            return None
        return 0.5 if len(self.choices) == 1 else self.choices.index(text) / (
            len(self.choices) - 1)


def _shade(t: float) -> str:
    """Pale blue (worst) to dark blue (best), translucent: a thousand lines stay legible."""
    low, high = (158, 202, 225), (8, 48, 107)
    r, g, b = (round(a + (c - a) * t) for a, c in zip(low, high))
    return f"rgba({r},{g},{b},{0.25 + 0.5 * t:.2f})"


def _goodness(comparison, metric: str | None, summary: str) -> dict[str, float]:
    """Each charted run's place between the worst (0) and the best (1) value of ``metric``."""
    if metric is None:
        return {}
    values = {row["run_id"]: comparison.value(row, metric, summary)
              for row in comparison.trials}
    finite = [v for v in values.values() if v is not None and math.isfinite(v)]
    if not finite:
        return {}
    low, high = min(finite), max(finite)
    span = (high - low) or 1.0
    flip = comparison.direction != "maximize"
    return {run_id: ((high - v) if flip else (v - low)) / span
            for run_id, v in values.items() if v is not None and math.isfinite(v)}


def _svg(width: int, height: int, label: str, body: str, css: str) -> str:
    return (f'<svg class="{css}" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="{label}">{body}</svg>')


def _text(x: float, y: float, text: str, anchor: str = "middle", size: int = 10,
          full: str | None = None) -> str:
    hover = f"<title>{escape(full)}</title>" if full is not None and full != text else ""
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
            f'fill="{MUTED}">{hover}{escape(text)}</text>')


def parallel_svg(comparison, metric: str | None = None, summary: str = "latest") -> str:
    """One vertical axis per param that varies (those that moved the metric most first),
    then the metrics, the ranking one last; one line per run, darker the better, the best
    in red."""
    metric = metric or comparison.metric
    trials = comparison.trials
    metrics = [k for k in comparison.metric_keys() if k != metric][:MAX_METRIC_AXES - 1]
    metrics += [metric] if metric is not None else []
    params = comparison.param_keys(metric, summary)[:MAX_AXES - len(metrics)]
    names = [("params", k) for k in params] + [("metrics", k) for k in metrics]
    if len(trials) < 2 or len(names) < 2:
        return ""
    axes = []
    for kind, key in names:
        values = [row["params"].get(key) if kind == "params"
                  else comparison.value(row, key, summary) for row in trials]
        axes.append((_Axis(key, values), values))
    step = 90
    width = step * (len(axes) - 1) + 80
    span = _H - _PAD_TOP - _PAD_BOTTOM
    xs = [40 + i * step for i in range(len(axes))]
    good = _goodness(comparison, metric, summary)
    best = comparison.best(metric, summary)
    lines = []
    order = sorted(range(len(trials)), key=lambda i: good.get(trials[i]["run_id"], -1.0))
    for i in order:
        row = trials[i]
        points = []
        for x, (axis, values) in zip(xs, axes):
            at = axis.at(values[i])
            if at is not None:
                points.append(f"{x},{_PAD_TOP + (1 - at) * span:.1f}")
        if len(points) < 2:
            continue
        is_best = best is not None and row["run_id"] == best["run_id"]
        color = _BEST if is_best else _shade(good.get(row["run_id"], 0.0))
        lines.append(f'<polyline points="{" ".join(points)}" fill="none" stroke="{color}" '
                     f'stroke-width="{2.5 if is_best else 1}"><title>'
                     f'{escape(row["name"] or row["run_id"][:8])}</title></polyline>')
    frame = []
    for x, (axis, _) in zip(xs, axes):
        frame.append(f'<line x1="{x}" y1="{_PAD_TOP}" x2="{x}" y2="{_H - _PAD_BOTTOM}" '
                     f'stroke="{MUTED}" stroke-width="1"/>')
        frame.append(_text(x, 12, _cut(axis.name), full=axis.name))
        high, low = axis.labels[1], axis.labels[0]
        frame.append(_text(x, 26, _cut(high, 12), size=9, full=high))
        frame.append(_text(x, _H - 8, _cut(low, 12), size=9, full=low))
    return _svg(width, _H, "parallel coordinates of the runs' params and metrics",
                "".join(frame) + "".join(lines), "jp-mlops-compare-parallel")


def scatter_svg(comparison, param: str | None, metric: str | None = None,
                summary: str = "latest") -> str:
    """The metric against one param, a dot a run, the best in red."""
    metric = metric or comparison.metric
    if param is None or metric is None:
        return ""
    trials = comparison.trials
    xs_raw = [row["params"].get(param) for row in trials]
    ys_raw = [comparison.value(row, metric, summary) for row in trials]
    x_axis, y_axis = _Axis(param, xs_raw), _Axis(metric, ys_raw)
    best = comparison.best(metric, summary)
    dots = []
    inner_w, inner_h = _SCATTER_W - 2 * _PAD, _SCATTER_H - 2 * _PAD
    for row, x, y in zip(trials, xs_raw, ys_raw):
        ax, ay = x_axis.at(x), y_axis.at(y)
        if ax is None or ay is None:
            continue
        is_best = best is not None and row["run_id"] == best["run_id"]
        dots.append(
            f'<circle cx="{_PAD + ax * inner_w:.1f}" cy="{_PAD + (1 - ay) * inner_h:.1f}" '
            f'r="{4 if is_best else 3}" fill="{_BEST if is_best else "rgba(31,119,180,.6)"}">'
            f"<title>{escape(row['name'] or row['run_id'][:8])}: {escape(param)}="
            f"{escape(x if isinstance(x, str) else repr(x))}, {escape(metric)}="
            f"{escape(format(y, '.6g'))}</title></circle>")
    if not dots:
        return ""
    frame = (f'<line x1="{_PAD}" y1="{_SCATTER_H - _PAD}" x2="{_SCATTER_W - _PAD}" '
             f'y2="{_SCATTER_H - _PAD}" stroke="{MUTED}" stroke-width="1"/>'
             f'<line x1="{_PAD}" y1="{_PAD}" x2="{_PAD}" y2="{_SCATTER_H - _PAD}" '
             f'stroke="{MUTED}" stroke-width="1"/>'
             + _text(2, 12, _cut(f"{metric} ({summary})", 40), "start",
                     full=f"{metric} ({summary})")
             + _text(_SCATTER_W - 2, _SCATTER_H - 4, _cut(param + (" (log)" if x_axis.log
                                                                   else "") + " →", 40),
                     "end", full=param)
             + _text(_PAD, _SCATTER_H - _PAD + 12, _cut(x_axis.labels[0], 12), "start", 9)
             + _text(_SCATTER_W - _PAD, _SCATTER_H - _PAD + 12, _cut(x_axis.labels[1], 12),
                     "end", 9)
             + _text(_PAD - 2, _PAD + 4, _cut(y_axis.labels[1], 8), "end", 9,
                     full=y_axis.labels[1])
             + _text(_PAD - 2, _SCATTER_H - _PAD, _cut(y_axis.labels[0], 8), "end", 9,
                     full=y_axis.labels[0]))
    return _svg(_SCATTER_W, _SCATTER_H, "the metric against a param", frame + "".join(dots),
                "jp-mlops-compare-scatter")


def importance_html(scores: dict[str, float], metric: str | None,
                    chosen: str | None = None) -> str:
    """One bar per param: how much it moved the metric; the charted one in bold."""
    if not scores or metric is None:
        return ""
    bars = "".join(
        f'<div style="display:flex;align-items:center;gap:6px;font-size:12px">'
        f'<code style="min-width:8em{";font-weight:bold" if name == chosen else ""}">'
        f"{escape(_cut(name, 30))}</code>"
        f'<span style="display:inline-block;height:8px;width:{score * 120:.0f}px;'
        f'background:#1f77b4"></span>{escape(format(score, ".2f"))}</div>'
        for name, score in list(scores.items())[:12])
    return (f'<div class="jp-mlops-compare-importance" title="|Spearman ρ| for numbers, '
            f'η for choices"><div style="color:{MUTED};font-size:11px">what moved '
            f"{escape(metric)}</div>{bars}</div>")


def histories_svg(curves: dict[str, list[Any]], metric: str | None,
                  best_label: str | None = None) -> str:
    """The metric's steps, one line a run (the best in red); runs of one step are dots."""
    points = [(label, [(p.step, p.value) for p in steps if _finite(p.value)])
              for label, steps in curves.items()]
    points = [(label, pts) for label, pts in points if pts]
    if metric is None or not any(len(pts) > 1 for _, pts in points):
        return ""
    steps = [s for _, pts in points for s, _ in pts]
    values = [v for _, pts in points for _, v in pts]
    x0, x1 = min(steps), max(steps)
    y0, y1 = min(values), max(values)
    x1, y1 = (x1 if x1 != x0 else x0 + 1), (y1 if y1 != y0 else y0 + 1)
    inner_w, inner_h = _SCATTER_W - 2 * _PAD, _SCATTER_H - 2 * _PAD

    def xy(step: float, value: float) -> str:
        return (f"{_PAD + (step - x0) / (x1 - x0) * inner_w:.1f},"
                f"{_PAD + (1 - (value - y0) / (y1 - y0)) * inner_h:.1f}")

    lines = []
    for label, pts in sorted(points, key=lambda item: item[0] == best_label):
        color = _BEST if label == best_label else "rgba(31,119,180,.55)"
        if len(pts) == 1:
            x, y = xy(*pts[0]).split(",")
            lines.append(f'<circle cx="{x}" cy="{y}" r="2" fill="{color}">'
                         f"<title>{escape(label)}</title></circle>")
            continue
        lines.append(f'<polyline points="{" ".join(xy(s, v) for s, v in pts)}" fill="none" '
                     f'stroke="{color}" stroke-width="{2 if label == best_label else 1}">'
                     f"<title>{escape(label)}</title></polyline>")
    frame = (_text(2, 12, _cut(f"{metric} by step", 40), "start", full=metric)
             + _text(_PAD - 2, _PAD + 4, _cut(format(y1, ".3g"), 8), "end", 9)
             + _text(_PAD - 2, _SCATTER_H - _PAD, _cut(format(y0, ".3g"), 8), "end", 9)
             + _text(_SCATTER_W - _PAD, _SCATTER_H - 4, f"step {x1:g}", "end", 9)
             + _text(_PAD, _SCATTER_H - 4, f"{x0:g}", "start", 9))
    return _svg(_SCATTER_W, _SCATTER_H, "the metric's history of each run",
                frame + "".join(lines), "jp-mlops-compare-histories")


def runs_table(comparison, metric: str | None = None, summary: str = "latest",
               limit: int = TABLE_ROWS) -> str:
    """One row a run, the best first; a param that differs from the best run's is tinted."""
    from .html import HEAD_CELL, _TABLE

    metric = metric or comparison.metric
    params = comparison.param_keys(metric, summary)[:20]
    metrics = comparison.metric_keys()[:6]
    if metric in metrics:
        metrics = [metric] + [m for m in metrics if m != metric]
    best = comparison.best(metric, summary)
    sign = -1.0 if comparison.direction == "maximize" else 1.0

    def rank(row):
        value = comparison.value(row, metric, summary) if metric else None
        return (1, 0.0) if value is None or not math.isfinite(value) else (0, sign * value)

    trials = sorted(comparison.trials, key=rank)
    shown = trials[:limit]
    header = ["run", "status", *params, *[f"{m} ({summary})" for m in metrics]]
    head = "".join(f'<th style="{HEAD_CELL}">{escape(h)}</th>' for h in header)
    body = []
    for row in shown:
        is_best = best is not None and row["run_id"] == best["run_id"]
        tint = TINTS["jp-mlops-better-b"] if is_best else ""
        cells = [cell(f"{row['name'] or 'run'} ({row['run_id'][:8]})", tint=tint),
                 cell(row["status"], tint=tint)]
        for key in params:
            value = row["params"].get(key)
            differs = best is not None and not is_best and repr(value) != repr(
                best["params"].get(key))
            cells.append(cell(value, tint=TINTS["diff"] if differs else tint))
        cells += [cell(comparison.value(row, m, summary), tint=tint) for m in metrics]
        body.append(f"<tr>{''.join(cells)}</tr>")
    more = len(trials) - len(shown)
    note = (f'<div style="color:{MUTED}">{more} more runs: frame() has them all</div>'
            if more > 0 else "")
    return (f'<table style="{_TABLE}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>{note}")


def _head(comparison, metric: str | None, summary: str) -> str:
    trials = comparison.trials
    text = f"<b>{len(trials):,} runs</b>"
    if comparison.more:
        text += f" (and {comparison.more:,} more, not compared)"
    running = sum(row["status"] == "RUNNING" for row in comparison.rows)
    if running:
        text += f" · {running} running"
    best = comparison.best(metric, summary)
    if metric is not None:
        text += (f" · ranked by <code>{escape(metric)}</code> ({escape(summary)}, "
                 f"{escape(comparison.direction)})")
    if best is not None:
        value = comparison.value(best, metric, summary)
        text += (f" · best <code>{escape(best['name'] or 'run')}</code> "
                 f"({escape(best['run_id'][:8])}): {escape(format(value, '.6g'))}")
    return f'<div style="margin:2px 0">{text}</div>'


def board_html(comparison, summary: str = "latest", metric: str | None = None,
               param: str | None = None, table: bool = True) -> str:
    """The charts, and the table of one row a run, of many runs (three or more charted)."""
    metric = metric or comparison.metric
    scores = comparison.importance(metric, summary)
    params = comparison.param_keys(metric, summary, scores)
    param = param if param in params else (params[0] if params else None)
    best = comparison.best(metric, summary)
    best_label = None if best is None else f"{best['name'] or 'run'} ({best['run_id'][:8]})"
    steps = comparison.history_metric(metric)
    side = (f'<div style="display:flex;gap:16px;align-items:flex-start;flex-wrap:wrap">'
            f"{scatter_svg(comparison, param, metric, summary)}"
            f"{importance_html(scores, metric, param)}"
            f"{histories_svg(comparison.history(steps, HISTORY_RUNS), steps, best_label)}"
            "</div>")
    parallel = parallel_svg(comparison, metric, summary)
    return (_head(comparison, metric, summary)
            + (f'<div style="overflow-x:auto">{parallel}</div>' if parallel else "")
            + side + (runs_table(comparison, metric, summary) if table else ""))


def compare_html(comparison, summary: str = "latest", metric: str | None = None,
                 param: str | None = None) -> str:
    """The whole view, for a saved notebook: a few runs as columns (rows that differ
    tinted); three or more charted runs add the charts, and past ``MANY`` the table has
    one row a run."""
    from .runs import comparison_html

    if len(comparison.trials) < 3:
        return comparison_html(comparison)
    few = len(comparison.runs) <= MANY
    board = wrap(board_html(comparison, summary, metric, param, table=not few))
    return board + comparison_html(comparison, histories=False) if few else board


# -- the live widget ----------------------------------------------------------------------

class _Follower:
    """Reads the comparison again every ``interval`` seconds while a run in it runs (or for
    ``live`` seconds), and redraws the board when something changed. A daemon thread: the
    kernel's cell (a sweep) keeps running, widget updates go out as comm messages."""

    def __init__(self, box, interval: float) -> None:
        self.box = box
        self.interval = interval
        self.stop = threading.Event()
        live = box.comparison.live
        self.until = time.monotonic() + (live if live else 24 * 3600.0)
        self.follow_new = bool(live)
        self.thread = threading.Thread(target=self.loop, name="jupyter-mlops-compare",
                                       daemon=True)

    def loop(self) -> None:
        while not self.stop.wait(self.interval) and time.monotonic() < self.until:
            try:
                fresh = self.box.comparison.refresh()
            except Exception:  # noqa: BLE001 - a store busy or gone: try at the next tick
                continue
            if _signature(fresh) != _signature(self.box.comparison):
                self.box.comparison = fresh
                self.box.redraw()
            if not fresh.running and not self.follow_new:
                break
        self.box.live_note.value = ""


def _signature(comparison) -> list:
    return [(r["run_id"], r["status"], sorted(r["metrics"].items())) for r in comparison.rows]


def compare_widget(comparison, interval: float = 1.0):
    """Which metric ranks the runs, which param the scatter shows, which value of each
    metric (latest, min, max) counts; the board redrawn on each change, and while runs in
    it run."""
    import ipywidgets as widgets

    style = {"description_width": "initial"}
    metric = widgets.Dropdown(description="metric", style=style)
    param = widgets.Dropdown(description="against", style=style)
    summary = widgets.ToggleButtons(options=list(comparison.summaries), value="latest",
                                    description="value", style=style)
    board = widgets.HTML()
    live_note = widgets.HTML()
    box = widgets.VBox([widgets.HBox([metric, param, summary]), live_note, board])
    box.comparison, box.board, box.live_note = comparison, board, live_note
    box.controls = {"metric": metric, "param": param, "summary": summary}
    drawing = threading.RLock()

    def options() -> None:
        current = box.comparison
        keys = current.metric_keys()
        chosen = metric.value if metric.value in keys else current.metric
        metric.options = keys
        metric.value = chosen if chosen in keys else (keys[0] if keys else None)
        params = current.param_keys(metric.value, summary.value)
        param.options = params
        if param.value not in params:
            param.value = params[0] if params else None

    def redraw(_change=None) -> None:
        with drawing:
            options()
            board.value = compare_html(box.comparison, summary.value, metric.value,
                                       param.value)
            running = sum(r["status"] == "RUNNING" for r in box.comparison.rows)
            if box.follower is not None and box.follower.thread.is_alive():
                live_note.value = (f'<span style="color:{MUTED}">live: {running} running, '
                                   "updated as they go</span>")

    box.redraw = redraw
    box.follower = None
    with drawing:
        options()
    for control in (metric, param, summary):
        control.observe(redraw, names="value")
    redraw()
    if comparison.running or comparison.live:
        box.follower = _Follower(box, interval)
        box.follower.thread.start()
        redraw()
    return box


def mimebundle(comparison) -> dict[str, Any]:
    """The widget where a kernel with widgets runs; the static view for everyone else."""
    return widget_bundle(repr(comparison), compare_html(comparison),
                         lambda: compare_widget(comparison))


__all__ = ["board_html", "compare_html", "compare_widget", "histories_svg", "importance_html",
           "mimebundle", "parallel_svg", "runs_table", "scatter_svg"]
