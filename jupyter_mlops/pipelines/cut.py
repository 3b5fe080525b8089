"""How a model's replay slice becomes the steps of a pipeline.

The rule, applied to the executions the replay keeps (``registry/script``), in the order they
ran:

- **Parameters.** A name a kept execution binds to a literal once, at its top level (the
  literals ``%%sweep`` and ``run_notebook`` can set), and that no other kept execution
  binds, is a parameter: its assignment leaves the code and its value is the default.
- **Imports** at an execution's top level are put at the head of every step that uses the
  names they bind.
- **Steps.** Every other execution is one step, named after the first value it passes on.
  An execution left with nothing but imports and parameters is not a step. Nothing is
  merged: a step is a cell execution that really ran, so its cache entry and its failure
  point at one cell.
- **Edges** come from def-use: a step reads a name from the latest earlier step that bound
  it or changed it in place (``model.fit(X, y)`` passes ``model`` on), and passes on the
  names a later step, or the model, reads.
- **Sources.** A string in a step that names a file in the notebook's folder is a data
  source of that step; its sha256 is part of the step's cache key.
"""

from __future__ import annotations

import ast
import keyword
import os
import re
from dataclasses import dataclass, field
from typing import Any

from ..entities import CellExecution
from ..tracking.cellnames import analyze

_UNSAFE = re.compile(r"[^A-Za-z0-9_]+")


@dataclass
class Step:
    module: str
    label: str
    code: str
    imports: list[str]
    inputs: list[str] = field(default_factory=list)
    params: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    execution: int | None = None
    defined: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    used: set[str] = field(default_factory=set)


def parameter_type(value: Any) -> str:
    """The type a parameter keeps: ``-p C=1`` is the float 1.0 when ``C = 0.5`` was written."""
    return "none" if value is None else type(value).__name__


def _lines(node: ast.stmt) -> range:
    return range(node.lineno, (node.end_lineno or node.lineno) + 1)


def _statements(code: str) -> ast.Module | None:
    try:
        return ast.parse(code)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None


def _without(code: str, tree: ast.Module, removed: list[ast.stmt]) -> str:
    """``code`` without the lines of the ``removed`` top-level statements (each alone on
    its lines: a statement sharing a line with another is kept)."""
    gone = {line for node in removed for line in _lines(node)}
    lines = code.split("\n")
    return "\n".join(line for i, line in enumerate(lines, 1) if i not in gone)


def _alone(node: ast.stmt, tree: ast.Module) -> bool:
    return not any(other is not node and set(_lines(other)) & set(_lines(node))
                   for other in tree.body)


def _names_in(tree: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}


def _bound_by_import(node: ast.stmt) -> list[str]:
    return [(a.asname or a.name).split(".")[0] for a in node.names  # type: ignore[attr-defined]
            if a.name != "*"]


def cut(executions: list[CellExecution], parts: list[str], code_of: Any,
        workdir: str | None) -> tuple[list[Step], dict[str, Any]]:
    """The steps and the parameters (name → default) of the kept ``executions``;
    ``code_of(execution)`` is its replayed Python, ``parts`` the names the model is read from."""
    prepared = []
    binders: dict[str, int] = {}
    for execution in executions:
        code = code_of(execution)
        tree = _statements(code)
        names = analyze(code)
        for name in set(names.defined):
            binders[name] = binders.get(name, 0) + 1
        prepared.append((execution, code, tree, names))
    parameters: dict[str, Any] = {}
    imports: list[tuple[str, list[str]]] = []
    steps: list[Step] = []
    for execution, code, tree, names in prepared:
        removed: list[ast.stmt] = []
        mine: list[str] = []
        for node in tree.body if tree is not None else ():
            if isinstance(node, (ast.Import, ast.ImportFrom)) and _alone(node, tree) \
                    and not (isinstance(node, ast.ImportFrom) and node.module == "__future__"):
                removed.append(node)
                text = ast.get_source_segment(code, node) or ast.unparse(node)
                if all(text != t for t, _ in imports):
                    imports.append((text, _bound_by_import(node) or ["*"]))
                continue
            target = node.targets[0] if isinstance(node, ast.Assign) and len(
                node.targets) == 1 else getattr(node, "target", None) if isinstance(
                node, ast.AnnAssign) else None
            if isinstance(target, ast.Name) and target.id in names.early_literals \
                    and binders.get(target.id) == 1 and target.id not in parts \
                    and _alone(node, tree) and not keyword.iskeyword(target.id):
                removed.append(node)
                parameters[target.id] = names.early_literals[target.id]
                mine.append(target.id)
        body = _without(code, tree, removed) if tree is not None else code
        rest = _statements(body)
        if rest is not None and not rest.body:
            continue  # only imports and parameters: nothing left to run
        left = analyze(body)
        count = execution.execution_count
        label = (f"In[{count}]" if count else "In[?]") + (
            f", cell {execution.cell_id}" if execution.cell_id else "")
        steps.append(Step("", label, body.strip("\n"), [], execution=execution.id,
                          defined=list(left.defined),
                          changed=list(dict.fromkeys([*left.changed, *execution.modified])),
                          used=_names_in(rest) if rest is not None else set(left.used)))
        steps[-1].params = [p for p in mine]  # its own; others are found below
    _wire(steps, parameters, imports, parts, workdir)
    return steps, parameters


def _wire(steps: list[Step], parameters: dict[str, Any], imports: list[tuple[str, list[str]]],
          parts: list[str], workdir: str | None) -> None:
    """Inputs, outputs, parameters, imports, sources and module names of the steps."""
    producer: dict[str, int] = {}
    for index, step in enumerate(steps):
        free = set(analyze(step.code).used)
        step.inputs = [n for n in sorted(free) if n in producer and n not in parameters]
        step.params = [p for p in parameters if p in step.used]
        step.imports = [text for text, bound in imports
                        if "*" in bound or set(bound) & step.used]
        for name in [*step.defined, *step.changed]:
            if name not in parameters:
                producer[name] = index
    needed: dict[int, list[str]] = {}
    for step in steps:
        for name in step.inputs:
            needed.setdefault(_last_before(steps, step, name), []).append(name)
    for name in parts:
        if name in producer:
            needed.setdefault(producer[name], []).append(name)
    for index, step in enumerate(steps):
        wanted = set(needed.get(index, []))
        step.outputs = [n for n in dict.fromkeys([*step.defined, *step.changed]) if n in wanted]
        hint = _UNSAFE.sub("_", (step.outputs or step.defined or ["step"])[0]).strip("_")
        step.module = f"s{index + 1:02d}_{hint.lower()[:30] or 'step'}"
        step.sources = _sources(step.code, workdir)


def _last_before(steps: list[Step], reader: Step, name: str) -> int:
    """The index of the latest step before ``reader`` that bound or changed ``name``."""
    index = steps.index(reader)
    for earlier in range(index - 1, -1, -1):
        if name in steps[earlier].defined or name in steps[earlier].changed:
            return earlier
    raise AssertionError(name)  # the caller checked that some earlier step binds it


def _sources(code: str, workdir: str | None) -> list[str]:
    """Relative paths of files in ``workdir`` that the step's strings name."""
    tree = _statements(code)
    if tree is None or not workdir:
        return []
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and 0 < len(node.value) < 4096 and "\n" not in node.value \
                and not os.path.isabs(node.value) \
                and os.path.isfile(os.path.join(workdir, node.value)):
            found.append(os.path.normpath(node.value))
    return list(dict.fromkeys(found))
