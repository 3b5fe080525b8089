"""A real Jupyter server in its own process (127.0.0.1, a free port, a token), with the
jupyter_mlops extension over a given store, and raw HTTP against it.

The reliability tests use it where the in-process server of pytest-jupyter does not fit:
a module of plain synchronous tests, or a race whose other side must be another process.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

API = "/jupyter-mlops/api/"
START_TIMEOUT_S = 90


class Response:
    def __init__(self, status: int, headers: http.client.HTTPMessage, body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    def json(self) -> Any:
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"<{self.status} {self.body[:200]!r}>"


class LiveServer:
    def __init__(self, port: int, token: str, process: subprocess.Popen, log: Path) -> None:
        self.port, self.token, self.process, self.log = port, token, process, log

    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                body: bytes | None = None, headers: dict[str, str] | None = None,
                token: bool = True, timeout: float = 30) -> Response:
        """``method`` on ``path`` as is (no normalisation of '..' or escapes)."""
        target = path if path.startswith("/") else API + path
        if params:
            target += "?" + urlencode(params, doseq=True, quote_via=quote)
        sent = {"Host": f"127.0.0.1:{self.port}"}
        if token:
            sent["Authorization"] = f"token {self.token}"
        sent.update(headers or {})
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request(method, target, body=body, headers=sent)
            response = connection.getresponse()
            return Response(response.status, response.headers, response.read())
        finally:
            connection.close()

    def get(self, path: str, **kwargs: Any) -> Response:
        return self.request("GET", path, **kwargs)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def live_server(workdir: Path, store_path: Path) -> Iterator[LiveServer]:
    """A jupyter server rooted in ``workdir/root`` whose extension reads ``store_path``."""
    root = workdir / "root"
    root.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items()
           if k not in ("JUPYTER_MLOPS_NOTEBOOK", "JPY_SESSION_NAME")}
    for name in ("config", "data", "runtime"):
        (workdir / name).mkdir(exist_ok=True)
    (workdir / "config" / "jupyter_server_config.json").write_text(json.dumps({
        "ServerApp": {"jpserver_extensions": {"jupyter_mlops": True}}}))
    env.update(JUPYTER_CONFIG_DIR=str(workdir / "config"),
               JUPYTER_DATA_DIR=str(workdir / "data"),
               JUPYTER_RUNTIME_DIR=str(workdir / "runtime"),
               JUPYTER_MLOPS_STORE=str(store_path), PYTHONUNBUFFERED="1")
    port, token = _free_port(), secrets.token_hex(16)
    command = [sys.executable, "-m", "jupyter_server", "--no-browser", "--ip=127.0.0.1",
               f"--port={port}", "--ServerApp.port_retries=0",
               f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    log = workdir / "server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=root, env=env, stdout=out,
                                   stderr=subprocess.STDOUT)
    server = LiveServer(port, token, process, log)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                if server.get("version", timeout=5).status == 200:
                    break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("The Jupyter server did not start:\n"
                                   + server.log_text()[-3000:])
            time.sleep(0.25)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
