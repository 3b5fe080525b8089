"""Parameterized notebook runs, the way papermill makes them, recorded as one run.

A notebook with a cell tagged ``parameters`` gets an ``injected-parameters`` cell after it
(papermill's convention, so papermill notebooks run unchanged); a notebook without one has
the top-level literal assignments of the named parameters rewritten in place (``C = 1.0``
becomes ``C = 0.5`` wherever a cell binds ``C`` to a literal), so no notebook needs a tag
or a refactor to take parameters. The notebook runs headless in a fresh kernel; a parent
run holds the parameters, the executed notebook and the verdict, and every run the
notebook's cells start is its child (tag ``jupyter_mlops.notebook_run``).
"""

from __future__ import annotations

import ast
import copy
import keyword
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ValidationError
from ..store.current import get_store
from .runner import run_notebook as execute
from .runs import NOTEBOOK_RUN_ENV, _end, log_bytes, log_params, set_tag, start_run


@dataclass
class NotebookRun:
    """What ``run_notebook`` did: the parent run, each cell's outcome, the executed notebook."""

    run_id: str
    path: Path
    parameters: dict[str, Any]
    status: str
    error: str | None
    outcomes: list = field(default_factory=list, repr=False)
    notebook: Any = field(default=None, repr=False)
    injected: str = "parameters cell"  # or "literal assignments"

    @property
    def failed(self) -> list:
        return [o for o in self.outcomes if o.status != "ok" and not o.expected_error]


def parse_value(text: str) -> Any:
    """A command line value as papermill reads ``-p``: None, booleans, ints and floats by
    their spelling, anything else a string (``-r`` keeps strings raw)."""
    words = {"None": None, "True": True, "False": False, "true": True, "false": False}
    if text in words:
        return words[text]
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def check_parameters(parameters: Mapping[str, Any]) -> dict[str, Any]:
    checked = {}
    for name, value in parameters.items():
        if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
            raise ValidationError(
                f"Parameter name {name!r} is not a Python identifier; name parameters as "
                "the notebook's variables are named.")
        literal = repr(value)
        try:
            if ast.literal_eval(literal) != value:
                raise ValueError
        except (ValueError, SyntaxError, TypeError):
            what = ("NaN and infinities" if isinstance(value, float)
                    else f"{type(value).__name__} values")
            raise ValidationError(
                f"Parameter {name!r}: {what} cannot be written into a notebook as literals; "
                "pass numbers, strings, booleans, None, lists or dicts of them."
            ) from None
        checked[name] = value
    return checked


def parameterize(notebook, parameters: Mapping[str, Any]) -> tuple[Any, str]:
    """A copy of ``notebook`` (nbformat) that binds ``parameters``; and how it was done."""
    import nbformat

    notebook = copy.deepcopy(notebook)
    cells = [c for c in notebook.cells
             if "injected-parameters" not in c.metadata.get("tags", [])]  # a rerun's
    tagged = [i for i, c in enumerate(cells)
              if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])]
    if tagged or not parameters:
        if parameters:
            lines = ["# Parameters"] + [f"{k} = {v!r}" for k, v in parameters.items()]
            injected = nbformat.v4.new_code_cell("\n".join(lines) + "\n")
            injected.metadata["tags"] = ["injected-parameters"]
            cells.insert(tagged[-1] + 1, injected)
        notebook.cells = cells
        return notebook, "parameters cell"
    notebook.cells = cells
    found = {name: 0 for name in parameters}
    for cell in cells:
        if cell.cell_type == "code":
            cell.source = _rebind(cell.source, parameters, found)
    missing = [name for name, count in found.items() if not count]
    if missing:
        raise ValidationError(
            f"No cell binds {', '.join(missing)} to a literal and none is tagged 'parameters': "
            f"assign {missing[0]} = <value> at the top level of a cell, or tag a cell "
            "'parameters' as papermill does.")
    return notebook, "literal assignments"


