"""A cell as a sweep re-runs it: the literal assignments of the swept names replaced.

Only the text of each assigned literal changes (``C = 1.0`` becomes ``C = 0.031``), found
by its position in the cell's AST, so the rest of the cell, its line numbers and what
autolog reads from it stay as written: the trial's params are the cell's literals.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import ValidationError


def _literal_sites(tree: ast.AST) -> dict[str, list[ast.expr]]:
    """Name → the literal values assigned to it (``x = 1``, ``x: int = 1``)."""
    sites: dict[str, list[ast.expr]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if not isinstance(target, ast.Name):
            continue
        try:
            ast.literal_eval(value)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            continue
        sites.setdefault(target.id, []).append(value)
    return sites


def _parse(code: str) -> ast.Module:
    try:
        return ast.parse(code)
    except SyntaxError as exc:
        raise ValidationError(f"The swept cell is not valid Python (line {exc.lineno}: "
                              f"{exc.msg}); fix the cell first.") from None


def check_swept(code: str, names: Iterable[str]) -> None:
    """Refuse, in one line, a swept name the cell does not bind to a literal."""
    sites = _parse(code)
    bound = _literal_sites(sites)
    missing = [n for n in names if n not in bound]
    if missing:
        listed = ", ".join(sorted(bound)) or "none"
        raise ValidationError(
            f"The cell does not bind {', '.join(map(repr, missing))} to a literal, so a sweep "
            f"cannot set it; assign it in the cell, e.g. {missing[0]} = 1.0 (its literals: "
            f"{listed}).")


def substitute(code: str, values: Mapping[str, Any]) -> str:
    """``code`` with every literal assignment of a name in ``values`` set to its value."""
    return TrialCell(code).body(values)


# Literals whose text a trial swaps for another of these leave the rest of the cell's
# analysis as it was: each is one constant node (a negative number a minus before one).
_SCALARS = (bool, int, float, str, type(None))


def _scalar(value: Any) -> bool:
    return type(value) in _SCALARS and not (isinstance(value, float) and not math.isfinite(value))


class TrialCell:
    """A swept cell read once per sweep: its literal sites (as byte spans) and its
    analysis, so each trial only splices its values into the text."""

    def __init__(self, code: str) -> None:
        tree = _parse(code)
        sites = _literal_sites(tree)
        lines = code.splitlines(keepends=True)
        offsets = [0]
        for line in lines:
            offsets.append(offsets[-1] + len(line.encode("utf-8")))
        self.code = code
        self._data = code.encode("utf-8")
        # col offsets count bytes
        self._spans = {name: [(offsets[n.lineno - 1] + n.col_offset,
                               offsets[n.end_lineno - 1] + n.end_col_offset, n)
                              for n in nodes] for name, nodes in sites.items()}
        self._names: Any = None

    def body(self, values: Mapping[str, Any]) -> str:
        """The cell with every literal assignment of a name in ``values`` set to its value."""
        edits = []
        for name, value in values.items():
            for start, end, _ in self._spans.get(name, ()):
                edits.append((start, end, repr(value).encode("utf-8")))
        data = self._data
        for start, end, text in sorted(edits, reverse=True):
            data = data[:start] + text + data[end:]
        return data.decode("utf-8")

    def constants(self, values: Mapping[str, Any]) -> bool:
        """Whether each swept literal is a plain constant, in the cell and in ``values``."""
        return all(_scalar(v) and all(_constant(node) for _, _, node in self._spans.get(n, ()))
                   for n, v in values.items())

    def names(self, values: Mapping[str, Any], body: str | None = None):
        """What ``analyze`` finds in ``body(values)``: the cell's analysis with the swept
        literals' values, when every swept literal is a plain constant before and after
        (only those values differ); else the trial's text analysed afresh."""
        import copy

        from .cellnames import analyze

        if not self.constants(values):
            return analyze(body if body is not None else self.body(values))
        if self._names is None:
            self._names = analyze(self.code)
        names = copy.copy(self._names)
        names.literals = dict(names.literals)
        names.early_literals = dict(names.early_literals)
        for name, value in values.items():
            if name in names.literals:
                names.literals[name] = value
            if name in names.early_literals:
                names.early_literals[name] = value
        return names


def _constant(node: ast.expr) -> bool:
    """A literal that is one constant of a plain type (``-1.5`` too)."""
    if (isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd))
            and isinstance(node.operand, ast.Constant)):
        node = node.operand
    return isinstance(node, ast.Constant) and _scalar(node.value)


__all__ = ["TrialCell", "check_swept", "substitute"]
