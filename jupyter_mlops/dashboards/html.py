"""HTML building blocks. Every piece of user text goes through ``escape``.

Styles are inline ``style`` attributes, never a ``<style>`` sheet: JupyterLab's own rules
for tables in outputs (cells right-aligned, in the UI font) win over a sheet of ours, and
a notebook opened untrusted drops every ``<style>`` element, while its sanitizer keeps
style attributes (all the properties used here but ``font-variant-numeric``, a nicety).
"""

from __future__ import annotations

import base64
import html
import math
import numbers
from collections.abc import Collection, Iterable, Sequence
from typing import Any

from .png import display_size


def escape(value: Any) -> str:
    """Text for HTML: escapes ``<>&"'`` and drops lone surrogates that would break encoding."""
    text = value if isinstance(value, str) else format_value(value)
    return html.escape(text.encode("utf-8", "replace").decode("utf-8"), quote=True)


def format_value(value: Any) -> str:
    """The full text of a value: what a table cell shows on hover, and the CLI prints."""
    if _is_missing(value):
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return f"{value:.6g}"
    return str(value)


def _is_missing(value: Any) -> bool:
    return value is None or type(value).__name__ in ("NAType", "NaTType")  # pandas' missing


# -- styles --------------------------------------------------------------------------------

BAD = "#c00"
WARN = "#b35900"
MUTED = "#777"
# Translucent tints read on light and dark themes alike.
TINTS = {
    "diff": "background:rgba(255,200,0,.25)",
    "jp-mlops-drifted": "background:rgba(220,50,50,.12)",
    "jp-mlops-skipped": f"color:{MUTED}",
    "jp-mlops-better-a": "background:rgba(220,60,0,.13)",
    "jp-mlops-better-b": "background:rgba(0,160,60,.15)",
    "child": f"color:{MUTED};font-size:11px",  # a child run under its parent
}
CODE_FONT = "font-family:Menlo,Consolas,DejaVu Sans Mono,monospace"
_TABLE = "border-collapse:collapse;font-size:12px;margin:4px 0;table-layout:auto"
_CELL = ("border:1px solid rgba(127,127,127,.35);padding:2px 6px;vertical-align:top;"
         "line-height:1.4;max-width:none")
TEXT_CELL = f"{_CELL};text-align:left;white-space:pre-wrap"
NUMBER_CELL = (f"{_CELL};text-align:right;white-space:nowrap;"
               "font-variant-numeric:tabular-nums")
CODE_CELL = f"{TEXT_CELL};{CODE_FONT}"
HEAD_CELL = f"{TEXT_CELL};background:rgba(127,127,127,.15);font-weight:bold"
PRE = f"white-space:pre-wrap;margin:0;max-height:20em;overflow:auto;{CODE_FONT}"
MISSING = "–"  # what MLflow shows for a value that is not a number


def mark(kind: str) -> str:
    """Attributes of a warning (``warn``) or failure (``bad``) in running text."""
    return f'class="{kind}" style="color:{BAD if kind == "bad" else WARN}"'


class Code(str):
    """Text shown as code in a table: monospace, left-aligned, line breaks kept."""

    __slots__ = ()


def _round(value: float) -> str:
    """About four significant digits; integer digits are never dropped."""
    if 1e4 <= abs(value) < 1e15:
        return f"{value:.0f}"
    return f"{value:.4g}"


def cell(value: Any, code: bool = False, tint: str = "") -> str:
    """One ``<td>``: numbers right-aligned and rounded, the full value on hover; NaN as
    "–"; text left-aligned; ``Code`` (or any text when ``code``) monospace."""
    title = ""
    if isinstance(value, bool) or _is_missing(value) or not isinstance(value, numbers.Real):
        text = "" if _is_missing(value) else value if isinstance(value, str) else str(value)
        style = CODE_CELL if code or isinstance(value, Code) else TEXT_CELL
    else:
        style = NUMBER_CELL
        if isinstance(value, numbers.Integral):
            text = str(int(value))
        else:
            number = float(value)
            if math.isnan(number):
                text, title = MISSING, "NaN"
            elif math.isinf(number):
                text = "∞" if number > 0 else "−∞"
                title = format_value(number)
            else:
                text, full = _round(number), str(value)  # str: numpy's short form too
                title = "" if float(text) == float(full) else full
    hover = f' title="{escape(title)}"' if title else ""
    return f'<td style="{style}{";" + tint if tint else ""}"{hover}>{escape(text)}</td>'


def table(
    header: Sequence[str],
    rows: Iterable[Sequence[Any]],
    row_classes: Sequence[str] | None = None,
    code: Collection[int] = (),
) -> str:
    """A table; ``row_classes`` (keys of ``TINTS``) tint rows; columns at the indexes in
    ``code`` are code."""
    head = "".join(f'<th style="{HEAD_CELL}">{escape(h)}</th>' for h in header)
    body = []
    for i, row in enumerate(rows):
        css = row_classes[i] if row_classes and i < len(row_classes) and row_classes[i] else ""
        tint = TINTS.get(css, "")
        cells = "".join(cell(value, j in code, tint) for j, value in enumerate(row))
        body.append(f'<tr class="{escape(css)}">{cells}</tr>' if css else f"<tr>{cells}</tr>")
    return (f'<table style="{_TABLE}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>")


def section(title: str, content: str) -> str:
    return f"<h4>{escape(title)}</h4>{content}"


# JupyterLab (and Notebook 7) typeset $...$ in HTML outputs with MathJax 3, the classic
# Notebook with MathJax 2: a name such as "lr $x^$ run" would be shown as math, or as a
# TeX error. These classes tell both to leave our text alone.
NO_MATH = "mathjax_ignore tex2jax_ignore"


def wrap(content: str) -> str:
    return f'<div class="jp-mlops {NO_MATH}">{content}</div>'


def png_img(data: bytes, alt: str) -> str:
    """The PNG at the size of its figure (not its pixel size, which is larger for sharp
    HiDPI screens), shrunk to fit a narrower output."""
    encoded = base64.b64encode(data).decode("ascii")
    width, height = display_size(data)
    return (f'<img alt="{escape(alt)}" width="{width}" height="{height}" '
            f'style="width:{width}px;max-width:100%;height:auto" '
            f'src="data:image/png;base64,{encoded}"/>')


def pre(text: str) -> str:
    return f'<pre style="{PRE}">{escape(text)}</pre>'
