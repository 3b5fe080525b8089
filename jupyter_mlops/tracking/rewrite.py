"""How a tracked cell's AST is rewritten so its loops and fits record themselves.

Two things are added, and nothing else changes. Every added statement carries the line of
the user's statement beside it, and no user statement moves, so tracebacks, line numbers,
``break``/``continue``/``else`` and top-level ``await`` are the cell's own:

- in a top-level loop (see ``loops``): a call opening each iteration, a dict store after
  each statement that binds a name, a lookup after a nested loop;
- around a statement that calls ``fit``, ``fit_transform``, ``fit_predict`` or ``train``
  outside a function (see ``fits``): a call before it, which notes the time, and one after
  it, which looks the names it fitted or bound up in the namespace.

A part of the cell that cannot be rewritten is left as written.
"""

from __future__ import annotations

import ast
import copy
from collections.abc import Iterator
from typing import Any

from .cellnames import PARAM_CALLS

# A fit is a whole training; partial_fit is one step of a longer one, not a fit of its own.
FIT_CALLS = PARAM_CALLS - {"partial_fit"}

LOOPS = (ast.For, ast.AsyncFor, ast.While)
SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)


def instrument(tree: ast.Module, loops: Any, fits: Any = None) -> ast.Module:
    """Rewrite ``tree`` in place: ``loops`` (a ``LoopRecorder``) gets each top-level loop,
    ``fits`` (a ``FitRecorder``) each fit statement; their ``bindings`` hold the objects
    the new code calls."""
    if fits is not None:
        fits.read(tree)
    tree.body = _Rewriter(loops, fits).block(tree.body, None)
    return tree


class _Loop:
    """The top-level loop a statement is in, and whether its numbers are marked there
    (not inside a nested loop, which only reports once it ends)."""

    def __init__(self, index: int, names: dict[str, str], counters: set[str],
                 numbers: bool = True) -> None:
        self.index, self.names, self.counters, self.numbers = index, names, counters, numbers

    def nested(self) -> _Loop:
        return _Loop(self.index, self.names, self.counters, numbers=False)


class _Rewriter:
    def __init__(self, loops: Any, fits: Any) -> None:
        self.loops = loops
        self.fits = fits

    def block(self, statements: list[ast.stmt], loop: _Loop | None) -> list[ast.stmt]:
        result: list[ast.stmt] = []
        for statement in statements:
            if isinstance(statement, SCOPES):
                result.append(statement)
            elif isinstance(statement, LOOPS):
                result.extend(self.loop(statement, loop))
            elif isinstance(statement, ast.If):
                copied = copy.copy(statement)
                head = _walrus_names(statement.test)
                copied.body = self.marks(head, loop, statement.body[0]) + self.block(
                    statement.body, loop)
                copied.orelse = self.block(statement.orelse, loop)
                if head and loop is not None and loop.numbers:
                    copied.orelse = self.marks(head, loop, statement) + copied.orelse
                result.append(copied)
            elif isinstance(statement, (ast.With, ast.AsyncWith)):
                copied = copy.copy(statement)
                head = [n for item in statement.items for n in _walrus_names(item.context_expr)]
                copied.body = self.marks(head, loop, statement.body[0]) + self.block(
                    statement.body, loop)
                result.append(copied)
            elif any(True for _ in _child_blocks(statement)):  # try, match
                result.append(self._copy_blocks(statement, loop))
            else:
                fitted = self.fitted_names(statement)
                if fitted:
                    result.append(_at(_call(self.fits.BEGIN, []), statement))
                result.append(statement)
                if fitted:
                    result.append(_at(_call(self.fits.HOOK, [
                        ast.Tuple([ast.Constant(n) for n in fitted], ast.Load()),
                        ast.Constant(statement.lineno),
                        ast.Constant(loop.index if loop is not None else None)]), statement))
                result.extend(self.marks(_bound_names(statement), loop, statement))
        return result

    def loop(self, statement: ast.stmt, outer: _Loop | None) -> list[ast.stmt]:
        if outer is not None:  # nested: fits are hooked, numbers reported once it ends
            copied = self._copy_blocks(statement, outer.nested())
            names = outer.counters | set(_targets(getattr(statement, "target", None)))
            inner = _wanted(_names_in(statement), names) if outer.numbers else []
            if not inner:
                return [copied]
            call = _call(outer.names["inner"],
                         [ast.Tuple([ast.Constant(n) for n in inner], ast.Load())])
            return [copied, _at(call, statement)]
        try:
            names = self.loops.new_loop(statement.lineno)
            counters = (set() if isinstance(statement, ast.While)
                        else set(_targets(statement.target)))
            loop = _Loop(len(self.loops.loops) - 1, names, counters)
            first = statement.body[0]
            copied = copy.copy(statement)
            head = (_walrus_names(statement.test) if isinstance(statement, ast.While) else [])
            copied.body = [_at(_call(names["tick"], []), first),
                           *self.marks(head, loop, first), *self.block(statement.body, loop)]
            copied.orelse = self.block(statement.orelse, None)
            return [copied]
        except Exception:  # noqa: BLE001 - that loop runs as written
            return [statement]

    def marks(self, names: list[str], loop: _Loop | None, where: ast.AST) -> list[ast.stmt]:
        """``<marks>['loss'] = loss`` for each wanted name, in a loop's own body."""
        if loop is None or not loop.numbers:
            return []
        target = loop.names["marks"]
        return [_at(ast.Assign([ast.Subscript(_load(target), ast.Constant(name), ast.Store())],
                               _load(name)), where)
                for name in _wanted(names, loop.counters)]

    def fitted_names(self, statement: ast.stmt) -> list[str]:
        """Names a statement fits (``model.fit(...)``) or binds to a fit's result."""
        if self.fits is None:
            return []
        found: list[str] = []
        for node in _walk(statement):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in FIT_CALLS):
                if isinstance(node.func.value, ast.Name):
                    found.append(node.func.value.id)
                if isinstance(statement, (ast.Assign, ast.AnnAssign)):
                    targets = getattr(statement, "targets", None) or [statement.target]
                    found.extend(n for t in targets for n in _targets(t))
        return list(dict.fromkeys(found))

    def _copy_blocks(self, statement: ast.stmt, loop: _Loop | None) -> ast.stmt:
        copied = copy.copy(statement)
        for attr in ("body", "orelse", "finalbody"):
            block = getattr(statement, attr, None)
            if isinstance(block, list):
                setattr(copied, attr, self.block(block, loop))
        for attr in ("handlers", "cases"):  # except clauses; match cases
            parts = []
            for part in getattr(statement, attr, None) or []:
                part = copy.copy(part)
                part.body = self.block(part.body, loop)
                parts.append(part)
            if parts:
                setattr(copied, attr, parts)
        return copied


