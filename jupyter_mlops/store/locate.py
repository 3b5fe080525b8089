"""Which store a process uses when none is named.

A ``.mlops/`` folder found by searching up from the working directory is used only when
this user owns it and nobody else can write it, as git refuses a repository owned by
someone else (``safe.directory``): otherwise another user of a shared folder (``/tmp``, a
team project) could plant one and receive every param, cell source and model logged
below it. A store named explicitly (``set_store``, ``$JUPYTER_MLOPS_STORE``) is trusted.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ..errors import StoreOwnershipError

ENV_VAR = "JUPYTER_MLOPS_STORE"
STORE_DIR = ".mlops"


def default_store_path(cwd: str | os.PathLike[str] | None = None) -> Path:
    """``$JUPYTER_MLOPS_STORE``; else the nearest ancestor's ``.mlops/``; else ``./.mlops``.

    Raises StoreOwnershipError when the nearest ``.mlops/`` is not safe to use (see
    :func:`check_owned`).
    """
    return locate_store(cwd)[0]


def locate_store(cwd: str | os.PathLike[str] | None = None) -> tuple[Path, str]:
    """The default store's folder and, in a few words, why it is that one (for the line
    ``%load_ext`` prints, so nobody has to guess which store a notebook writes to)."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser(), f"set by ${ENV_VAR}"
    here = Path(cwd or os.getcwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / STORE_DIR
        if candidate.is_dir():
            check_owned(candidate)
            where = "the working folder" if folder == here else "a folder above the working one"
            return candidate, f"found in {where}"
    return here / STORE_DIR, "new, in the working folder"


def check_owned(folder: str | os.PathLike[str]) -> None:
    """Raise StoreOwnershipError unless this user owns ``folder`` and only they can write it.

    Root is held to the same rule: a folder another uid made is theirs, whoever reads it.
    """
    if not hasattr(os, "geteuid"):
        return  # no POSIX owners to compare (Windows)
    path = Path(folder)
    info = path.stat()
    if info.st_uid != os.geteuid():
        problem = f"belongs to uid {info.st_uid}, not to you (uid {os.geteuid()})"
        fix = "remove it, or make your own with `mkdir -m 700 .mlops` in your working folder"
    elif info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        problem = f"can be written by other users (mode {stat.S_IMODE(info.st_mode):o})"
        fix = f"run `chmod go-w {path}` if nobody else should write to it"
    else:
        return
    raise StoreOwnershipError(
        f"The store folder {path}, found by searching up from the working folder, "
        f"{problem}, so it was not used: {fix}, or name it explicitly with set_store(PATH) "
        "or JUPYTER_MLOPS_STORE if you trust it."
    )
