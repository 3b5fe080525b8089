"""Listings: real pandas DataFrames (assign them, filter them) that render as our HTML."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Callable


@lru_cache(maxsize=1)
def _listing_class():
    from ..frames import TextFrame

    class Listing(TextFrame):
        _metadata = ["_render"]

        @property
        def _constructor(self):
            # Anything derived from a listing is the API's table again, never math.
            return TextFrame

        def _repr_html_(self) -> str:
            render = getattr(self, "_render", None)
            return render(self) if render else super()._repr_html_()

    return Listing


def listing(frame, render: Callable[[Any], str]):
    """``frame`` as a DataFrame whose notebook display is ``render(frame)``."""
    result = _listing_class()(frame)
    object.__setattr__(result, "_render", render)
    return result
