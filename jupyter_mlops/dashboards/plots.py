"""Matplotlib drawings. Each takes ``ax=None`` and returns the Axes it drew on.

User text (run and metric names) is drawn with math parsing off, so a ``$`` in a name is
shown as typed instead of raising a mathtext error.
"""

from __future__ import annotations

from typing import Any


def _axes(ax):
    if ax is not None:
        return ax
    from matplotlib.figure import Figure

    # A bare Figure, not pyplot: nothing is registered with the notebook's backend.
    return Figure(figsize=(6.4, 3.6)).add_subplot()


def plot_metric_histories(histories: dict[str, dict[str, list[Any]]], ax=None):
    """One line per (run, metric) over steps."""
    ax = _axes(ax)
    for key, per_run in histories.items():
        for label, points in per_run.items():
            if len(points) < 2:
                continue
            line_label = f"{label}: {key}"
            ax.plot([p.step for p in points], [p.value for p in points], marker=".",
                    label=line_label)
    ax.set_xlabel("step", parse_math=False)
    ax.set_ylabel("value", parse_math=False)
    if ax.lines:
        legend = ax.legend(fontsize=8)
        for text in legend.get_texts():
            text.set_parse_math(False)
    return ax


def text_inches(text: str, size) -> float:
    """Width of one line of ``text`` (no math) in matplotlib's default font at ``size``."""
    import warnings

    from matplotlib.backends.backend_agg import RendererAgg
    from matplotlib.font_manager import FontProperties

    with warnings.catch_warnings():  # no glyph for an emoji: the box drawn is as wide
        warnings.simplefilter("ignore", UserWarning)
        width, _, _ = RendererAgg(1, 1, 72).get_text_width_height_descent(
            text, FontProperties(size=size), ismath=False)
    return width / 72


KEPT = 11  # characters of a name every plot shows before cutting it with "…"


def fit_text(text: str, size, width: float) -> str:
    """``text`` cut with "…" to fit ``width`` inches, keeping at least its first ``KEPT``
    characters (the part of a name that tells it apart)."""
    if text_inches(text, size) <= width:
        return text
    keep = len(text)
    while keep > KEPT and text_inches(text[:keep] + "…", size) > width:
        keep -= max(1, (keep - KEPT) // 4)
    return text[:max(keep, KEPT)] + "…"
