"""The HTML building blocks of every view: inline styles (JupyterLab's table CSS and an
untrusted notebook's sanitizer leave them alone), numbers rounded with the full value on
hover, NaN as "–", and PNGs shown at their figure's size with twice the pixels."""

from __future__ import annotations

import math
from html.parser import HTMLParser

import numpy as np
import pytest
from matplotlib.figure import Figure

from support import parse
from jupyter_mlops.dashboards.html import Code, escape, png_img, pre, table, wrap
from jupyter_mlops.dashboards.png import SCALE, display_size, figure_png, pixel_size


class _Cells(HTMLParser):
    def __init__(self):
        super().__init__()
        self.cells: list[dict[str, str]] = []
        self._open = False

    def handle_starttag(self, tag, attrs):
        if tag in ("td", "th"):
            self.cells.append({"tag": tag, **dict(attrs), "text": ""})
            self._open = True

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self._open = False

    def handle_data(self, data):
        if self._open:
            self.cells[-1]["text"] += data


def cells(markup: str) -> list[dict[str, str]]:
    """Each <th> and <td> in order: its attributes and its ``text``."""
    parser = _Cells()
    parser.feed(markup)
    return parser.cells


def style(cell: dict[str, str]) -> dict[str, str]:
    pairs = (part.split(":", 1) for part in cell.get("style", "").split(";") if part)
    return {key.strip(): value.strip() for key, value in pairs}


def test_tables_are_styled_inline_numbers_right_text_left_code_monospace():
    markup = wrap(table(["name", "value", "source"],
                        [("lr", 0.5, Code("x = 1\n  y = 2")), ("n", 12, "plain")],
                        code=[2]))
    assert "<style" not in markup
    head, *body = cells(markup)[:1] + cells(markup)[3:]
    assert style(head)["text-align"] == "left" and "background" in style(head)
    name, number, source, _, integer, plain = body
    assert style(name)["text-align"] == "left"
    for numeric in (number, integer):
        assert style(numeric)["text-align"] == "right"
        assert style(numeric)["font-variant-numeric"] == "tabular-nums"
    assert style(source)["text-align"] == "left" and "monospace" in style(source)["font-family"]
    assert style(source)["white-space"] == "pre-wrap" and source["text"] == "x = 1\n  y = 2"
    assert "monospace" in style(plain)["font-family"]  # every value of a code column
    assert "monospace" not in style(name).get("font-family", "")
    assert 'style="' in table(["t"], [("x",)]).split("<thead>")[0]  # the table itself


@pytest.mark.parametrize(("value", "shown", "title"), [
    (0.00715545, "0.007155", "0.00715545"),
    (0.959064327, "0.9591", "0.959064327"),
    (0.5, "0.5", None),
    (1.0, "1", None),
    (100.0, "100", None),
    (-1234.5678, "-1235", "-1234.5678"),
    (123456.789, "123457", "123456.789"),
    (3.2e-7, "3.2e-07", None),
    (1.23456e-7, "1.235e-07", "1.23456e-07"),
    (np.float32(0.1), "0.1", None),
    (np.float32(0.123456), "0.1235", "0.123456"),
    (np.float64(2.0) / 3, "0.6667", "0.6666666666666666"),
    (42, "42", None),
    (np.int64(7), "7", None),
    (math.nan, "–", "NaN"),
    (np.float64("nan"), "–", "NaN"),
    (math.inf, "∞", "inf"),
    (None, "", None),
    (True, "True", None),
])
def test_numbers_are_rounded_with_the_full_value_on_hover(value, shown, title):
    (cell,) = cells(table(["v"], [(value,)]))[1:]
    assert cell["text"] == shown
    assert cell.get("title") == title


def test_marks_and_rows_are_tinted_inline():
    markup = table(["k"], [("a",), ("b",)], ["diff", ""])
    tinted, plain = cells(markup)[1:]
    assert style(tinted)["background"] == "rgba(255,200,0,.25)"
    assert "background" not in style(plain)
    assert 'class="diff"' in markup  # the class stays, for anyone styling it further
    assert "font-family" in pre("code")  # cell sources and tracebacks: monospace
    assert escape("<b>") == "&lt;b&gt;"


def _figure(width: float, height: float):
    figure = Figure(figsize=(width, height))
    figure.add_subplot().plot([0, 1], [1, 0])
    return figure


def test_pngs_have_twice_the_pixels_of_the_size_they_are_shown_at():
    data = figure_png(_figure(4, 3))
    assert SCALE == 2
    assert pixel_size(data) == (768, 576)  # 4 × 3 inches at 96 CSS px per inch, twice over
    assert display_size(data) == (384, 288)
    attrs = next(attrs for tag, attrs in parse(png_img(data, "a <plot>")).tags if tag == "img")
    assert (attrs["width"], attrs["height"]) == ("384", "288")
    assert "width:384px" in attrs["style"] and "max-width:100%" in attrs["style"]
    assert attrs["alt"] == "a <plot>"


def test_a_png_drawn_at_another_density_is_shown_at_its_figures_size():
    """An evaluation figure kept in the store by an older version (96 dpi, 1×)."""
    old = figure_png(_figure(4, 3), dpi=96)
    assert pixel_size(old) == display_size(old) == (384, 288)
    tight = figure_png(_figure(4, 3), tight=True)
    width, height = pixel_size(tight)
    assert display_size(tight) == (width // 2, height // 2)
    with pytest.raises(ValueError, match="PNG"):
        pixel_size(b"GIF89a" + bytes(30))
