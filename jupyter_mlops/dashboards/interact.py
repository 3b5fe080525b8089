"""The controls of ``interact``: sliders, dropdowns and a Run button, with a live table and
chart of the runs made through them beside. Clicks are forwarded to the core's
``InteractiveRuns.run``; this module only draws. Every user string goes through ``escape``.
"""

from __future__ import annotations

import math
from typing import Any

from .bundle import widget_bundle
from .html import MUTED, escape, table, wrap

_WIDTH, _HEIGHT, _PAD = 300, 140, 28
MAX_ROWS = 15


def _numeric(values: list[Any]) -> bool:
    return bool(values) and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                for v in values)


def chart_svg(model) -> str:
    """The shown metric against the first numeric control, one dot a run (SVG)."""
    metric = model.shown_metric
    numeric = [n for n, d in model.space.items() if d.kind != "categorical"]
    if metric is None or not numeric:
        return ""
    param = numeric[0]
    points = [(r.params[param], r.metrics[metric]) for r in model.runs
              if metric in r.metrics and math.isfinite(r.metrics[metric])]
    if not points:
        return ""
    log = model.space[param].log
    xs = [math.log10(x) if log else x for x, _ in points]
    ys = [y for _, y in points]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    x1, y1 = (x1 + 1 if x1 == x0 else x1), (y1 + 1 if y1 == y0 else y1)
    dots = "".join(
        f'<circle cx="{_PAD + (x - x0) / (x1 - x0) * (_WIDTH - 2 * _PAD):.1f}" '
        f'cy="{_HEIGHT - _PAD - (y - y0) / (y1 - y0) * (_HEIGHT - 2 * _PAD):.1f}" r="3.5" '
        f'fill="#1f77b4"><title>{escape(param)}={escape(format(raw, ".4g"))}: '
        f"{escape(format(y, '.4g'))}</title></circle>"
        for x, y, (raw, _) in zip(xs, ys, points))
    axis = (f'<text x="2" y="12" font-size="10" fill="{MUTED}">{escape(metric)}</text>'
            f'<text x="{_WIDTH - 2}" y="{_HEIGHT - 4}" font-size="10" text-anchor="end" '
            f'fill="{MUTED}">{escape(param)}{" (log)" if log else ""} →</text>')
    return (f'<svg class="jp-mlops-interact-chart" width="{_WIDTH}" height="{_HEIGHT}" '
            f'role="img" aria-label="the metric by a control">{axis}{dots}</svg>')


def runs_html(model) -> str:
    """The chart and the table of runs, the latest first."""
    if not model.runs:
        return wrap(f'<div style="color:{MUTED}">No run yet: set the controls and press '
                    "Run.</div>")
    names = list(model.space)
    metrics = sorted({k for r in model.runs for k in r.metrics})
    shown = model.runs[::-1][:MAX_ROWS]
    rows = [[len(model.runs) - i - 1, r.status, *[r.params.get(n) for n in names],
             *[r.metrics.get(m) for m in metrics], r.run_id[:8]] for i, r in enumerate(shown)]
    tints = ["jp-mlops-drifted" if r.status == "FAILED" else "" for r in shown]
    header = ["#", "status", *names, *metrics, "run"]
    more = len(model.runs) - len(shown)
    note = (f'<div style="color:{MUTED}">{more} earlier runs: frame() has them all</div>'
            if more else "")
    chart = chart_svg(model)
    return wrap((f"<div>{chart}</div>" if chart else "")
                + table(header, rows, tints, code=(len(header) - 1,)) + note)


def summary_html(model) -> str:
    """The static view (nbconvert, nbval): the controls as text and the runs so far."""
    controls = ", ".join(f"{n}={d.describe()}" for n, d in model.space.items())
    head = (f"<div><b>interact</b> over <code>{escape(controls)}</code> · "
            f"{len(model.runs)} runs in <code>{escape(model.experiment)}</code></div>")
    return wrap(head) + runs_html(model)


def _control(name: str, dimension, value: Any):
    import ipywidgets as widgets

    style = {"description_width": "initial"}
    if dimension.kind == "categorical":
        options = [(c if isinstance(c, str) else repr(c), c) for c in dimension.choices]
        return widgets.Dropdown(options=options, value=value, description=name, style=style)
    if dimension.kind == "int":
        return widgets.IntSlider(min=int(dimension.low), max=int(dimension.high),
                                 value=int(value), description=name, style=style)
    if dimension.log:
        return widgets.FloatLogSlider(base=10, min=math.log10(dimension.low),
                                      max=math.log10(dimension.high), value=value,
                                      description=name, style=style)
    return widgets.FloatSlider(min=dimension.low, max=dimension.high, value=value,
                               step=(dimension.high - dimension.low) / 100,
                               description=name, style=style)


def interact_widget(model):
    """Controls and a Run button on the left, the runs' chart and table on the right."""
    import ipywidgets as widgets

    controls = {n: _control(n, d, model.defaults[n]) for n, d in model.space.items()}
    button = widgets.Button(description="Run", button_style="primary", icon="play")
    status = widgets.HTML()
    board = widgets.HTML(runs_html(model))

    def run(_button=None) -> None:
        button.disabled = True
        status.value = "running…"
        try:
            done = model.run(**{n: c.value for n, c in controls.items()})
            status.value = (f"run <code>{escape(done.run_id[:8])}</code> "
                            f"{escape(done.status)}"
                            + (f": {escape(done.error.splitlines()[0][:200])}"
                               if done.error else ""))
        except Exception as exc:  # noqa: BLE001 - the panel stays usable; the line says why
            status.value = escape(f"{type(exc).__name__}: {exc}".splitlines()[0][:300])
        finally:
            button.disabled = False
            board.value = runs_html(model)

    button.on_click(run)
    panel = widgets.VBox([*controls.values(), button, status],
                         layout=widgets.Layout(min_width="320px"))
    box = widgets.HBox([panel, board])
    box.controls, box.button, box.status, box.board = controls, button, status, board
    return box


def mimebundle(model) -> dict[str, Any]:
    """The widget where a kernel with widgets runs; the static summary for everyone else."""
    return widget_bundle(repr(model), summary_html(model), lambda: interact_widget(model))


__all__ = ["chart_svg", "interact_widget", "mimebundle", "runs_html", "summary_html"]
