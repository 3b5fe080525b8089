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

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..entities import CellExecution
from ..errors import ValidationError
from ..store import Store
from ..tracking.capture import flush_capture
from . import scratch as scratch_module
from .scratch import Scratch
from .script import script_for, script_sha256, session_cwd


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
        from ..dashboards.registry import replay_html

        return replay_html(self)


def build_replay(uri: str, *, store: Store | None = None) -> ReplayScript:
    from .versions import get_model_version
    from ..store.current import get_store

    flush_capture()
    store = store or get_store()
    version = get_model_version(uri, store=store)
    source, kept = script_for(store, version)
    return ReplayScript(version.uri, source, kept, version.variable)


def verify_replay(script: ReplayScript, *, store: Store | None = None,
                  timeout: float = 600, restore_data: bool = False) -> Verification:
    """Run the script in a fresh interpreter and compare what it rebuilds with the registry.

    It runs in a scratch copy of the folder the notebook ran in, with home, temporary
    folder and tracking stores of its own (see ``scratch``), so files, MLflow runs and
    settings it writes are not the user's. With ``restore_data`` the files the runs read are
    put back in that copy from their kept bytes where they changed or are gone. Only a script whose sha256 (and the folder it runs in) this user signed when the
    version was registered is run; anything else raises before a process starts.
    """
    from ..store.current import get_store
    from .versions import checked_version

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
    source_cwd = (recorded_cwd if isinstance(recorded_cwd, str) and recorded_cwd
                  and os.path.isdir(recorded_cwd) else os.getcwd())
    train = _prediction_inputs(version, script.executions[-1])
    with tempfile.TemporaryDirectory(prefix="mlops-replay-") as folder:
        scratch = Scratch(folder)
        scratch.mirror(source_cwd, script.source)
        restored = None
        if restore_data:
            from .restore import restore_files

            runs = list(dict.fromkeys(r for r in [version.run_id, *(
                e.run_id for e in script.executions)] if r))
            restored = restore_files(store, runs, scratch.work, source_cwd)
        path = os.path.join(folder, "replay.py")
        Path(path).write_text(script.source, encoding="utf-8")
        out = os.path.join(folder, "result.json")
        spec = os.path.join(folder, "spec.json")
        Path(spec).write_text(json.dumps({
            "datasets": [d["name"] for d in version.datasets if d["role"] != "file"],
            "variable": script.variable,
            "uri": script.uri, "store": str(store.path), "train": train, "out": out,
            "script": path, "root": str(scratch.root)}, allow_nan=False), encoding="utf-8")
        started = time.perf_counter()
        done = subprocess.run([sys.executable, scratch_module.__file__, spec],
                              cwd=scratch.work, env=scratch.environment(dict(os.environ)),
                              capture_output=True, text=True, timeout=timeout)
        elapsed = time.perf_counter() - started
        if done.returncode != 0:
            tail = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "no output"
            return Verification(False, f"The replay script failed: {tail}",
                                {"stderr": done.stderr[-4000:], "seconds": elapsed})
        result = json.loads(Path(out).read_text())
        result["seconds"] = elapsed
    verification = _judge(script, version, result, train)
    if restored is not None:
        verification.details["restored"] = restored.restored
        verification.details["not_kept"] = restored.not_kept
        note = restored.describe()
        if note:
            verification.message = f"{verification.message.rstrip('.')}; {note}."
    return verification


def _judge(script: ReplayScript, version: Any, result: dict[str, Any],
           train: list[str]) -> Verification:
    """The verdict on what the replay process reported."""
    mismatched = [
        (d["name"], d["fingerprint"], result["fingerprints"].get(d["name"]))
        for d in version.datasets if result["fingerprints"].get(d["name"]) != d["fingerprint"]
        and d["role"] not in ("reference", "file") and d["name"] not in result["unreadable"]
    ]
    if result["missing"]:
        return Verification(False, f"The script did not define {result['missing'][0]!r}.", result)
    if mismatched:
        name, expected, actual = mismatched[0]
        return Verification(False, f"Input {name!r} differs: fingerprint {actual} rebuilt, "
                                   f"{expected} registered.", result)
    if "equal" not in result:
        return Verification(False, "No data the model predicts from was found to compare "
                                   f"predictions on (tried {', '.join(train) or 'none'}, then "
                                   "every table the script bound).", result)
    if not result.get("equal"):
        first = result.get("first_difference", {})
        return Verification(False, f"Predictions differ first at row {first.get('row')}: "
                                   f"rebuilt {first.get('rebuilt')}, registered "
                                   f"{first.get('registered')}.", result)
    checked = "input fingerprints match" if version.datasets else "no input was fingerprinted"
    freed = "".join(f" ({name} was not fingerprinted again: LightGBM freed its rows once it "
                    "trained on them)" for name in result.get("unreadable", []))
    return Verification(True, f"Rebuilt model predicts the same as {script.uri} on all "
                              f"{result['rows']} rows of {result['compared_on']}; {checked}"
                              f"{freed}.", result)


def _prediction_inputs(version: Any, producer: CellExecution) -> list[str]:
    """The data to compare predictions on, best first, as expressions: the run's training
    data, what the producing cell passed to ``fit`` (``x[:, np.newaxis]``), then the other
    data it read."""
    import ast

    from ..tracking.cellnames import FIT_METHODS
    from .script import plain_python

    names = [d["name"] for d in version.datasets if d["role"] == "train"]
    try:
        tree = ast.parse(plain_python(producer.source))
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        tree = ast.Module(body=[], type_ignores=[])
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr in FIT_METHODS and node.args:
            names.append(ast.unparse(node.args[0]))
    names += [d["name"] for d in version.datasets if d["role"] == "input"]
    return list(dict.fromkeys(names))


def replay(uri: str, verify: bool = False, *, restore_data: bool = False,
           store: Store | None = None) -> ReplayScript:
    """The script that rebuilds a registered model; with ``verify=True`` it is also run,
    and with ``restore_data=True`` in a folder where the files its runs read are put back
    from their kept bytes when they changed on disk or are gone.

    Examples
    --------
    >>> script = replay("cancer@champion", verify=True)     # doctest: +SKIP
    >>> script.verification.ok
    True
    >>> script.save("rebuild_cancer.py")                     # doctest: +SKIP
    """
    script = build_replay(uri, store=store)
    if verify:
        script.verification = verify_replay(script, store=store, restore_data=restore_data)
    return script

