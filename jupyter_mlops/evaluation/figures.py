"""The figures of an evaluation: drawn on demand by the dashboards, cached and kept here."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any


class FigureSet(Mapping):
    """Figure name → matplotlib Figure of one evaluation, each drawn when first asked for.

    The result owns this cache: a PNG drawn once is kept with the evaluation in the store
    (``EvaluationResult.keep_figure``), and read back instead of drawn again."""

    def __init__(self, result) -> None:
        from ..dashboards.evaluation import drawers

        self._result = result
        self._drawers = drawers(result)
        self._figures: dict[str, Any] = {}
        self._png: dict[str, bytes] = {}

    def __getitem__(self, name: str):
        if name not in self._drawers:
            raise KeyError(f"No figure {name!r}; this evaluation has {sorted(self._drawers)}.")
        if name not in self._figures:
            self._figures[name] = self._drawers[name]().figure
        return self._figures[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._drawers)

    def __len__(self) -> int:
        return len(self._drawers)

    @property
    def drawn(self) -> list[str]:
        """The figures drawn so far."""
        return list(self._figures)

    def png(self, name: str) -> bytes:
        """The figure as PNG; a PNG kept in the store is used instead of drawing again."""
        if name in self._png:
            return self._png[name]
        data = None
        digest = self._result.stored_figures.get(name)
        store = self._result._store
        if digest and name not in self._figures and store is not None:
            try:
                data = store.artifacts.read_verified(digest)
            except Exception:  # noqa: BLE001 - a missing or changed file: draw it again
                data = None
        if data is None:
            from ..dashboards.png import figure_png

            data = figure_png(self[name])
            self._result.keep_figure(name, data)
        self._png[name] = data
        return data

    def __repr__(self) -> str:
        return f"<FigureSet {list(self._drawers)}, drawn: {self.drawn}>"
