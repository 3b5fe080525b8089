"""The tables the public API returns: pandas DataFrames whose notebook view is never math.

JupyterLab typesets ``$...$`` in HTML outputs, so a run named ``cost $x^2$`` in a plain
DataFrame's view shows as italic math. ``TextFrame`` is a DataFrame in every respect
(derived frames stay one) whose HTML sits inside the classes MathJax skips, without
touching the user's pandas options. It lives here rather than in ``dashboards/`` because
the core builds these tables and never imports rendering; only its view asks
``dashboards.html`` for the classes, as every other result object's view does.

A pickle of a ``TextFrame`` is a plain DataFrame: a saved table loads wherever pandas does.
"""

from __future__ import annotations

import html
import io
from typing import Any

import pandas as pd

__all__ = ["TextFrame"]


class TextFrame(pd.DataFrame):
    """A DataFrame whose notebook view shows every name and value as the text it is.

    Examples
    --------
    >>> TextFrame({"name": ["cost $x^2$"]})._repr_html_().startswith("<div class=")
    True
    """

    @property
    def _constructor(self):
        return TextFrame

    def __reduce_ex__(self, protocol: Any):
        return pd.DataFrame, (pd.DataFrame(self),)

    def _repr_html_(self) -> str | None:
        from .dashboards.html import NO_MATH

        if self._info_repr():
            # pandas escapes only the first line of its info view; column names follow it.
            buffer = io.StringIO()
            self.info(buf=buffer)
            view: str | None = f"<pre>{html.escape(buffer.getvalue())}</pre>"
        else:
            view = super()._repr_html_()
        return None if view is None else f'<div class="{NO_MATH}">{view}</div>'
