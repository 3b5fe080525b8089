"""The replay script of a registered version, cut from the real cell history.

The slice is computed backwards from the execution that produced the model: an earlier
execution is kept when it defines a name that a kept execution reads, and the latest such
definition before the use wins. The registry cuts it to sign it when a version is
registered; ``replay`` cuts it again and runs it only when it still matches. Stored names
and ids that land in comments are escaped, so none can end its comment line.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from ..entities import CellExecution
from ..errors import NotFoundError, ValidationError, shorten
from ..store import Store
from ..tracking import storage
from ..tracking.effects import first_statements, took_effect
from .chain import variable_parts
from .side_effects import MARK, mark_side_effects

# Cell magics whose body runs as plain Python; any other cell magic drops the cell.
_BODY_CELL_MAGICS = {"time", "capture", "timeit", "prun", "track"}
# Line magics with no effect on the computed values.
_NO_EFFECT = {"matplotlib", "load_ext", "reload_ext", "unload_ext", "config", "mlops",
              "autoreload", "aimport", "pip", "conda", "who", "whos", "history", "pinfo",
              "lsmagic", "precision", "pdb", "xmode", "debug"}
_LINE_MAGIC = re.compile(r"^(?P<indent>\s*)%(?P<name>\w+)\s*(?P<rest>.*)$")
_SHELL = re.compile(r"^(?P<indent>\s*)!(?P<rest>.*)$")


def comment_text(value: object) -> str:
    """``value`` as text that cannot leave the ``#`` comment it is put in: every character
    that is not printable (newlines, carriage returns, line separators) is escaped, and so
    is the backslash, so two different values never read the same."""
    return "".join(c if c.isprintable() and c != "\\" else
                   c.encode("unicode_escape").decode("ascii") for c in str(value))


def plain_python(source: str) -> str:
    """A cell's source as plain Python: magics translated, or commented out when inert."""
    lines = source.split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    # Leading cell magics: %%track, %%time, %%capture keep their body.
    while lines and lines[0].startswith("%%"):
        name = lines[0][2:].split()[0] if lines[0][2:].split() else ""
        if name in _BODY_CELL_MAGICS:
            lines = [f"# {comment_text(lines[0])}"] + lines[1:] if name != "track" else lines[1:]
            continue
        if name == "writefile":
            parts = lines[0].split(None, 1)
            target = parts[1].strip() if len(parts) > 1 else "out.txt"
            body = "\n".join(lines[1:]) + "\n"
            return f"with open({target!r}, 'w') as _handle:\n    _handle.write({body!r})\n"
        return "\n".join(f"# (dropped: %%{comment_text(name)} cell, not Python) "
                         f"{comment_text(line)}" for line in lines)
    out = []
    for line in lines:
        magic = _LINE_MAGIC.match(line)
        shell = _SHELL.match(line)
        if magic:
            indent, name, rest = magic.group("indent", "name", "rest")
            if name in ("time", "timeit") and rest:
                out.append(f"{indent}{rest if name == 'time' else _timeit_body(rest)}")
            # One statement per magic, as IPython runs it: a failed execution is replayed
            # up to the statement that raised, counted the same way.
            elif name == "cd" and rest:
                out.append(f"{indent}__import__('os').chdir({rest.strip()!r})")
            elif name == "env" and "=" in rest:
                key, value = rest.split("=", 1)
                out.append(f"{indent}__import__('os').environ[{key.strip()!r}] = "
                           f"{value.strip()!r}")
            else:
                reason = "no effect" if name in _NO_EFFECT else "no plain-Python equivalent"
                out.append(f"{indent}pass  # dropped ({reason}): "
                           f"%{name} {comment_text(rest)}".rstrip())
        elif shell:
            out.append(f"{shell.group('indent')}pass  # dropped (shell command): "
                       f"!{comment_text(shell.group('rest'))}")
        else:
            out.append(line)
    return "\n".join(out)


def _timeit_body(rest: str) -> str:
    words = rest.split()
    while words and words[0].startswith("-"):
        words = words[2:] if words[0] in ("-n", "-r") else words[1:]
    return " ".join(words)


