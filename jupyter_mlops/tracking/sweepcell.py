"""A cell as a sweep re-runs it: the literal assignments of the swept names replaced.

Only the text of each assigned literal changes (``C = 1.0`` becomes ``C = 0.031``), found
by its position in the cell's AST, so the rest of the cell, its line numbers and what
autolog reads from it stay as written: the trial's params are the cell's literals.
"""

from __future__ import annotations

import ast
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
    sites = _literal_sites(_parse(code))
    lines = code.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line.encode("utf-8")))
    data = code.encode("utf-8")
    edits = []
    for name, value in values.items():
        for node in sites.get(name, ()):
            start = offsets[node.lineno - 1] + node.col_offset  # col offsets count bytes
            end = offsets[node.end_lineno - 1] + node.end_col_offset
            edits.append((start, end, repr(value).encode("utf-8")))
    for start, end, text in sorted(edits, reverse=True):
        data = data[:start] + text + data[end:]
    return data.decode("utf-8")


__all__ = ["check_swept", "substitute"]