def _rebind(source: str, parameters: Mapping[str, Any], found: dict[str, int]) -> str:
    """``source`` with each top-level ``NAME = <literal>`` of a parameter given its value.

    A cell magic's first line and line magics or shell lines are left as they are; a cell
    Python cannot parse is left whole."""
    lines = source.split("\n")
    first = 1 if lines and lines[0].lstrip().startswith("%%") else 0
    if first and not lines[0].lstrip().startswith("%%track"):
        return source  # another cell magic's body need not be Python
    python = ["" if i < first or line.lstrip().startswith(("%", "!")) else line
              for i, line in enumerate(lines)]
    try:
        tree = ast.parse("\n".join(python))
    except SyntaxError:
        return source
    edits = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if not (isinstance(target, ast.Name) and target.id in parameters):
            continue
        try:
            ast.literal_eval(value)
        except (ValueError, SyntaxError, TypeError):
            continue  # computed, not a literal: not a parameter's default
        edits.append((value, repr(parameters[target.id])))
        found[target.id] += 1
    for value, text in sorted(edits, key=lambda e: (e[0].lineno, e[0].col_offset), reverse=True):
        start, end = value.lineno - 1, value.end_lineno - 1
        head = lines[start].encode()[:value.col_offset].decode()
        tail = lines[end].encode()[value.end_col_offset:].decode()
        lines[start:end + 1] = [head + text + tail]
    return "\n".join(lines)


def run_notebook(path: str | os.PathLike[str], parameters: Mapping[str, Any] | None = None, *,
                 output: str | os.PathLike[str] | None = None, experiment: str = "default",
                 name: str | None = None, store=None, timeout: float = 600,
                 tags: Mapping[str, str] | None = None) -> NotebookRun:
    """Run the notebook at ``path`` headless with ``parameters``, as one run of the store.

    The parent run logs the parameters and the executed notebook (also written to
    ``output`` when given); every run the cells start is its child. A failing cell fails the
    parent run with the cell named; cells tagged ``raises-exception`` may fail.

    Examples
    --------
    >>> result = run_notebook("train.ipynb", {"C": 0.5})   # doctest: +SKIP
    >>> result.status, result.run_id[:8]                    # doctest: +SKIP
    ('FINISHED', '3f2a9c1e')
    """
    import nbformat

    source = Path(path).resolve()
    if not source.is_file():
        raise ValidationError(f"No notebook at {source}; give the path of an .ipynb file.")
    checked = check_parameters(dict(parameters or {}))
    try:
        notebook = nbformat.read(source, as_version=4)
    except Exception as exc:  # noqa: BLE001 - any unreadable file says the same
        raise ValidationError(f"{source} is not a notebook nbformat can read: {exc}") from None
    prepared, how = parameterize(notebook, checked)
    store = store or get_store()
    run = start_run(name or source.stem, experiment,
                    {**(tags or {}), "jupyter_mlops.notebook": str(source)}, store=store)
    try:
        if checked:
            log_params(checked)
        set_tag("jupyter_mlops.parameters_by", how)
        outcomes = execute(source, notebook=prepared, timeout=timeout, env={
            "JUPYTER_MLOPS_STORE": str(store.path), NOTEBOOK_RUN_ENV: run.run_id})
        executed = _with_outputs(prepared, outcomes)
        data = nbformat.writes(executed).encode()
        log_bytes(data, source.name, kind="notebook", media_type="application/x-ipynb+json")
        if output is not None:
            Path(output).write_bytes(data)
    except BaseException as exc:
        _end(run, "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED", exc)
        raise
    result = NotebookRun(run.run_id, source, checked, "FINISHED", None, outcomes, executed, how)
    if result.failed:
        first = result.failed[0]
        result.status = "FAILED"
        place = 1 + sum("injected-parameters" not in c.metadata.get("tags", [])
                        for c in prepared.cells[:first.index])  # as the file on disk counts
        result.error = (f"cell {place} of {source.name} (id {first.cell_id}, "
                        f"[{first.execution_count}]) raised {first.error}")
        _end(run, "FAILED", NotebookCellError(result.error))
    else:
        _end(run, "FINISHED")
    return result


class NotebookCellError(Exception):
    """A cell of a notebook run failed (the parent run's recorded error)."""


def _with_outputs(notebook, outcomes):
    """``notebook`` with each executed cell's count and outputs, as Jupyter saves them."""
    from nbformat.v4 import output_from_msg

    executed = copy.deepcopy(notebook)
    for outcome in outcomes:
        cell = executed.cells[outcome.index]
        cell.execution_count = outcome.execution_count
        cell.outputs = [output_from_msg(m) for m in outcome.outputs]
    return executed
