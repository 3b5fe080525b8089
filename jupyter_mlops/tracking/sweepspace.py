"""The search space of a sweep, as a ``%%sweep`` line declares it.

``C=loguniform(1e-3,1e2) max_depth=[3,5,8] alpha=uniform(0,1) n=int(1,10)``: a list or tuple
of literals is a categorical choice (and a grid axis), ``uniform``/``loguniform`` a float
range, ``int``/``randint``/``logint`` an integer range, both ends included. Each item is read
with ``ast`` (never ``eval``), so a mistake is refused with one line before any trial runs.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ValidationError, shorten

MAX_CHOICES = 1_000
_RANGES = {
    "uniform": ("float", False),
    "loguniform": ("float", True),
    "int": ("int", False),
    "randint": ("int", False),
    "logint": ("int", True),
}
_HELP = ("write NAME=[v1,v2,...], NAME=uniform(lo,hi), NAME=loguniform(lo,hi) or "
         "NAME=int(lo,hi)")


@dataclass(frozen=True)
class Dimension:
    """One swept name: a categorical list of values, or a float or integer range."""

    name: str
    kind: str  # "categorical", "float" or "int"
    choices: tuple[Any, ...] = ()
    low: float = 0.0
    high: float = 0.0
    log: bool = False

    def describe(self) -> str:
        """The dimension as it was written, normalised: stored as the parent's param."""
        if self.kind == "categorical":
            return repr(list(self.choices))
        function = {("float", False): "uniform", ("float", True): "loguniform",
                    ("int", False): "int", ("int", True): "logint"}[(self.kind, self.log)]
        return f"{function}({self.low!r}, {self.high!r})"

    def distribution(self) -> Any:
        """The Optuna distribution of this dimension."""
        from optuna.distributions import (CategoricalDistribution, FloatDistribution,
                                          IntDistribution)

        if self.kind == "categorical":
            return CategoricalDistribution(list(self.choices))
        if self.kind == "int":
            return IntDistribution(int(self.low), int(self.high), log=self.log)
        return FloatDistribution(float(self.low), float(self.high), log=self.log)

    def contains(self, value: Any) -> bool:
        if self.kind == "categorical":
            return any(value == c and type(value) is type(c) for c in self.choices)
        return isinstance(value, (int, float)) and self.low <= value <= self.high


Space = dict[str, Dimension]


def _literal(node: ast.AST, what: str) -> Any:
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise ValidationError(f"{what} must be a literal value; got "
                              f"{shorten(ast.unparse(node))}.") from None


def parse_dimension(name: str, text: str) -> Dimension:
    """One ``NAME=SPACE`` item's space; a mistake raises ValidationError with one line."""
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        raise ValidationError(f"Sweep space {name}={shorten(text)} is not valid Python; "
                              f"{_HELP}.") from None
    if isinstance(node, (ast.List, ast.Tuple)):
        choices = tuple(_literal(element, f"Each value of {name}") for element in node.elts)
        if not choices:
            raise ValidationError(f"Sweep space {name}=[] is empty: give it at least one value.")
        if len(choices) > MAX_CHOICES:
            raise ValidationError(f"Sweep space {name} has {len(choices):,} values; at most "
                                  f"{MAX_CHOICES:,}: use a range such as int(lo,hi) instead.")
        if len(set(map(repr, choices))) != len(choices):
            raise ValidationError(f"Sweep space {name}={shorten(text)} repeats a value; "
                                  "give each value once.")
        return Dimension(name, "categorical", choices)
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id in _RANGES and not node.keywords):
        kind, log = _RANGES[node.func.id]
        if len(node.args) != 2:
            raise ValidationError(f"Sweep space {name}={shorten(text)}: {node.func.id} takes "
                                  "two numbers, the lowest and the highest value.")
        low, high = (_literal(a, f"The bounds of {name}") for a in node.args)
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)):
            raise ValidationError(f"Sweep space {name}={shorten(text)}: its bounds must be "
                                  "numbers.")
        if kind == "int" and not all(float(v).is_integer() for v in (low, high)):
            raise ValidationError(f"Sweep space {name}={shorten(text)}: {node.func.id} takes "
                                  "whole numbers; use uniform(lo,hi) for a float range.")
        if not low < high:
            raise ValidationError(f"Sweep space {name}={shorten(text)}: the lowest value must "
                                  "be below the highest.")
        if log and low <= 0:
            raise ValidationError(f"Sweep space {name}={shorten(text)}: a log range needs a "
                                  "lowest value above 0.")
        if kind == "int":
            low, high = int(low), int(high)
        return Dimension(name, kind, (), low, high, log)
    raise ValidationError(f"Sweep space {name}={shorten(text)} is not understood; {_HELP}.")


def parse_space(items: Iterable[str] | Mapping[str, Any]) -> Space:
    """``["C=loguniform(1e-3,1e2)", "depth=[3,5]"]`` (or ``{"C": "loguniform(...)",
    "depth": [3, 5]}``) → the space; refuses an empty one."""
    from ..validation import check_name

    pairs: list[tuple[str, Any]] = []
    if isinstance(items, Mapping):
        pairs = list(items.items())
    else:
        for item in items:
            name, sep, text = item.partition("=")
            if not sep or not name.strip().isidentifier():
                raise ValidationError(f"Sweep space {shorten(item)} is not NAME=SPACE; "
                                      f"{_HELP}.")
            pairs.append((name.strip(), text))
    if not pairs:
        raise ValidationError("The sweep space is empty: name at least one variable of the "
                              "cell, e.g. C=loguniform(1e-3,1e2) max_depth=[3,5,8].")
    space: Space = {}
    for name, value in pairs:
        check_name("Swept name", name)
        if name in space:
            raise ValidationError(f"Sweep space names {name!r} twice; give it once.")
        if isinstance(value, Dimension):
            space[name] = value
        elif isinstance(value, str):
            space[name] = parse_dimension(name, value)
        elif isinstance(value, (list, tuple)):
            space[name] = parse_dimension(name, repr(list(value)))
        else:
            raise ValidationError(f"Sweep space {name}={shorten(value)}: give a list of "
                                  "values or a string such as 'loguniform(1e-3,1e2)'.")
    return space


def grid_size(space: Space) -> int | None:
    """How many points the grid of ``space`` has; None when a range makes it infinite."""
    size = 1
    for dimension in space.values():
        if dimension.kind != "categorical":
            return None
        size *= len(dimension.choices)
    return size


def grid_points(space: Space) -> Iterator[dict[str, Any]]:
    """Every point of the grid, in the order the space lists its values."""
    names = list(space)
    for values in itertools.product(*(space[n].choices for n in names)):
        yield dict(zip(names, values))


def split_line(line: str) -> list[str]:
    """Split a magic line on blanks outside brackets and quotes, so ``depth=[3, 5, 8]`` and
    ``kernel=["rbf", "linear"]`` stay one item each; quotes are kept for ``ast``."""
    items, current, depth, quote = [], [], 0, ""
    for char in line:
        if quote:
            current.append(char)
            if char == quote:
                quote = ""
            continue
        if char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char.isspace() and depth <= 0:
            if current:
                items.append("".join(current))
                current = []
            continue
        current.append(char)
    if current:
        items.append("".join(current))
    return items


__all__ = ["Dimension", "Space", "grid_points", "grid_size", "parse_dimension", "parse_space",
           "split_line"]
