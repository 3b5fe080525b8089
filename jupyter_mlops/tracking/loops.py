"""Loop curves: the numbers a tracked cell's loops rebind, recorded per iteration.

``for epoch in range(5): loss = train_one_epoch()`` gives the metric ``loss`` at steps 0 to
4 without a logging call. The cell's AST is rewritten before it runs (``rewrite``), and for
loops only in three ways, each placed at the line of the user's statement next to it, so
tracebacks and line numbers are the cell's own and ``break``, ``continue``, ``else`` and
``await`` are untouched:

- each top-level ``for``/``while`` loop (at module level, also inside a top-level ``if``,
  ``with`` or ``try``) starts its body with a call that closes the previous iteration;
- after each statement of the body that binds a name (``=``, ``+=``, annotated ``=``,
  ``:=``), the value is put in a dict under the name: one dict store, no call;
- after a loop nested in the body, the names that loop binds are looked up once.

At the next iteration (or when the run ends) the values put in the dict become points of
the iteration that just finished, if they are real numbers (a 0-d numpy, jax or torch array
counts; ``None`` is skipped). A name bound only inside a function or class body is not the
loop's; a loop's own target (``epoch``) is its counter, not a metric; names starting with
``_`` are private, as autolog treats them.

The recorder and its dicts reach the cell's code under names no Python source can spell
(they contain spaces and ``<``), bound in the namespace only while the cell runs.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from . import pruning, storage
from .curves import MAX_POINTS, Curve, Point
from ..validation import MAX_NAME_LENGTH

_PREFIX = "<jupyter_mlops loop "
# Iterations whose points wait in plain lists before a Curve takes them, so the work of
# thinning a long loop comes in small pieces rather than one pause every 10,000 iterations.
HAND_OVER = 1024
_now = time.time


# -- what counts as a number ---------------------------------------------------------------

_NOT_A_NUMBER = object()  # a string, a list, an array of many values...


def _dtype_kind(dtype: Any) -> str:
    kind = getattr(dtype, "kind", None)  # numpy and jax dtypes
    if isinstance(kind, str):
        return kind
    name = str(dtype).rsplit(".", 1)[-1]  # torch.float32, torch.int64, torch.bool
    if name.startswith(("float", "bfloat", "half", "double")):
        return "f"
    if name.startswith(("int", "uint", "long", "short")):
        return "i"
    return "O"


def as_number(value: Any) -> Any:
    """``value`` as a float, None for a point to skip, or ``_NOT_A_NUMBER``.

    Real numbers and 0-d numeric arrays and tensors (numpy, jax and torch, by duck typing:
    nothing is imported) are numbers; ``None`` is a point to skip; bools, strings and
    arrays of several values are not numbers.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return _NOT_A_NUMBER
    if isinstance(value, (int, float)):
        try:
            return float(value)
        except OverflowError:  # an int past float's range: no point, and no failure
            return None
    shape = getattr(value, "shape", None)
    if shape is None or isinstance(value, (str, bytes)):
        return _NOT_A_NUMBER
    try:
        if tuple(shape) != () or _dtype_kind(getattr(value, "dtype", None)) not in "iuf":
            return _NOT_A_NUMBER
        return float(value)
    except (TypeError, ValueError, OverflowError, RuntimeError):
        return _NOT_A_NUMBER


# -- one loop while it runs ------------------------------------------------------------------

