"""Controls that are experiments: each run of a cell or function through them is a run.

``interact(train, C=(0.01, 10.0), kernel=["rbf", "linear"])`` gives sliders and dropdowns
over the params (``dashboards/interact.py`` draws them); every click of Run records a run
with those params, the way a sweep records a trial (a function's return value is its
metric, a cell's literals are replaced and what it binds autologged). This module holds the
runs and writes them; the widget only shows them and forwards clicks.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import ValidationError, shorten
from .sweepspace import Dimension, Space, parse_space

TAG = "interact"


@dataclass
class InteractiveRun:
    run_id: str
    params: dict[str, Any]
    status: str
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None


def _dimension(name: str, control: Any) -> Dimension:
    """``(lo, hi)`` a range (whole numbers: an integer one), a list a choice, a bool a
    checkbox, anything else a space string (``"loguniform(1e-3,1)"``)."""
    if isinstance(control, bool):
        return Dimension(name, "categorical", (False, True))
    if isinstance(control, tuple) and len(control) == 2 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in control):
        low, high = control
        kind = "int" if all(isinstance(v, int) for v in control) else "float"
        text = f"{'int' if kind == 'int' else 'uniform'}({low!r}, {high!r})"
        return parse_space({name: text})[name]
    return parse_space({name: control})[name]


class InteractiveRuns:
    """The runs made through one set of controls; ``to_widget()`` draws the controls."""

    def __init__(self, target: Callable[..., Any] | str, controls: dict[str, Any], *,
                 metric: str | None = None, experiment: str = "default",
                 name: str | None = None, namespace: dict[str, Any] | None = None) -> None:
        from .runs import new_run_id
        from .sweep import _namespace, cell_runner, function_runner
        from .sweepcell import check_swept
        from ..validation import check_name

        if not controls:
            raise ValidationError("interact needs at least one control, e.g. C=(0.01, 10.0) "
                                  "or kernel=['rbf', 'linear'].")
        self.space: Space = {n: _dimension(n, c) for n, c in controls.items()}
        check_name("Experiment name", experiment)
        if name is not None:
            check_name("Run name", name)
        self.metric, self.experiment, self.name = metric, experiment, name
        self.key = new_run_id()[:16]
        self.runs: list[InteractiveRun] = []
        if isinstance(target, str):
            check_swept(target, self.space)
            self._runner = cell_runner(target, _namespace(namespace), experiment)
            self.defaults = _cell_defaults(target, self.space)
        elif callable(target):
            self._runner = function_runner(target, metric or "value", experiment)
            self.defaults = _function_defaults(target, self.space)
        else:
            raise ValidationError(f"interact takes a function or a cell's source; got "
                                  f"{type(target).__name__}.")

    def run(self, **params: Any) -> InteractiveRun:
        """Run once with ``params`` (the controls' values) as a run; returns it."""
        from ..store.current import get_store
        from . import storage

        unknown = set(params) - set(self.space)
        if unknown:
            raise ValidationError(f"No control named {shorten(sorted(unknown)[0])}; the "
                                  f"controls are {', '.join(self.space)}.")
        values = {**self.defaults, **params}
        number = len(self.runs)
        tags = {TAG: self.key, f"{TAG}.number": str(number)}
        error: BaseException | None = None
        try:
            self._runner(number, values, f"{self.name or 'interact'}[{number}]", tags)
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # noqa: BLE001 - a failed run is kept and shown as failed
            error = exc
        store = get_store()
        found = store.query(
            "SELECT r.run_id FROM runs r JOIN tags a ON a.run_id = r.run_id AND a.key = ? "
            "JOIN tags b ON b.run_id = r.run_id AND b.key = ? WHERE a.value = ? AND "
            "b.value = ?", (TAG, f"{TAG}.number", self.key, str(number)))
        if not found:
            raise ValidationError(f"The run recorded nothing ({shorten(error)}).")
        stored = storage.get_run(store, found[0][0])
        run = InteractiveRun(stored.run_id, values, stored.status, dict(stored.metrics),
                             None if error is None else f"{type(error).__name__}: {error}")
        self.runs.append(run)
        return run

    @property
    def shown_metric(self) -> str | None:
        """The metric the chart shows: the one asked for, else the first any run has."""
        if self.metric:
            return self.metric
        for run in self.runs:
            if run.metrics:
                return sorted(run.metrics)[0]
        return None

    def frame(self):
        """The runs as a pandas DataFrame: run_id, status, params, metrics."""
        import pandas as pd

        return pd.DataFrame([{"run_id": r.run_id, "status": r.status, **r.params,
                              **r.metrics} for r in self.runs])

    def to_widget(self):
        """The ipywidgets controls, a Run button, and the runs' table and chart beside."""
        from ..dashboards.interact import interact_widget

        return interact_widget(self)

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict[str, Any]:
        from ..dashboards.interact import mimebundle

        return mimebundle(self)

    def __repr__(self) -> str:
        return (f"<InteractiveRuns over {', '.join(self.space)}: {len(self.runs)} runs in "
                f"{self.experiment!r}>")


def _start(dimension: Dimension) -> Any:
    if dimension.kind == "categorical":
        return dimension.choices[0]
    if dimension.log:
        middle = math.sqrt(dimension.low * dimension.high)
    else:
        middle = (dimension.low + dimension.high) / 2
    return round(middle) if dimension.kind == "int" else middle


def _within(dimension: Dimension, value: Any) -> Any:
    return value if dimension.contains(value) else _start(dimension)


def _cell_defaults(code: str, space: Space) -> dict[str, Any]:
    """The cell's own literals, where they fall in the controls' ranges."""
    import ast

    found: dict[str, Any] = {}
    for node in ast.walk(ast.parse(code)):
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name) and node.targets[0].id in space):
            try:
                found[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    return {n: _within(d, found[n]) if n in found else _start(d) for n, d in space.items()}


def _function_defaults(function: Callable[..., Any], space: Space) -> dict[str, Any]:
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        parameters = {}
    defaults = {}
    for name, dimension in space.items():
        parameter = parameters.get(name)
        given = None if parameter is None else parameter.default
        defaults[name] = (_start(dimension) if given in (None, inspect.Parameter.empty)
                          else _within(dimension, given))
    return defaults


def interact(target: Callable[..., Any] | str, *, metric: str | None = None,
             experiment: str = "default", name: str | None = None,
             namespace: dict[str, Any] | None = None, **controls: Any) -> InteractiveRuns:
    """Controls over a function's params or a cell's literals; each Run click is a run.

    A control is ``(lo, hi)`` (a slider; whole numbers give an integer one), a list (a
    dropdown), a bool (a checkbox) or a space string such as ``"loguniform(1e-3, 1e2)"``
    (a log slider). Displayed, it shows the controls with a live table and chart of the runs
    made through them; where widgets cannot show (nbconvert, nbval) a static summary.

    Examples
    --------
    >>> def train(C, kernel):                                            # doctest: +SKIP
    ...     return SVC(C=C, kernel=kernel).fit(Xtr, ytr).score(Xte, yte)
    >>> panel = interact(train, C=(0.01, 10.0), kernel=["rbf", "linear"], metric="acc")
    >>> panel.run(C=1.0, kernel="rbf").metrics                          # doctest: +SKIP
    """
    return InteractiveRuns(target, controls, metric=metric, experiment=experiment, name=name,
                           namespace=namespace)


__all__ = ["InteractiveRun", "InteractiveRuns", "interact"]
