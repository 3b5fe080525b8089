"""A metric history kept in memory while a loop runs, bounded in size.

A loop of a million iterations must not keep a million points per name, nor write them.
``Curve`` keeps at most ``MAX_POINTS`` per key: evenly spaced points (every point until the
bound is reached, then every second, every fourth, … so the spacing stays even over the
whole run), plus the first, the last, the smallest and the largest value, which a reader of
a training curve looks for and even spacing could drop.

Examples
--------
>>> curve = Curve(limit=8)
>>> curve.extend([(step, float(step % 5)) for step in range(100)])
>>> [step for step, _ in curve.points()]
[0, 4, 32, 64, 96, 99]
"""

from __future__ import annotations

from operator import itemgetter

MAX_POINTS = 10_000

Point = tuple  # (step, value, timestamp): what a loop records at each iteration

_value = itemgetter(1)


class Curve:
    """Points ``(step, value, ...)`` of one key, in step order, at most ``limit`` of them."""

    __slots__ = ("limit", "kept", "stride", "offered", "low", "high", "last")

    def __init__(self, limit: int = MAX_POINTS) -> None:
        if limit < 4:
            raise ValueError("a curve keeps at least 4 points: first, last, min and max")
        self.limit = limit
        self.kept: list[Point] = []  # the points whose index is a multiple of stride
        self.stride = 1
        self.offered = 0  # points offered so far; the index of the next one
        self.low: Point | None = None
        self.high: Point | None = None
        self.last: Point | None = None

    def extend(self, points: list[Point]) -> None:
        """Add points in step order (the loop appends them to a plain list, then hands the
        list over here in chunks, so the loop itself pays for one ``append`` a point)."""
        if not points:
            return
        if self.stride == 1:  # nothing thinned yet: keep all, look at min and max later
            self.kept.extend(points)
            sample = self.kept if len(self.kept) > self.limit else None
        else:
            self.kept.extend(points[(-self.offered) % self.stride::self.stride])
            sample = points
        self.offered += len(points)
        self.last = points[-1]
        if sample is None:
            return
        values = list(map(_value, sample))
        finite = [v for v in values if v == v]  # NaN is neither smallest nor largest
        if finite:
            low, high = min(finite), max(finite)
            if self.low is None or low < self.low[1]:
                self.low = sample[values.index(low)]
            if self.high is None or high > self.high[1]:
                self.high = sample[values.index(high)]
        # Three places stay free for the last, smallest and largest points.
        while len(self.kept) > self.limit - 3:
            self.kept = self.kept[::2]
            self.stride *= 2

    def points(self) -> list[Point]:
        """The kept points in step order, first, last, min and max among them."""
        if self.stride == 1:
            return list(self.kept)  # nothing was thinned: every point is there
        chosen = {point[0]: point for point in self.kept}
        for point in (self.last, self.low, self.high):
            if point is not None:
                chosen[point[0]] = point
        return [chosen[step] for step in sorted(chosen)]

    def __len__(self) -> int:
        return self.offered
