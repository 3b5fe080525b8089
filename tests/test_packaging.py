"""The installed package carries the sidebar and enables its server extension; importing
jupyter_mlops stays light (no tornado, no jupyter_server)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jupyter_mlops

JUPYTER = [sys.executable, "-m", "jupyter"]


def _jupyter(*args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "JUPYTER_MLOPS_STORE"}
    done = subprocess.run([*JUPYTER, *args], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return re.sub(r"\x1b\[[0-9;]*m", "", done.stdout + done.stderr)


def test_labextension_installed_and_enabled():
    listing = _jupyter("labextension", "list")
    assert re.search(r"jupyter-mlops v\S+ enabled OK", listing), listing


def test_server_extension_enabled():
    listing = _jupyter("server", "extension", "list")
    assert re.search(r"jupyter_mlops enabled", listing), listing
    assert re.search(r"jupyter_mlops \S+ OK", listing), listing


def test_extension_entry_points():
    assert jupyter_mlops._jupyter_labextension_paths() == [
        {"src": "labextension", "dest": "jupyter-mlops"}]
    assert jupyter_mlops._jupyter_server_extension_points() == [{"module": "jupyter_mlops"}]
    # Where JupyterLab finds it: share/jupyter/labextensions (installed, or linked there
    # by an editable install).
    from jupyter_core.paths import jupyter_path

    found = [Path(folder) / "jupyter-mlops" / "package.json"
             for folder in jupyter_path("labextensions")]
    built = next(path for path in found if path.exists())
    data = json.loads(built.read_text())
    assert data["name"] == "jupyter-mlops"
    assert data["jupyterlab"]["_build"]["load"].startswith("static/remoteEntry.")


def test_import_stays_light():
    code = ("import sys, jupyter_mlops; print(sorted(m for m in sys.modules if "
            "m.split('.')[0] in ('tornado', 'jupyter_server', 'pandas', 'sklearn')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
