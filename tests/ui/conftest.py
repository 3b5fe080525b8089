"""A real JupyterLab (subprocess, 127.0.0.1, random port, token auth) with the installed
extension, driven by Playwright through Debian's Chromium (headless, no browser download).

No pytest-jupyter here: its per-test event loop would fight Playwright's sync API. The
two autouse fixtures it would add elsewhere are defined as no-ops in case it is loaded
for the whole run (``-p pytest_jupyter.jupyter_server``).
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from .ui_support import ARTIFACTS

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]


@pytest.fixture(autouse=True)
def jp_asyncio_loop():
    """No-op: see the module docstring."""
    yield None


@pytest.fixture(autouse=True)
def jp_server_cleanup():
    """No-op: see the module docstring."""
    yield


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    message = (f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium) "
               "or run make test, which does.")
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Lab:
    """A JupyterLab server in a temporary root."""

    def __init__(self, root: Path, port: int, token: str, process: subprocess.Popen,
                 log: Path) -> None:
        self.root, self.port, self.token, self.process, self.log = root, port, token, process, log

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str = "lab") -> str:
        return f"{self.base}/{path}?token={self.token}"

    def set_theme(self, theme: str) -> None:
        """Choose the theme in the user settings, as the Settings menu does."""
        body = json.dumps({"raw": json.dumps({"theme": theme})}).encode()
        request = urllib.request.Request(
            f"{self.base}/lab/api/settings/@jupyterlab/apputils-extension:themes",
            data=body, method="PUT",
            headers={"Authorization": f"token {self.token}",
                     "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10):
            pass

    def get(self, path: str) -> dict:
        request = urllib.request.Request(f"{self.base}/{path}",
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())


@pytest.fixture(scope="session")
def lab_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("lab")


@pytest.fixture(scope="session")
def seeded_store(lab_root):
    """The store the server will choose (``<root>/.mlops``), seeded before it starts."""
    from .ui_support import seed_store

    return seed_store(lab_root / "root" / ".mlops")


@pytest.fixture(scope="session")
def lab(lab_root, seeded_store):
    root = lab_root / "root"
    root.mkdir(exist_ok=True)
    settings = lab_root / "settings"
    settings.mkdir()
    # No "receive Jupyter news?" toast over the screenshots.
    (settings / "overrides.json").write_text(json.dumps({
        "@jupyterlab/apputils-extension:notification": {"fetchNews": "false"},
        "@jupyterlab/notebook-extension:tracker": {"autoStartDefaultKernel": True},
    }))
    port = _free_port()
    token = secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items()
           if k not in ("JUPYTER_MLOPS_STORE", "JUPYTER_MLOPS_NOTEBOOK", "JPY_SESSION_NAME")}
    # Away from the user's own Jupyter settings and workspaces.
    for name in ("config", "data", "runtime"):
        (lab_root / name).mkdir()
    env.update(JUPYTER_CONFIG_DIR=str(lab_root / "config"),
               JUPYTER_DATA_DIR=str(lab_root / "data"),
               JUPYTER_RUNTIME_DIR=str(lab_root / "runtime"),
               PYTHONUNBUFFERED="1", MPLBACKEND="Agg")
    command = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1",
        f"--port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}", f"--LabApp.app_settings_dir={settings}",
        f"--LabApp.user_settings_dir={lab_root / 'user-settings'}",
        f"--LabApp.workspaces_dir={lab_root / 'workspaces'}",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    log = lab_root / "jupyterlab.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=root, env=env, stdout=out,
                                   stderr=subprocess.STDOUT)
    server = Lab(root, port, token, process, log)
    deadline = time.monotonic() + 60
    while True:
        try:
            server.get("api/status")
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("JupyterLab did not start:\n" + log.read_text()[-3000:])
            time.sleep(0.25)
    yield server
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


@pytest.fixture(scope="session")
def browser():
    _require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                              args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser, lab, request):
    """A fresh browser page; page errors and dialogs are collected and fail the test.

    Its device pixel ratio is 1, or the parameter of an indirect parametrization
    (``@pytest.mark.parametrize("page", [1, 2], indirect=True)``)."""
    scale = getattr(request, "param", 1)
    context = browser.new_context(viewport={"width": 1400, "height": 900},
                                  device_scale_factor=scale)
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.errors = []  # type: ignore[attr-defined]
    page.dialogs = []  # type: ignore[attr-defined]
    page.on("pageerror", lambda error: page.errors.append(str(error)))

    def on_dialog(dialog):
        page.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    yield page
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"FAILED-{request.node.name}.png"))
    context.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)