class LoopCapture:
    """The points of one top-level loop. ``tick`` runs once per iteration: keep it lean."""

    __slots__ = ("line", "marks", "step", "raw", "pending", "curves", "skip", "stopped",
                 "namespace", "limit", "finished")

    def __init__(self, line: int, namespace: Mapping[str, Any], limit: int = MAX_POINTS) -> None:
        self.line = line
        self.marks: dict[str, Any] = {}  # name -> value bound in the current iteration
        self.step = -1  # the current iteration; -1 before the first
        self.raw: dict[str, list[Point]] = {}  # points not yet handed to a Curve
        self.pending = 0  # iterations whose points are in raw
        self.curves: dict[str, Curve] = {}
        self.skip: set[str] = set()  # names that held something else than a number first
        self.stopped: dict[str, tuple[int, str]] = {}  # name -> (step, type) its curve ended at
        self.namespace = namespace
        self.limit = limit
        self.finished: dict[str, list[Point]] | None = None

    def tick(self) -> None:
        """Close the iteration that just ended (its marks become points) and count one more.

        Runs once per iteration of the user's loop, so it is written for speed: one call,
        the float case in a few bytecodes, everything else in ``_point``.
        """
        marks = self.marks
        if marks:
            try:
                step, raw, now = self.step, self.raw, _now()
                for name in marks:
                    value = marks[name]
                    if type(value) is float:
                        point = (step, value, now)
                    else:
                        point = self._point(name, value, step, now)
                        if point is None:
                            continue
                    try:
                        raw[name].append(point)
                    except KeyError:
                        raw[name] = [point]
                self.pending += 1
                if self.pending >= HAND_OVER:
                    self._hand_over()
            except Exception:  # noqa: BLE001 - never the user's cell's problem
                pass
            if pruning.watcher is not None:  # a sweep's trial: may raise TrialPruned
                pruning.watcher(marks, self.step)
            marks.clear()
        self.step += 1

    def _point(self, name: str, value: Any, step: int, now: float) -> Point | None:
        """A point for anything but a float, or None (skipped, not a number, or stopped)."""
        if name in self.skip:
            return None
        try:
            number = as_number(value)
        except Exception:  # noqa: BLE001 - a value we cannot read is no metric
            number = _NOT_A_NUMBER
        if number is None:
            return None
        if number is _NOT_A_NUMBER:
            if name in self.raw or name in self.curves:
                # It was a number until now: its curve ends here (floats after it are cut
                # when the curve is read).
                self.stopped.setdefault(name, (step, type(value).__name__))
            self.skip.add(name)
            return None
        return (step, number, now)

    def _hand_over(self) -> None:
        for name, points in self.raw.items():
            if points:
                curve = self.curves.get(name)
                if curve is None:
                    curve = self.curves[name] = Curve(self.limit)
                curve.extend(points)
                points.clear()
        self.pending = 0

    def after_inner_loop(self, names: tuple[str, ...]) -> None:
        """A loop nested in the body has ended: the names it binds count for this iteration.

        They are read from the namespace once, rather than put in the dict at each inner
        iteration, so a tight inner loop runs at its own speed.
        """
        namespace, marks = self.namespace, self.marks
        for name in names:
            if name in namespace:
                marks[name] = namespace[name]

    def finish(self) -> dict[str, list[Point]]:
        """Points per name, the last iteration included; the loop has ended."""
        if self.finished is not None:
            return self.finished
        self.tick()
        self._hand_over()
        found: dict[str, list[Point]] = {}
        for name, curve in self.curves.items():
            points = curve.points()
            if name in self.stopped:
                end = self.stopped[name][0]
                points = [p for p in points if p[0] < end]
            found[name] = points
        self.finished = found
        return found

    def values_at(self, step: int) -> dict[str, float]:
        """The numbers of one iteration (those the bound on points kept)."""
        return {name: point[1] for name, points in self.finish().items()
                for point in points if point[0] == step}


class LoopRecorder:
    """The loops of one tracked cell (``rewrite`` gives it each loop), then their curves."""

    def __init__(self, namespace: Mapping[str, Any], limit: int = MAX_POINTS) -> None:
        self.namespace = namespace
        self.limit = limit
        self.loops: list[LoopCapture] = []
        self.bindings: dict[str, Any] = {}  # reserved name -> object the cell's code uses

    def new_loop(self, line: int) -> dict[str, str]:
        """A capture for the top-level loop at ``line``: the reserved names its rewritten code
        calls (``tick``, ``marks``, ``inner``), bound to it for as long as the cell runs."""
        index = len(self.loops)
        capture = LoopCapture(line, self.namespace, self.limit)
        names = {kind: f"{_PREFIX}{index} {kind}>" for kind in ("tick", "marks", "inner")}
        self.loops.append(capture)
        self.bindings.update({names["tick"]: capture.tick, names["marks"]: capture.marks,
                              names["inner"]: capture.after_inner_loop})
        return names

    # -- the run's end -------------------------------------------------------------------

    def curves(self, skip: set[str] | frozenset[str] = frozenset()
               ) -> tuple[dict[str, list[Point]], list[str]]:
        """Points per metric key, and one note per key whose curve stopped.

        A key several loops bind continues where the earlier loop's steps ended, so two
        loops never write the same step. Keys in ``skip`` (logged explicitly, or params) are
        left out.
        """
        merged: dict[str, list[Point]] = {}
        notes = []
        for capture in self.loops:
            for name, points in capture.finish().items():
                if name in skip or len(name) > MAX_NAME_LENGTH or not points:
                    continue
                earlier = merged.get(name)
                if earlier is None:
                    merged[name] = points
                else:
                    offset = earlier[-1][0] + 1
                    earlier.extend((step + offset, value, when) for step, value, when in points)
            for name, (step, kind) in capture.stopped.items():
                if name not in skip:
                    notes.append(f"{name!r} became {kind} at step {step}")
        return merged, notes

    def log(self, store: Any, run_id: str, skip: set[str] | frozenset[str] = frozenset()
            ) -> list[str]:
        """Write the curves to the run (one batch of rows); returns the notes of ``curves``.

        Keys the run already has (``log_metric`` calls in the cell) win, as in autolog.
        """
        existing = {k for (k,) in store.query(
            "SELECT key FROM latest_metrics WHERE run_id = ?", (run_id,))}
        merged, notes = self.curves(set(skip) | existing)
        storage.log_metric_points(store, run_id, ((name, value, step, when)
                                         for name, points in merged.items()
                                         for step, value, when in points))
        return notes
