"""Figures as PNG bytes: the one way every view of ours renders a matplotlib figure."""

from __future__ import annotations

import io
import warnings


def figure_png(figure, dpi: int = 96, *, tight: bool = False) -> bytes:
    """PNG bytes of ``figure``, with no version stamp, so the same figure gives the same
    bytes (and the same artifact) whichever matplotlib drew it.

    Names in emoji or CJK have no glyphs in matplotlib's default font: they are drawn as
    boxes, and the names are shown as text beside the figure, so the warning matplotlib
    would print into the user's output for each missing glyph is silenced here.
    """
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .* missing from",
                                category=UserWarning)
        figure.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None},
                       bbox_inches="tight" if tight else None)
    return buffer.getvalue()
