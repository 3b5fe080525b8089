"""The folder a pipeline is written to: plain Python a reader can follow and run.

```
<folder>/pipeline.json    the steps in order, their inputs, parameters, outputs, sources
<folder>/run.py           the runner: python run.py -p C=0.5 (standalone; a cache of its own)
<folder>/steps/s01_*.py   one module a step, each a function run(inputs..., params...)
```

The folder is written from the replay slice the user signed when the version was
registered; the files are then the user's to read and edit (an edited step simply misses
the cache).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from ..registry.script import comment_text
from .cut import Step, parameter_type

RUNNER = Path(__file__).with_name("run.py.txt")


def step_module(step: Step, pipeline: str, parameters: dict[str, Any]) -> str:
    """The source of one step's module."""
    reads = ", ".join(step.inputs) or "nothing from earlier steps"
    passes = ", ".join(step.outputs) or "nothing"
    head = [f'"""Step {step.module} of pipeline {comment_text(pipeline)}: '
            f"{comment_text(step.label)}.", "",
            f"Reads {reads}; passes on {passes}."]
    if step.params:
        head.append("Parameters: " + ", ".join(f"{p} (default {parameters[p]!r})"
                                               for p in step.params) + ".")
    if step.sources:
        head.append("Reads the files " + ", ".join(comment_text(s) for s in step.sources) + ".")
    head.append('"""')
    arguments = [*step.inputs, *(["*"] if step.params else []),
                 *(f"{p}={parameters[p]!r}" for p in step.params)]
    body = "\n".join(("    " + line) if line.strip() else "" for line in step.code.split("\n"))
    returned = ", ".join(f"{name!r}: {name}" for name in step.outputs)
    return "\n".join([*head, "", *step.imports, *([""] if step.imports else []), "",
                      f"def run({', '.join(arguments)}):", body,
                      f"    return {{{returned}}}", ""])


def write_folder(folder: Path, name: str, uri: str, steps: list[Step],
                 parameters: dict[str, Any], model: list[str], workdir: str | None,
                 extra: dict[str, Any] | None = None) -> Path:
    """Write the pipeline's files into ``folder`` (0700) and return it."""
    private_folder(folder / "steps")
    for old in (folder / "steps").glob("s[0-9][0-9]_*.py"):
        if old.stem not in {s.module for s in steps}:
            old.unlink()  # a step of an earlier build that is gone
    for step in steps:
        _write(folder / "steps" / f"{step.module}.py", step_module(step, name, parameters))
    plan = {
        "name": name, "model_uri": uri, **(extra or {}), "model": model, "workdir": workdir,
        "parameters": {p: {"default": v, "type": parameter_type(v)}
                       for p, v in parameters.items()},
        "steps": [{"module": s.module, "label": s.label, "inputs": s.inputs,
                   "params": s.params, "outputs": s.outputs, "sources": s.sources}
                  for s in steps],
    }
    _write(folder / "pipeline.json", json.dumps(plan, indent=1, allow_nan=False) + "\n")
    _write(folder / "run.py", RUNNER.read_text(encoding="utf-8"))
    return folder


def private_folder(path: Path) -> Path:
    """``path`` and each missing folder above it, made 0700 as the store's own folders."""
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)
    return path


def read_plan(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "pipeline.json").read_text(encoding="utf-8"))


def _write(path: Path, text: str) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".partial-")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(temporary, path)
