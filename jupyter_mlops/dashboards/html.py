"""HTML building blocks. Every piece of user text goes through ``escape``."""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Iterable, Sequence
from typing import Any

STYLE = """<style>
.jp-mlops table{border-collapse:collapse;font-size:12px;margin:4px 0}
.jp-mlops th,.jp-mlops td{border:1px solid #ccc;padding:2px 6px;text-align:left;vertical-align:top;white-space:pre-wrap}
.jp-mlops th{background:rgba(127,127,127,.15)}
.jp-mlops .diff td{background:rgba(255,200,0,.25)}
.jp-mlops .child td{color:rgba(127,127,127,1);font-size:11px}
.jp-mlops .warn{color:#b35900}
.jp-mlops .bad{color:#c00}
.jp-mlops pre{white-space:pre-wrap;margin:0;max-height:20em;overflow:auto}
</style>"""


def escape(value: Any) -> str:
    """Text for HTML: escapes ``<>&"'`` and drops lone surrogates that would break encoding."""
    text = value if isinstance(value, str) else format_value(value)
    return html.escape(text.encode("utf-8", "replace").decode("utf-8"), quote=True)


def format_value(value: Any) -> str:
    if value is None or type(value).__name__ in ("NAType", "NaTType"):  # pandas' missing values
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return f"{value:.6g}"
    return str(value)


def table(
    header: Sequence[str],
    rows: Iterable[Sequence[Any]],
    row_classes: Sequence[str] | None = None,
) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        css = row_classes[i] if row_classes and i < len(row_classes) and row_classes[i] else ""
        cells = "".join(f"<td>{escape(c)}</td>" for c in row)
        body.append(f'<tr class="{escape(css)}">{cells}</tr>' if css else f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def section(title: str, content: str) -> str:
    return f"<h4>{escape(title)}</h4>{content}"


# JupyterLab (and Notebook 7) typeset $...$ in HTML outputs with MathJax 3, the classic
# Notebook with MathJax 2: a name such as "lr $x^$ run" would be shown as math, or as a
# TeX error. These classes tell both to leave our text alone.
NO_MATH = "mathjax_ignore tex2jax_ignore"


def wrap(content: str) -> str:
    return f'{STYLE}<div class="jp-mlops {NO_MATH}">{content}</div>'


def png_img(data: bytes, alt: str) -> str:
    encoded = base64.b64encode(data).decode("ascii")
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{encoded}"/>'


def pre(text: str) -> str:
    return f"<pre>{escape(text)}</pre>"
