"""What a kernel session ran on: Python, platform, installed distributions and git state.

Captured once per session, on the capture thread (never on the cell's time), and written
with the session: the distributions as one JSON record named by its sha256 in
``environments`` (sessions on the same interpreter share it) and signed with this user's
key, because ``export_mlflow`` copies versions from it into requirement files; the git
commit, branch and dirty state in the session's own row.

Listing the distributions reads only the ``Name`` and ``Version`` headers of each
metadata file: ``importlib.metadata``'s full parse of ~200 files takes ~200 ms, the headers
~15 ms. The repository is the one holding the notebook's folder (else the kernel's working
folder); no git, no repository or a git that does not answer within ``GIT_TIMEOUT_S``
means no git state, silently: plenty of notebooks live outside any repository.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ..entities import Environment
from ..store.signing import sign_statement, verify_statement

GIT_TIMEOUT_S = 3.0
STATEMENT = "environment"


def installed_distributions() -> dict[str, str]:
    """Name → version of every distribution on ``sys.path`` (the first of a name wins, as
    for imports)."""
    from importlib.metadata import distributions

    found: dict[str, str] = {}
    seen: set[str] = set()
    for dist in distributions():
        try:
            text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
        except OSError:
            continue
        name, version = _name_and_version(text)
        if not name or not version:
            continue
        key = canonical(name)
        if key not in seen:
            seen.add(key)
            found[name] = version
    return dict(sorted(found.items(), key=lambda item: item[0].lower()))


def _name_and_version(text: str) -> tuple[str | None, str | None]:
    name = version = None
    for line in text.split("\n\n", 1)[0].splitlines():
        if line.startswith("Name:"):
            name = line[5:].strip()
        elif line.startswith("Version:"):
            version = line[8:].strip()
        if name and version:
            break
    return name, version


def canonical(name: str) -> str:
    """PEP 503's normalized form of a distribution name."""
    import re

    return re.sub(r"[-_.]+", "-", name).lower()


def capture_environment() -> dict[str, Any]:
    """This interpreter: Python, platform and installed distributions."""
    return {
        "python": platform.python_version(),
        "implementation": sys.implementation.name,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "packages": installed_distributions(),
    }


def project_folder(notebook: str | None) -> Path:
    """The notebook's folder when the kernel knows it, else the working folder."""
    if notebook:
        folder = Path(notebook).expanduser().parent
        if folder.is_absolute() and folder.is_dir():
            return folder
    return Path.cwd()


def git_state(folder: str | os.PathLike[str]) -> dict[str, Any] | None:
    """``{"commit", "branch", "dirty"}`` of the repository holding ``folder``, or None.

    One ``git status``: porcelain v2 gives the commit and branch in its header, and any
    other line is a change to a tracked file (untracked files are left out: listing them
    can take long in a folder of data, and they are not part of the commit).
    """
    env = dict(os.environ, GIT_OPTIONAL_LOCKS="0", GIT_TERMINAL_PROMPT="0", LC_ALL="C")
    try:
        done = subprocess.run(
            ["git", "status", "--porcelain=v2", "--branch", "--untracked-files=no"],
            cwd=folder, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
            timeout=GIT_TIMEOUT_S,
        )
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    if done.returncode != 0:
        return None
    commit = branch = None
    dirty = False
    for line in done.stdout.splitlines():
        if line.startswith("# branch.oid "):
            oid = line[len("# branch.oid "):].strip()
            commit = oid if oid != "(initial)" else None
        elif line.startswith("# branch.head "):
            head = line[len("# branch.head "):].strip()
            branch = head if head != "(detached)" else None
        elif line and not line.startswith("#"):
            dirty = True
    return {"commit": commit, "branch": branch, "dirty": dirty}


def encode(environment: dict[str, Any]) -> tuple[str, str]:
    """The record as canonical JSON, and its sha256."""
    text = json.dumps(environment, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return text, hashlib.sha256(text.encode("utf-8")).hexdigest()


def write_environment(conn, session_id: str, environment: dict[str, Any] | None,
                      git: dict[str, Any] | None) -> str | None:
    """Record the session's environment and git state inside the caller's transaction;
    returns the environment's sha256."""
    digest = None
    if environment is not None:
        text, digest = encode(environment)
        conn.execute(
            "INSERT OR IGNORE INTO environments (sha256, data, hmac, created) "
            "VALUES (?, ?, ?, ?)",
            (digest, text, sign_statement(STATEMENT, [digest]), time.time()))
    git = git or {}
    conn.execute(
        "UPDATE sessions SET environment = ?, git_commit = ?, git_branch = ?, git_dirty = ? "
        "WHERE session_id = ?",
        (digest, git.get("commit"), git.get("branch"),
         None if git.get("dirty") is None else int(git["dirty"]), session_id))
    return digest


def session_environment(store, session_id: str | None) -> Environment | None:
    """The environment recorded for a session, or None (no session, or none recorded)."""
    if session_id is None:
        return None
    rows = store.query(
        "SELECT s.session_id, s.started, s.notebook, s.cwd, s.python, s.git_commit, "
        "s.git_branch, s.git_dirty, e.sha256, e.data, e.hmac "
        "FROM sessions s LEFT JOIN environments e ON e.sha256 = s.environment "
        "WHERE s.session_id = ?", (session_id,))
    if not rows:
        return None
    (session, started, notebook, cwd, python, commit, branch, dirty, digest, text,
     signature) = rows[0]
    data: dict[str, Any] = {}
    if text is not None:
        try:
            data = json.loads(text)
        except ValueError:
            data = {}
    if not isinstance(data, dict):
        data = {}
    packages = data.get("packages")
    vouched = (text is not None and hashlib.sha256(text.encode("utf-8")).hexdigest() == digest
               and verify_statement(STATEMENT, [digest], signature) is None)
    return Environment(
        session_id=session, started=started, notebook=notebook, cwd=cwd,
        python=data.get("python") or python, implementation=data.get("implementation"),
        platform=data.get("platform"), machine=data.get("machine"),
        packages=dict(packages) if isinstance(packages, dict) else {},
        git_commit=commit, git_branch=branch,
        git_dirty=None if dirty is None else bool(dirty), sha256=digest, vouched=vouched,
    )


def run_environment(store, run_id: str) -> Environment | None:
    """The environment of the session a run was made in."""
    rows = store.query("SELECT session_id FROM runs WHERE run_id = ?", (run_id,))
    return session_environment(store, rows[0][0]) if rows else None