def backward_slice(executions: list[CellExecution], target: int,
                   variables: list[str] | None = None) -> list[CellExecution]:
    """The executions, in the order they ran, that the one at index ``target`` depends on.

    One that rebinds a needed name is kept and satisfies it; one that may have changed a
    needed object in place (``df.drop(..., inplace=True)``, ``model.fit(X, y)``) is kept
    too, and the name stays needed, so the binding it changed is kept as well.
    """
    needed = set(executions[target].used)
    # The names the model is read from must be bound too (the parts of a pipeline).
    needed |= set(variables or ()) - set(executions[target].defined)
    kept = [executions[target]]
    for execution in reversed(executions[:target]):
        if not took_effect(execution):
            continue
        defined = set(execution.defined)
        if (defined | set(execution.modified)) & needed:
            kept.append(execution)
            needed = (needed - defined) | set(execution.used)
    kept.reverse()
    return kept


def _replayed_part(execution: CellExecution) -> str:
    """The execution as plain Python; of a failed one, the statements that finished, the
    rest shown commented out."""
    code = mark_side_effects(plain_python(execution.source).rstrip())
    if execution.status == "ok":
        return code
    ran = execution.statements_run or 0
    done = first_statements(code, ran)
    rest = code.split("\n")[len(done.split("\n")) if done else 0:]
    error = (execution.error or execution.status).split("\n", 1)[0]
    error = comment_text(error if len(error) <= 100 else error[:99] + "…")
    notes = [f"# This execution raised {error}",
             f"# Its first {ran} top-level statement(s) ran and are replayed; the rest "
             "(commented out with '# | ') did not run."]
    return "\n".join([*notes, *([done] if done else []), *(f"# | {line}" for line in rest)])


def replayed_source(execution: CellExecution) -> str:
    """An execution as the replay runs it: plain Python, of a failed one the statements
    that finished (a sweep's worker kernel rebuilds the notebook's state with it too)."""
    return _replayed_part(execution)


def script_for(store: Store, version: Any) -> tuple[str, list[CellExecution]]:
    """The replay script of a registered ``version`` and the executions it was cut from.

    The same function cuts the script that is signed at registration and the one that is
    checked against that signature before it runs, so both read the store the same way.
    Every stored string that lands in a comment goes through ``comment_text``.
    """
    label = f"{comment_text(version.name)}/{comment_text(version.version)}"
    if version.cell is None:
        raise ValidationError(
            f"Model {label} was not made in a captured cell, so there is no history to "
            "replay. Register models made in a notebook with %load_ext jupyter_mlops loaded."
        )
    producers = storage.cells(store, "id = ?", (version.cell,))
    if not producers:
        raise NotFoundError(
            f"Model {label} names cell execution {shorten(version.cell)}, which is not in "
            "the store; there is no history to replay."
        )
    producer = producers[0]
    history = storage.cells(store, "session_id = ? AND id <= ?", (producer.session_id, producer.id))
    kept = backward_slice(history, len(history) - 1, variable_parts(version.variable))
    header = [
        (f"# Rebuilds model {comment_text(version.name)} version "
         f"{comment_text(version.version)} ({comment_text(version.uri)})."),
        (f"# Cut from the execution history of kernel session "
         f"{comment_text(producer.session_id)}: {len(kept)} of {len(history)} executions, in "
         "the order they ran."),
    ]
    if version.run_id:
        header.append(f"# Run: {comment_text(version.run_id)}")
    for dataset in version.datasets:
        header.append(f"# Data: {comment_text(dataset['name'])} "
                      f"({comment_text(dataset['role'])}) "
                      f"fingerprint {comment_text(dataset['fingerprint'])}")
    header.append(f"# Model bytes sha256: {comment_text(version.sha256)}")
    blocks = []
    for execution in kept:
        count = execution.execution_count
        label = f"In[{comment_text(count)}]" if count else "In[?]"
        cell = f", cell {comment_text(execution.cell_id)}" if execution.cell_id else ""
        blocks.append(f"# {label}{cell}\n{_replayed_part(execution)}\n")
    if any(MARK in block for block in blocks):
        header.append(f"# Statements under a '{MARK}' line write files, use the network or "
                      "log to a tracker: running this script does that again. replay(verify="
                      "True) runs it in a scratch folder, with a home and stores of its own.")
    footer = ""
    if version.variable:
        footer = (f"\n# The registered model is the object bound to "
                  f"`{comment_text(version.variable)}`.\n")
    return "\n".join(header) + "\n\n" + "\n".join(blocks) + footer, kept


def script_sha256(source: str) -> str:
    return hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest()


def session_cwd(store: Store, session_id: str) -> Any:
    """The folder the kernel session ran in, as recorded (None when unknown)."""
    rows = store.query("SELECT cwd FROM sessions WHERE session_id = ?", (session_id,))
    return rows[0][0] if rows else None
