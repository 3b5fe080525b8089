"""The figures a tracked cell draws, saved as PNG artifacts named after what they show.

A figure is often closed before the cell ends: ``plt.show()`` under the inline backend
displays and closes it, ``interact`` draws into a widget's output, a script-like cell calls
``plt.close(fig)`` after ``savefig``. So while a tracked cell runs, matplotlib's own
``figure.hooks`` hands every figure pyplot creates to the collector, which holds it until
the cell's figures are saved. Figures still open at the end that the hook missed (made
before the hook was installed, or after an ``rcdefaults()``) are taken too.

A figure is named after its label (``plt.figure("roc")``), else its suptitle, else its
first axes title, else the variable that holds it or one of its axes, else ``figure_<n>``.

matplotlib is never imported to find figures; it is imported early only for a cell whose
source shows it is about to plot (``plt``, ``matplotlib``, ``seaborn``, ``.plot(``,
``interact``), so that the hook is in place before its first figure.
"""

from __future__ import annotations

import io
import re
import sys
from collections.abc import Mapping
from typing import Any

from . import storage
from ..store import Store

HOOK = f"{__name__}:_created"
_PLOTTING = re.compile(r"\b(?:plt|pyplot|matplotlib|seaborn|sns|interact)\b|\.plot\b")
_UNSAFE = re.compile(r"[^\w .\-()+=,]+")
_collectors: list[FigureCollector] = []


def _created(figure: Any) -> None:
    """matplotlib calls this with each figure pyplot creates (see ``figure.hooks``)."""
    for collector in _collectors:
        collector.hooked.append(figure)


def figure_numbers() -> set[int]:
    pyplot = sys.modules.get("matplotlib.pyplot")
    return set(pyplot.get_fignums()) if pyplot is not None else set()


def open_figures() -> list[Any]:
    """Figures pyplot has open (read from its managers: pyplot.figure(n) would change the
    current figure)."""
    helpers = sys.modules.get("matplotlib._pylab_helpers")
    if helpers is None or "matplotlib.pyplot" not in sys.modules:
        return []
    return [(m.num, m.canvas.figure) for m in helpers.Gcf.get_all_fig_managers()]


class FigureCollector:
    """The figures one tracked cell makes, open or already closed."""

    def __init__(self, source: str = "") -> None:
        if "matplotlib" not in sys.modules and _PLOTTING.search(source):
            try:
                import matplotlib  # noqa: F401 - the cell is about to; the hook needs it first
            except ImportError:
                pass
        self.before = figure_numbers()
        self.hooked: list[Any] = []
        self._installed = False

    def start(self) -> None:
        _collectors.append(self)
        matplotlib = sys.modules.get("matplotlib")
        if matplotlib is None:
            return
        try:
            hooks = list(matplotlib.rcParams["figure.hooks"])
        except KeyError:  # a matplotlib older than 3.7 has no figure hooks
            return
        if HOOK not in hooks:
            matplotlib.rcParams["figure.hooks"] = [*hooks, HOOK]
            self._installed = True

    def stop(self) -> None:
        if self in _collectors:
            _collectors.remove(self)
        matplotlib = sys.modules.get("matplotlib")
        if self._installed and matplotlib is not None and not _collectors:
            try:
                hooks = matplotlib.rcParams["figure.hooks"]
                matplotlib.rcParams["figure.hooks"] = [h for h in hooks if h != HOOK]
            except (KeyError, ValueError):
                pass
        self._installed = False

    def figures(self) -> list[Any]:
        """The cell's figures in the order they were made, each once."""
        found = list(self.hooked)
        seen = {id(f) for f in found}
        for number, figure in open_figures():
            if number not in self.before and id(figure) not in seen:
                found.append(figure)
                seen.add(id(figure))
        return found


def figure_name(figure: Any, namespace: Mapping[str, Any] | None = None) -> str:
    """What the figure shows: its label, suptitle, first axes title or variable name."""
    candidates = [figure.get_label()]
    suptitle = getattr(figure, "get_suptitle", None)
    candidates.append(suptitle() if suptitle is not None else "")
    for axes in figure.get_axes():
        candidates.extend(axes.get_title(loc) for loc in ("center", "left", "right"))
    for text in candidates:
        name = _safe(text)
        if name:
            return name
    variable = _variable(figure, namespace or {})
    if variable:
        return variable
    return f"figure_{getattr(figure, 'number', None) or 1}"


def _safe(text: Any) -> str:
    if not isinstance(text, str):
        return ""
    return _UNSAFE.sub("_", text.replace("$", "")).strip(" ._")[:100]


def _variable(figure: Any, namespace: Mapping[str, Any]) -> str | None:
    """A public name bound to the figure, else to one of its axes."""
    axes = {id(a) for a in figure.get_axes()}
    by_axes = None
    for name, value in list(namespace.items()):
        if name.startswith("_") or not name.isidentifier():
            continue
        if value is figure:
            return name
        if by_axes is None and id(value) in axes:
            by_axes = name
    return by_axes


def save_figures(store: Store, figures: list[Any], namespace: Mapping[str, Any] | None = None
                 ) -> list[tuple[str, str, int]]:
    """Draw ``figures`` as PNG files in the artifact folder (no database write, so it can
    happen before the inline backend closes them); returns (name, sha256, size) each."""
    saved = []
    used: dict[str, int] = {}
    for figure in figures:
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", bbox_inches="tight")
        digest, size = store.artifacts.put_bytes(buffer.getvalue())
        label = figure_name(figure, namespace)
        used[label] = used.get(label, 0) + 1
        if used[label] > 1:
            label = f"{label}-{used[label]}"
        saved.append((f"figures/{label}.png", digest, size))
    return saved


def add_figures(store: Store, run_id: str, saved: list[tuple[str, str, int]]) -> int:
    """Link figures saved by ``save_figures`` to the run."""
    for name, digest, size in saved:
        storage.add_artifact(store, run_id, name, "figure", digest, size, "image/png")
    return len(saved)
