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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..entities import CellExecution
from ..errors import ValidationError
from ..store import Store
from ..tracking.capture import flush_capture
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


_EPILOGUE = '''

# --- verification added by jupyter_mlops.registry.replay (not part of the replay) ---
def __mlops_verify():
    import json
    import numpy as np
    from jupyter_mlops.tracking.datasets import data_kind, fingerprint
    from jupyter_mlops.tracking.frameworks import plain_data, predictor
    from jupyter_mlops.registry.versions import load_model
    from jupyter_mlops.store import Store

    spec = json.loads({spec!r})
    result = {{"fingerprints": {{}}, "missing": [], "unreadable": []}}
    for name in spec["datasets"]:
        value = globals().get(name)
        info = fingerprint(value) if value is not None else None
        result["fingerprints"][name] = info["fingerprint"] if info else None
        if value is not None and info is None and data_kind(value) == "lgb_dataset":
            result["unreadable"].append(name)
    rebuilt = globals().get(spec["variable"])
    if rebuilt is None:
        result["missing"].append(spec["variable"])
    registered = load_model(spec["uri"], store=Store(spec["store"], read_only=True))
    X = None
    for name in spec["train"]:
        try:
            X = plain_data(globals().get(name))
        except ValueError:  # an lgb.Dataset whose rows training freed
            continue
        if X is not None:
            break
    if rebuilt is not None and X is not None:
        mine = np.asarray(predictor(rebuilt).predict(X))
        theirs = np.asarray(predictor(registered).predict(X))
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
    cwd = (recorded_cwd if isinstance(recorded_cwd, str) and recorded_cwd
           and os.path.isdir(recorded_cwd) else os.getcwd())
    # Every input the model was trained on: the first that still holds its rows is compared
    # on (an lgb.Dataset's rows are freed once trained on).
    train = [d["name"] for d in version.datasets if d["role"] == "train"]
    with tempfile.TemporaryDirectory(prefix="mlops-replay-") as folder:
        out = os.path.join(folder, "result.json")
        spec = json.dumps({"datasets": [d["name"] for d in version.datasets],
                           "variable": script.variable, "uri": script.uri,
                           "store": str(store.path), "train": train, "out": out},
                          allow_nan=False)
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
        and d["role"] != "reference" and d["name"] not in result["unreadable"]
    ]
    if result["missing"]:
        return Verification(False, f"The script did not define {result['missing'][0]!r}.", result)
    if mismatched:
        name, expected, actual = mismatched[0]
        return Verification(False, f"Input {name!r} differs: fingerprint {actual} rebuilt, "
                                   f"{expected} registered.", result)
    if not train or "rows" not in result:
        return Verification(False, "No training inputs were recorded for this version (or "
                                   "none still holds its rows), so predictions could not be "
                                   "compared.", result)
    if not result.get("equal"):
        first = result.get("first_difference", {})
        return Verification(False, f"Predictions differ first at row {first.get('row')}: "
                                   f"rebuilt {first.get('rebuilt')}, registered "
                                   f"{first.get('registered')}.", result)
    freed = "".join(f" ({name} was not fingerprinted again: LightGBM freed its rows once it "
                    "trained on them)" for name in result["unreadable"])
    return Verification(True, f"Rebuilt model predicts the same as {script.uri} on all "
                              f"{result['rows']} training rows; input fingerprints match"
                              f"{freed}.", result)


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

