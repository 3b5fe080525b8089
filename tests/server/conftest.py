"""A real Jupyter server (pytest-jupyter's ``jp_serverapp``) with the jupyter_mlops server
extension, over a store seeded with known runs.

pytest-jupyter's fixtures and hooks are imported here rather than loaded for the whole
suite, so its per-test event loop and server cleanup apply to these tests only.
"""

from __future__ import annotations

import json
import math
import struct
import zlib
from dataclasses import dataclass, field

import pytest
from pytest_jupyter.jupyter_server import *  # noqa: F403 - fixtures and hooks, this folder only

import jupyter_mlops as mlops

ALLOW_UNAUTHENTICATED = False


def png_bytes(width: int = 4, height: int = 3) -> bytes:
    """A tiny valid PNG, made without any imaging library."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))


@dataclass
class Seeded:
    """What the seeded store holds, for the assertions."""

    store: mlops.Store
    runs: dict[str, str] = field(default_factory=dict)  # name -> run id
    png_sha256: str = ""
    text_sha256: str = ""
    html_sha256: str = ""


def seed(store: mlops.Store) -> Seeded:
    seeded = Seeded(store)
    with mlops.start_run(name="alpha", experiment="exp-a", tags={"team": "blue"}) as run:
        mlops.log_params({"lr": 0.1, "layers": [64, 32], "solver": "adam"})
        for step, value in enumerate([0.5, 0.7, 0.8, 0.9]):
            mlops.log_metric("acc", value, step=step)
        mlops.log_metric("loss", math.nan)
        mlops.log_metric("ratio", math.inf)
        seeded.png_sha256 = mlops.log_bytes(png_bytes(), "plots/curve.png",
                                            media_type="image/png")
        seeded.text_sha256 = mlops.log_bytes(b"hello", "notes.txt", media_type="text/plain")
        seeded.html_sha256 = mlops.log_bytes(b"<script>alert(1)</script>", "page.html",
                                             media_type="text/html")
        seeded.runs["alpha"] = run.run_id
    with mlops.start_run(name="beta", experiment="exp-a") as run:
        mlops.log_metric("acc", 0.95)
        seeded.runs["beta"] = run.run_id
    with mlops.start_run(name="gamma", experiment="exp-b") as run:
        mlops.log_metric("acc", 0.65)
        seeded.runs["gamma"] = run.run_id
    with pytest.raises(ZeroDivisionError):
        with mlops.start_run(name="broken", experiment="exp-b") as run:
            seeded.runs["broken"] = run.run_id
            1 / 0  # noqa: B018
    for i in range(7):
        with mlops.start_run(name=f"bulk-{i}", experiment="bulk") as run:
            mlops.log_metric("acc", i / 10)
            seeded.runs[f"bulk-{i}"] = run.run_id
    return seeded


@pytest.fixture
def seeded(store) -> Seeded:
    """The shared ``store`` fixture (``JUPYTER_MLOPS_STORE`` points at it) with 11 runs."""
    return seed(store)


@pytest.fixture
def png() -> bytes:
    """The bytes of the PNG artifact the seeded run logged."""
    return png_bytes()


@pytest.fixture
def jp_server_config(seeded):
    # Depending on ``seeded`` makes the store exist before the server starts.
    return {
        "ServerApp": {
            # Terminals off: pytest-jupyter would add them, with an auth warning of theirs.
            "jpserver_extensions": {"jupyter_mlops": True, "jupyter_server_terminals": False},
            "allow_unauthenticated_access": ALLOW_UNAUTHENTICATED,
        }
    }


@pytest.fixture(autouse=True)
def _close_the_extension(request):
    """After a test that starts a server, its extension closes its store and stops its
    scheduler (before the server is torn down): the suite starts hundreds of servers in
    one process."""
    if "jp_serverapp" not in request.fixturenames:
        yield
        return
    app = request.getfixturevalue("jp_serverapp")
    yield
    context = app.web_app.settings.get("jupyter_mlops")
    if context is not None:
        context.close()


@pytest.fixture
def api(jp_fetch):
    """``await api("runs", params={...})`` → (status, parsed JSON), never raising on 4xx;
    ``method="POST"`` sends an empty JSON object."""
    async def call(*parts: str, params=None, headers=None, method="GET"):
        response = await jp_fetch("jupyter-mlops", "api", *parts, params=params,
                                  headers=headers, raise_error=False, method=method,
                                  body="{}" if method in ("POST", "PUT", "PATCH") else None)
        body = response.body.decode()
        data = json.loads(body, parse_constant=_refuse_constant) if body else None
        return response.code, data

    return call


def _refuse_constant(name: str):
    raise AssertionError(f"The server sent the non-JSON constant {name}")
