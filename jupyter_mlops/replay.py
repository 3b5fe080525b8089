"""Replay: the script that rebuilds a registered model, cut from the real cell history.

The slice is computed backwards from the execution that produced the model: an earlier
execution is kept when it defines a name that a kept execution reads, and the latest such
definition before the use wins. Executions run after the model was made, failed ones and
ones whose names nothing needed are left out, so a value redefined later, cells run out of
order and cells run several times all come out as the kernel really saw them.

Everything in the script comes from the store, which others may be able to write. So the
script is cut once when the version is registered and its sha256 (with the folder it runs
in) signed with the user's key; ``verify=True`` runs only a script that still matches.
Stored names and ids that land in comments are escaped, so none can end its comment line.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .entities import CellExecution
from .errors import NotFoundError, ValidationError, shorten
from .store import Store

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
            elif name == "cd" and rest:
                out.append(f"{indent}import os; os.chdir({rest.strip()!r})")
            elif name == "env" and "=" in rest:
                key, value = rest.split("=", 1)
                out.append(f"{indent}import os; os.environ[{key.strip()!r}] = {value.strip()!r}")
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


def backward_slice(executions: list[CellExecution], target: int) -> list[CellExecution]:
    """The executions, in the order they ran, that the one at index ``target`` depends on."""
    needed = set(executions[target].used)
    kept = [executions[target]]
    for execution in reversed(executions[:target]):
        if execution.status != "ok":
            continue
        defined = set(execution.defined)
        if defined & needed:
            kept.append(execution)
            needed = (needed - defined) | set(execution.used)
    kept.reverse()
    return kept


@dataclass
class Verification:
    ok: bool
    message: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class ReplayScript:
    """The rebuilding script; ``str(script)`` is the code, ``.verification`` the check."""

    uri: str
    source: str
    executions: list[CellExecution]
    variable: str | None
    verification: Verification | None = None

    def __str__(self) -> str:
        return self.source

    def __repr__(self) -> str:
        counts = ", ".join(f"[{e.execution_count}]" for e in self.executions)
        verdict = "" if self.verification is None else (
            " verified" if self.verification.ok else " NOT verified")
        return f"<ReplayScript of {self.uri}: executions {counts}{verdict}>"

    def save(self, path: str | os.PathLike[str]) -> Path:
        target = Path(path)
        target.write_text(self.source, encoding="utf-8")
        return target

    def _repr_html_(self) -> str:
        from .dashboards.registry import replay_html

        return replay_html(self)


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
    producers = store.cells("id = ?", (version.cell,))
    if not producers:
        raise NotFoundError(
            f"Model {label} names cell execution {shorten(version.cell)}, which is not in "
            "the store; there is no history to replay."
        )
    producer = producers[0]
    history = store.cells("session_id = ? AND id <= ?", (producer.session_id, producer.id))
    kept = backward_slice(history, len(history) - 1)
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
        blocks.append(f"# {label}{cell}\n{plain_python(execution.source).rstrip()}\n")
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


def build_replay(uri: str, *, store: Store | None = None) -> ReplayScript:
    from .magics import flush_capture
    from .registry import get_model_version
    from .tracking import get_store

    flush_capture()
    store = store or get_store()
    version = get_model_version(uri, store=store)
    source, kept = script_for(store, version)
    return ReplayScript(version.uri, source, kept, version.variable)


_EPILOGUE = '''

# --- verification added by jupyter_mlops.replay (not part of the replay) ---
def __mlops_verify():
    import json
    import numpy as np
    from jupyter_mlops.lineage import fingerprint
    from jupyter_mlops.registry import load_model
    from jupyter_mlops.store import Store

    spec = json.loads({spec!r})
    result = {{"fingerprints": {{}}, "missing": []}}
    for name in spec["datasets"]:
        value = globals().get(name)
        info = fingerprint(value) if value is not None else None
        result["fingerprints"][name] = info["fingerprint"] if info else None
    rebuilt = globals().get(spec["variable"])
    if rebuilt is None:
        result["missing"].append(spec["variable"])
    registered = load_model(spec["uri"], store=Store(spec["store"], read_only=True))
    X = globals().get(spec["train"]) if spec["train"] else None
    if rebuilt is not None and X is not None:
        mine = np.asarray(rebuilt.predict(X))
        theirs = np.asarray(registered.predict(X))
        result["rows"] = int(len(theirs))
        diff = np.flatnonzero(np.asarray(mine != theirs).reshape(len(theirs), -1).any(axis=1))
        result["equal"] = bool(mine.shape == theirs.shape and diff.size == 0)
        if diff.size:
            i = int(diff[0])
            result["first_difference"] = {{"row": i, "rebuilt": repr(mine[i]),
                                          "registered": repr(theirs[i])}}
    with open(spec["out"], "w") as handle:
        json.dump(result, handle)

__mlops_verify()
'''


def verify_replay(script: ReplayScript, *, store: Store | None = None,
                  timeout: float = 600) -> Verification:
    """Run the script in a fresh interpreter and compare what it rebuilds with the registry.

    Only a script whose sha256 (and the folder it runs in) this user signed when the
    version was registered is run; anything else raises before a process starts.
    """
    from .registry import checked_version
    from .tracking import get_store

    store = store or get_store()
    version, row = checked_version(script.uri, store=store, done="replayed")
    if not script.executions:
        raise ValidationError(f"The replay script of {row.label} holds no executions to run.")
    recorded_cwd = session_cwd(store, script.executions[-1].session_id)
    from .vouching import require_replay

    require_replay(store, row, script_sha256(script.source), recorded_cwd)
    if not script.variable:
        return Verification(False, "The version does not name the variable holding the model, "
                                   "so the rebuilt model cannot be found.")
    cwd = (recorded_cwd if isinstance(recorded_cwd, str) and recorded_cwd
           and os.path.isdir(recorded_cwd) else os.getcwd())
    train = next((d["name"] for d in version.datasets if d["role"] == "train"), None)
    with tempfile.TemporaryDirectory(prefix="mlops-replay-") as folder:
        out = os.path.join(folder, "result.json")
        spec = json.dumps({"datasets": [d["name"] for d in version.datasets],
                           "variable": script.variable, "uri": script.uri,
                           "store": str(store.path), "train": train, "out": out})
        path = os.path.join(folder, "replay.py")
        Path(path).write_text(script.source + _EPILOGUE.format(spec=spec), encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if k != "JPY_SESSION_NAME"}
        env["MPLBACKEND"] = "Agg"
        done = subprocess.run([sys.executable, path], cwd=cwd, env=env, capture_output=True,
                              text=True, timeout=timeout)
        if done.returncode != 0:
            tail = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "no output"
            return Verification(False, f"The replay script failed: {tail}",
                                {"stderr": done.stderr[-4000:]})
        result = json.loads(Path(out).read_text())
    mismatched = [
        (d["name"], d["fingerprint"], result["fingerprints"].get(d["name"]))
        for d in version.datasets if result["fingerprints"].get(d["name"]) != d["fingerprint"]
        and d["role"] != "reference"
    ]
    if result["missing"]:
        return Verification(False, f"The script did not define {result['missing'][0]!r}.", result)
    if mismatched:
        name, expected, actual = mismatched[0]
        return Verification(False, f"Input {name!r} differs: fingerprint {actual} rebuilt, "
                                   f"{expected} registered.", result)
    if train is None:
        return Verification(False, "No training inputs were recorded for this version, so "
                                   "predictions could not be compared.", result)
    if not result.get("equal"):
        first = result.get("first_difference", {})
        return Verification(False, f"Predictions differ first at row {first.get('row')}: "
                                   f"rebuilt {first.get('rebuilt')}, registered "
                                   f"{first.get('registered')}.", result)
    return Verification(True, f"Rebuilt model predicts the same as {script.uri} on all "
                              f"{result['rows']} training rows; input fingerprints match.",
                        result)


def replay(uri: str, verify: bool = False, *, store: Store | None = None) -> ReplayScript:
    """The script that rebuilds a registered model; with ``verify=True`` it is also run.

    Examples
    --------
    >>> script = replay("cancer@champion", verify=True)     # doctest: +SKIP
    >>> script.verification.ok
    True
    >>> script.save("rebuild_cancer.py")                     # doctest: +SKIP
    """
    script = build_replay(uri, store=store)
    if verify:
        script.verification = verify_replay(script, store=store)
    return script

