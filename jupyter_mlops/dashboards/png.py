"""Figures as PNG bytes: the one way every view of ours renders a matplotlib figure.

A figure of W inches is shown W × ``CSS_DPI`` CSS pixels wide (the size a browser gives an
inch) and drawn with ``SCALE`` image pixels per CSS pixel, so it stays sharp on a screen
with a device pixel ratio of 2; a 1× screen scales it down. The PNG records its density
(pHYs), from which ``display_size`` tells the size to show it at, also for a PNG drawn
by an older version at another density.
"""

from __future__ import annotations

import io
import math
import struct
import warnings

CSS_DPI = 96
SCALE = 2
DPI = CSS_DPI * SCALE
_METRES_PER_INCH = 0.0254


def figure_png(figure, dpi: int = DPI, *, tight: bool = False) -> bytes:
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


def pixel_size(data: bytes) -> tuple[int, int]:
    """(width, height) in image pixels, from the PNG header."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise ValueError("Not a PNG image.")
    return struct.unpack(">II", data[16:24])


def _dpi(data: bytes) -> int:
    """The density the PNG says it was drawn at; ``CSS_DPI`` (shown 1:1) when it says none."""
    position = 8
    while position + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        if kind == b"pHYs" and length == 9:
            per_metre, _, unit = struct.unpack(">IIB", data[position + 8:position + 17])
            if unit == 1 and per_metre:
                return round(per_metre * _METRES_PER_INCH)  # stored in whole pixels/metre
        if kind in (b"IDAT", b"IEND"):
            break  # pHYs comes before the image data
        position += 12 + length
    return CSS_DPI


def display_size(data: bytes) -> tuple[int, int]:
    """(width, height) in CSS pixels at which the PNG shows its figure at its size: rounded
    down, so that a screen always gets at least ``SCALE`` image pixels per CSS pixel."""
    width, height = pixel_size(data)
    ratio = CSS_DPI / _dpi(data)
    return max(1, math.floor(width * ratio)), max(1, math.floor(height * ratio))