def _wanted(names: list[str], counters: set[str]) -> list[str]:
    return list(dict.fromkeys(n for n in names if not n.startswith("_") and n not in counters))


def _walk(node: ast.AST) -> Iterator[ast.AST]:
    """Every node of ``node`` but those inside functions, lambdas and classes."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(child for child in ast.iter_child_nodes(current)
                     if not isinstance(child, SCOPES))


def _child_blocks(statement: ast.stmt) -> Iterator[list[ast.stmt]]:
    for attr in ("body", "orelse", "finalbody"):
        block = getattr(statement, attr, None)
        if isinstance(block, list):
            yield block
    for handler in getattr(statement, "handlers", None) or []:
        yield handler.body
    for case in getattr(statement, "cases", None) or []:
        yield case.body


def _targets(node: ast.AST | None) -> Iterator[str]:
    """Names bound by an assignment target (not attributes or items of other objects)."""
    if isinstance(node, ast.Name):
        yield node.id
    elif isinstance(node, (ast.Tuple, ast.List)):
        for element in node.elts:
            yield from _targets(element)
    elif isinstance(node, ast.Starred):
        yield from _targets(node.value)


def _walrus_names(node: ast.AST | None) -> list[str]:
    """Names ``:=`` binds in an expression (a lambda's own are its own)."""
    if node is None:
        return []
    return [n.target.id for n in _walk(node)
            if isinstance(n, ast.NamedExpr) and isinstance(n.target, ast.Name)]


def _bound_names(statement: ast.stmt) -> list[str]:
    """Names a simple statement binds."""
    if isinstance(statement, ast.Assign):
        names = [n for target in statement.targets for n in _targets(target)]
    elif isinstance(statement, ast.AugAssign):
        names = list(_targets(statement.target))
    elif isinstance(statement, ast.AnnAssign):
        names = list(_targets(statement.target)) if statement.value is not None else []
    else:
        names = []
    return names + _walrus_names(statement)


def _names_in(loop: ast.stmt) -> list[str]:
    """Names a nested loop binds, its own counters left out."""
    found: list[str] = []
    counters: set[str] = set()

    def visit(statements: list[ast.stmt]) -> None:
        for statement in statements:
            if isinstance(statement, SCOPES):
                continue
            if isinstance(statement, (ast.For, ast.AsyncFor)):
                counters.update(_targets(statement.target))
            if isinstance(statement, LOOPS) or isinstance(statement, ast.If):
                found.extend(_walrus_names(getattr(statement, "test", None)))
            elif isinstance(statement, (ast.With, ast.AsyncWith)):
                for item in statement.items:
                    found.extend(_walrus_names(item.context_expr))
            elif not any(True for _ in _child_blocks(statement)):
                found.extend(_bound_names(statement))
            for child in _child_blocks(statement):
                visit(child)

    visit([loop])
    return [n for n in found if n not in counters]


def _load(name: str) -> ast.Name:
    return ast.Name(name, ast.Load())


def _call(name: str, args: list[ast.expr]) -> ast.stmt:
    return ast.Expr(ast.Call(_load(name), args, []))


def _at(node: ast.stmt, where: ast.AST) -> ast.stmt:
    """``node`` placed at the line of ``where``, with every child node too."""
    for child in ast.walk(node):
        ast.copy_location(child, where)
    return node
