"""One output for every frontend: an ipywidgets view where a kernel with widgets runs, and
its HTML copy for the others (nbconvert, nbval, GitHub, a frontend without widgets)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def in_kernel() -> bool:
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and getattr(shell, "kernel", None) is not None


def widget_bundle(text: str, html: str, widget: Callable[[], Any]) -> dict[str, Any]:
    """``text/plain`` and ``text/html``, plus the view of ``widget()`` inside a kernel."""
    bundle = {"text/plain": text, "text/html": html}
    if in_kernel():
        try:
            view = widget()._repr_mimebundle_()
        except Exception:  # noqa: BLE001 - no widgets here: the HTML copy is shown instead
            view = {}
        if WIDGET_VIEW in view:
            bundle[WIDGET_VIEW] = view[WIDGET_VIEW]
    return bundle


__all__ = ["WIDGET_VIEW", "in_kernel", "widget_bundle"]
