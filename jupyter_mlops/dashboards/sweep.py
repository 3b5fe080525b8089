"""A sweep as HTML: a line of where it stands, a chart of each trial's value with the best
so far, and the trials table with the best row tinted.

Plain HTML and inline SVG, no script: the same markup is the live view (a display updated
after each trial, in JupyterLab, VS Code and the classic Notebook alike) and the static
output nbconvert and nbval keep. Every user string goes through ``escape``.
"""

from __future__ import annotations

import math
from typing import Any

from .html import MUTED, escape, table, wrap

_WIDTH, _HEIGHT, _PAD = 360, 120, 28
_BEST_TINT = "jp-mlops-better-b"
MAX_ROWS = 10


def _points(progress) -> list[tuple[int, float]]:
    return [(t.number, t.value) for t in sorted(progress.trials, key=lambda t: t.number)
            if t.value is not None and math.isfinite(t.value)]


def chart_svg(progress) -> str:
    """Each trial's value (dots) and the best so far (a step line), as inline SVG."""
    points = _points(progress)
    if not points:
        return ""
    numbers = [n for n, _ in points]
    values = [v for _, v in points]
    low, high = min(values), max(values)
    if high == low:
        low, high = low - 0.5, high + 0.5
    first, last = min(numbers), max(max(numbers), min(numbers) + 1)

    def x(number: float) -> float:
        return _PAD + (number - first) / (last - first) * (_WIDTH - 2 * _PAD)

    def y(value: float) -> float:
        return _HEIGHT - _PAD / 2 - (value - low) / (high - low) * (_HEIGHT - _PAD)

    pick = max if progress.direction == "maximize" else min
    best, line = None, []
    for number, value in points:
        best = value if best is None else pick(best, value)
        line.append(f"{x(number):.1f},{y(best):.1f}")
    dots = "".join(
        f'<circle cx="{x(n):.1f}" cy="{y(v):.1f}" r="3" fill="#1f77b4">'
        f"<title>trial {n}: {escape(format(v, '.6g'))}</title></circle>" for n, v in points)
    label = (f'<text x="2" y="12" font-size="10" fill="{MUTED}">{escape(progress.metric)} '
             f"{escape(format(high, '.4g'))}</text>"
             f'<text x="2" y="{_HEIGHT - 2}" font-size="10" fill="{MUTED}">'
             f"{escape(format(low, '.4g'))} · trial →</text>")
    return (f'<svg class="jp-mlops-sweep-chart" width="{_WIDTH}" height="{_HEIGHT}" '
            f'viewBox="0 0 {_WIDTH} {_HEIGHT}" role="img" '
            f'aria-label="the metric by trial">{label}'
            f'<polyline points="{" ".join(line)}" fill="none" stroke="#2ca02c" '
            f'stroke-width="1.5"/>{dots}</svg>')


def _summary(progress) -> str:
    best = progress.best
    done = f"{progress.finished} of {progress.n_trials} trials"
    running = "" if progress.status != "RUNNING" else " · running"
    head = (f"<b>Sweep {escape(progress.name or progress.run_id[:8])}</b> · "
            f"{escape(progress.method)} · {escape(progress.direction)} "
            f"<code>{escape(progress.metric)}</code> · {escape(done)}{escape(running)}")
    if progress.status not in ("RUNNING", "FINISHED"):
        head += f" · <b>{escape(progress.status)}</b>"
    if best is not None:
        params = ", ".join(f"{k}={v!r}" for k, v in best.params.items())
        head += (f"<br>best {escape(format(best.value, '.6g'))} at trial {best.number} "
                 f"(<code>{escape(params)}</code>, run <code>{escape(best.run_id[:8])}"
                 "</code>)")
    return f'<div style="margin:2px 0">{head}</div>'


def _shown(progress, limit: int) -> list:
    """The best ``limit`` trials, best first, then failed ones by number: a long sweep's
    view stays small (the trials table artifact has them all)."""
    sign = -1.0 if progress.direction == "maximize" else 1.0
    scored = sorted((t for t in progress.trials if t.value is not None),
                    key=lambda t: (sign * t.value, t.number))
    others = sorted((t for t in progress.trials if t.value is None), key=lambda t: t.number)
    return (scored + others)[:limit]


def trials_table(progress, limit: int = MAX_ROWS) -> str:
    names = list(progress.space)
    trials = _shown(progress, limit)
    best = progress.best
    rows: list[list[Any]] = []
    tints: list[str] = []
    for trial in trials:
        duration = None if trial.duration_s is None else round(trial.duration_s, 3)
        rows.append([trial.number, trial.status, *[trial.params.get(n) for n in names],
                     trial.value, duration, trial.run_id[:8]])
        tints.append(_BEST_TINT if best is not None and trial.run_id == best.run_id else "")
    header = ["trial", "status", *names, progress.metric, "duration_s", "run"]
    more = len(progress.trials) - len(trials)
    note = (f'<div style="color:{MUTED}">{more} more trials in trials.csv and '
            "trials_frame()</div>") if more > 0 else ""
    return table(header, rows, tints, code=(len(header) - 1,)) + note


def importance_html(progress) -> str:
    """One bar per swept param: how much it moved the metric (rank correlation, η)."""
    scores = progress.importance()
    if not scores:
        return ""
    bars = "".join(
        f'<div style="display:flex;align-items:center;gap:6px;font-size:12px">'
        f'<code style="min-width:8em">{escape(name)}</code>'
        f'<span style="display:inline-block;height:8px;width:{score * 120:.0f}px;'
        f'background:#1f77b4"></span>{escape(format(score, ".2f"))}</div>'
        for name, score in scores.items())
    return (f'<div class="jp-mlops-sweep-importance" title="|Spearman ρ| for numbers, η for '
            f'choices"><div style="color:{MUTED};font-size:11px">what moved '
            f"{escape(progress.metric)}</div>{bars}</div>")


def sweep_html(progress) -> str:
    """The whole view of a sweep, for a live display or a saved notebook."""
    chart = chart_svg(progress)
    side = importance_html(progress)
    if chart or side:
        chart = (f'<div style="display:flex;gap:16px;align-items:flex-start">{chart}'
                 f"{side}</div>")
    body = _summary(progress) + chart
    if progress.trials:
        body += trials_table(progress)
    return wrap(body)


__all__ = ["chart_svg", "importance_html", "sweep_html", "trials_table"]
