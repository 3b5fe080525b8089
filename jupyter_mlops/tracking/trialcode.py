"""A sweep's cell compiled once: every trial runs the same code with its own values.

A tracked cell is parsed, rewritten (so its loops and fits record themselves, see
``rewrite``) and compiled before it runs; for a sweep's trials only the swept literals
differ, so that work is done once per sweep. The rewritten cell reads each swept literal
from a reserved name bound to the trial's values while it runs; the rest of the code,
its line numbers and what the recorders are told are those of the trial's own text. A
trial's loop and fit recorders are given what the rewrite gave the first trial's: its
loops by line, what each fit statement reads.

Only when every swept literal is a plain constant (a number, a string, True, False or
None) in the cell and in the trial, outside any function the cell defines (which may run
after the trial): anything else is compiled from the trial's text.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .rewrite import instrument
from .sweepcell import TrialCell

VALUES = "<jupyter_mlops sweep values>"
FILENAME = "<%%track>"


@dataclass(frozen=True)
class Prepared:
    """What a trial runs: the cell's statements, its last expression (whose value is the
    cell's), and the names they read that the namespace must hold meanwhile."""

    body: Any
    last: Any
    bindings: dict[str, Any]


class TrialCode:
    """The code of a sweep's trials, compiled by the first one that can use it."""

    def __init__(self, cell: TrialCell) -> None:
        self.cell = cell
        self._compiled: dict[tuple[bool, bool], tuple[Any, Any, list[int], Any] | None] = {}

    def prepare(self, values: Mapping[str, Any], loops: Any, fits: Any) -> Prepared | None:
        """The trial's code, with ``loops`` and ``fits`` (its recorders, or None) told what
        the rewrite tells them; None when the trial's text must be compiled instead."""
        if not self.cell.constants(values):
            return None
        key = (loops is not None, fits is not None)
        if key in self._compiled and self._compiled[key] is None:
            return None  # this cell is compiled from each trial's text
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self._compiled[key] = self._compile(values, loops, fits)
            if compiled is None:
                return None
        else:
            body, last, lines, fit_state = compiled
            for line in lines:
                loops.new_loop(line)
            if fits is not None:
                data, depends = fit_state
                fits.data.update(data)
                fits.depends.update({k: set(v) for k, v in depends.items()})
        body, last, _, _ = compiled
        return Prepared(body, last, {VALUES: dict(values)})

    def _compile(self, values: Mapping[str, Any], loops: Any, fits: Any):
        tree = ast.parse(self.cell.code, filename=FILENAME)
        found = _sites(tree, values)
        if found is None:
            return None
        sites = {id(node): name for name, nodes in found.items() for node in nodes}
        told = _told(loops, fits)
        if loops is not None:
            tree = instrument(tree, loops, fits)
        # After the rewrite, which saw the literals as written: each becomes a lookup.
        replaced = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Assign, ast.AnnAssign)) and id(node.value) in sites:
                replaced.add(id(node.value))
                node.value = ast.copy_location(ast.Subscript(
                    value=ast.Name(id=VALUES, ctx=ast.Load()),
                    slice=ast.Constant(value=sites[id(node.value)]), ctx=ast.Load()),
                    node.value)
        if replaced != set(sites):  # the rewrite moved a literal: run the trial's own text
            _untell(loops, fits, told)
            return None
        ast.fix_missing_locations(tree)
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        body = compile(tree, FILENAME, "exec")
        last_code = None if last is None else compile(
            ast.Expression(last.value), FILENAME, "eval")
        lines = [capture.line for capture in loops.loops] if loops is not None else []
        fit_state = None if fits is None else (
            dict(fits.data), {k: set(v) for k, v in fits.depends.items()})
        return body, last_code, lines, fit_state


def _sites(tree: ast.Module, values: Mapping[str, Any]) -> dict[str, list[ast.expr]] | None:
    """The swept literals' nodes; None when one is inside a function, which may run after
    the trial, when the trial's values are no longer bound."""
    from .sweepcell import _literal_sites

    sites = {name: nodes for name, nodes in _literal_sites(tree).items() if name in values}
    deferred = {id(node) for scope in ast.walk(tree) if isinstance(scope, _DEFERRED)
                for node in ast.walk(scope)}
    if any(id(node) in deferred for nodes in sites.values() for node in nodes):
        return None
    return sites


_DEFERRED = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)


def _told(loops: Any, fits: Any) -> tuple:
    """What the recorders knew before the rewrite, to take back what it told them."""
    return (None if loops is None else (len(loops.loops), dict(loops.bindings)),
            None if fits is None else (dict(fits.data), dict(fits.depends)))


def _untell(loops: Any, fits: Any, told: tuple) -> None:
    if loops is not None:
        count, bindings = told[0]
        del loops.loops[count:]
        loops.bindings.clear()
        loops.bindings.update(bindings)
    if fits is not None:
        data, depends = told[1]
        fits.data.clear()
        fits.data.update(data)
        fits.depends.clear()
        fits.depends.update(depends)


__all__ = ["Prepared", "TrialCode", "VALUES"]
