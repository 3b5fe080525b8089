"""Which store a process uses when none is named."""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "JUPYTER_MLOPS_STORE"
STORE_DIR = ".mlops"


def default_store_path(cwd: str | os.PathLike[str] | None = None) -> Path:
    """``$JUPYTER_MLOPS_STORE``; else the nearest ancestor's ``.mlops/``; else ``./.mlops``."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    here = Path(cwd or os.getcwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / STORE_DIR
        if candidate.is_dir():
            return candidate
    return here / STORE_DIR
