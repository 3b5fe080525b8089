"""A registered version as a container build context: ``docker build OUT/`` and it serves.

``build_image_context(uri, out)`` writes, without needing Docker here:

- ``model/``: the version's registered bytes (``model.pkl``), its reference sample when it
  has one (``reference.pkl``, for the signature and the fast path's probe) and
  ``model.json`` (where it came from, its signature and the sha256 of each file);
- ``requirements.txt``: the distributions the model's pickle refers to, at the versions its
  session recorded (``registry.requirements``; else the versions its registry row keeps),
  then what the server needs, at the versions of the interpreter that builds the context;
- ``wheels/``: jupyter_mlops itself as a wheel, packed from the installed package (it is
  not on PyPI), installed without its notebook dependencies;
- ``serve.py``: the entrypoint (``serving/container.py``): the model on ``$PORT`` (8000)
  with our server, predictions logged in ``$DATA`` (``/data``, a mounted folder);
- ``Dockerfile`` on ``python:X.Y-slim`` of the Python the model was made with, ``SHA256SUMS``.

The version's bytes are checked against this user's signature here, as ``load_model``
checks them; the image carries their sha256, not the key, and its entrypoint refuses
bytes that do not match it.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import sys
import zipfile
from pathlib import Path
from typing import Any

from ..errors import ValidationError
from ..registry.export import staged_folder

#: Distributions the server imports (beyond the model's own), pinned to this interpreter's.
SERVER_REQUIREMENTS = ("numpy", "pandas", "tornado")
#: Used by the server when installed (orjson parses large bodies several times quicker):
#: pinned in the image when this interpreter has them.
SERVER_SPEEDUPS = ("orjson",)
PORT = 8000

_DOCKERFILE = """\
# The model {label} ({class_name}) served with jupyter-mlops on port {port}.
# Build: docker build -t {tag} .
# Run:   docker run -p {port}:{port} -v "$PWD/data:/data" {tag}
FROM python:{python}-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PORT={port} DATA=/data
WORKDIR /app
COPY requirements.txt ./
COPY wheels/ ./wheels/
RUN pip install --no-cache-dir -r requirements.txt \\
    && pip install --no-cache-dir --no-deps wheels/*.whl
COPY model/ ./model/
COPY serve.py SHA256SUMS ./
VOLUME ["/data"]
EXPOSE {port}
HEALTHCHECK CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ['PORT'] + '/ping', timeout=3)"]
CMD ["python", "/app/serve.py"]
"""

_SERVE = '''\
"""Serve the model in ./model on $PORT (default {port}) with jupyter-mlops: MLflow's scoring
protocol at POST /invocations; GET /ping, /health, /version, /metadata; the predictions
log in $DATA (default /data). $WORKERS processes (default 1)."""

import sys
from pathlib import Path

from jupyter_mlops.serving.container import main

sys.exit(main(Path(__file__).resolve().parent / "model"))
'''


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _pins(names: tuple[str, ...]) -> list[tuple[str, str | None]]:
    from ..tracking.environment import canonical, installed_distributions

    installed = {canonical(name): (name, version)
                 for name, version in installed_distributions().items()}
    return [installed.get(canonical(name), (name, None)) for name in names]


def _pickled(blobs: list[bytes]) -> list[tuple[str, str | None]]:
    """The distributions the pickles refer to, at this interpreter's versions (a pandas
    DataFrame of text pickled under pandas 3 needs pyarrow to be read back, for one)."""
    from importlib.metadata import packages_distributions

    from ..registry.requirements import pickle_modules, top_level

    modules: set[str] = set()
    for blob in blobs:
        try:
            modules |= pickle_modules(blob)
        except Exception:  # noqa: BLE001 - not a pickle (a native format)
            continue
    provided = packages_distributions()
    names = [name for module in sorted(top_level(modules)) for name in provided.get(module, [])]
    return _pins(tuple(dict.fromkeys(names)))


def requirements_for(store: Any, version: Any, row: Any, blobs: list[bytes]
                     ) -> tuple[str, list[str]]:
    """``(python X.Y.Z, requirement lines)`` for serving ``version`` from ``blobs`` (the
    model's bytes, then its reference sample's): the distributions its session recorded,
    else its registry row's; then what the pickles refer to and what the server imports,
    at this interpreter's versions; one line a distribution, the first pin winning."""
    from ..registry.export import pep440, requirement
    from ..registry.requirements import model_requirements
    from ..tracking.environment import canonical

    try:
        recorded = json.loads(row.library_versions or "{}")
    except (TypeError, ValueError):
        recorded = {}
    recorded = recorded if isinstance(recorded, dict) else {}
    python = recorded.get("python") or sys.version.split()[0]
    model: list[tuple[str, str | None]] = []
    for blob in blobs:
        captured = model_requirements(store, version, blob)
        if captured is not None:
            python = captured[0] or python
            model += captured[1]
    model += [("scikit-learn" if key == "sklearn" else key, value)
              for key, value in recorded.items() if key != "python"]
    pinned: dict[str, str] = {}
    speedups = [pin for pin in _pins(SERVER_SPEEDUPS) if pin[1] is not None]
    for name, found in model + _pickled(blobs) + _pins(SERVER_REQUIREMENTS) + speedups:
        pinned.setdefault(canonical(name), requirement(name, found))
    return pep440(python, "Python version"), list(pinned.values())


# -- jupyter_mlops as a wheel ------------------------------------------------------------

def pack_wheel(folder: Path) -> Path:
    """This jupyter_mlops (the package being run) as a pure-Python wheel in ``folder``.

    Packed from the imported package's files, so it is exactly the code that serves here,
    whether installed from a wheel, editable, or from a source tree; the sidebar's built
    files stay out (a model server has no use for them). Its metadata keeps the project's
    dependencies; the image installs it with ``--no-deps`` beside ``requirements.txt``.
    """
    from .._version import __version__

    root = Path(__file__).resolve().parents[1]  # the jupyter_mlops package folder
    tag = "py3-none-any"
    dist_info = f"jupyter_mlops-{__version__}.dist-info"
    entries: list[tuple[str, bytes]] = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root.parent)
        parts = relative.parts
        if not path.is_file() or "__pycache__" in parts or parts[1:2] == ("labextension",) \
                or path.suffix in (".pyc", ".pyo"):
            continue
        entries.append((relative.as_posix(), path.read_bytes()))
    metadata = _installed_metadata() or (
        f"Metadata-Version: 2.1\nName: jupyter-mlops\nVersion: {__version__}\n")
    entries += [
        (f"{dist_info}/METADATA", metadata.encode()),
        (f"{dist_info}/WHEEL", f"Wheel-Version: 1.0\nGenerator: jupyter-mlops {__version__}\n"
                               f"Root-Is-Purelib: true\nTag: {tag}\n".encode()),
        (f"{dist_info}/entry_points.txt",
         b"[console_scripts]\njupyter-mlops = jupyter_mlops.cli:main\n"),
    ]
    record = "".join(
        f"{name},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},"
        f"{len(data)}\n" for name, data in entries) + f"{dist_info}/RECORD,,\n"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"jupyter_mlops-{__version__}-{tag}.whl"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as wheel:
        for name, data in entries + [(f"{dist_info}/RECORD", record.encode())]:
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            wheel.writestr(info, data)
    return target


def _installed_metadata() -> str | None:
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        text = distribution("jupyter-mlops").read_text("METADATA")
    except PackageNotFoundError:
        return None
    return text.split("\n\n", 1)[0] + "\n" if text else None  # the headers, not the README


# -- the context ---------------------------------------------------------------------------

def build_image_context(uri: str, out: str | os.PathLike[str], *, store: Any = None,
                        allow_pickle: bool = False) -> Path:
    """Write a container build context that serves ``uri`` on port 8000; returns ``out``.

    ``out`` must not exist or be empty. Build and run it where Docker is:
    ``docker build -t churn OUT && docker run -p 8000:8000 -v "$PWD/data:/data" churn``;
    without Docker, ``pip install -r requirements.txt && pip install --no-deps wheels/*.whl``
    in a virtualenv, then ``python serve.py`` (``PORT``, ``DATA``, ``WORKERS`` set it up).

    Examples
    --------
    >>> build_image_context("churn@champion", "build/churn")         # doctest: +SKIP
    PosixPath('build/churn')
    """
    from ..registry.versions import checked_version, reference_sample
    from ..store.current import get_store
    from ..store.serialize import dump

    store = store or get_store()
    version, row = checked_version(uri, store=store, pickle="model", allow_pickle=allow_pickle)
    target = Path(out)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ValidationError(f"{str(target)!r} already exists and is not empty; choose a new "
                              "folder for the build context.")
    data = store.artifacts.read_verified(version.sha256)
    reference = None
    if version.reference_sha256:
        sample = reference_sample(uri, store=store, allow_pickle=allow_pickle)
        reference = dump(sample, "Reference sample")
    python, requirements = requirements_for(
        store, version, row, [data] + ([reference] if reference is not None else []))
    label = f"{version.name}/{version.version}"
    description = {
        "name": version.name, "version": version.version, "uri": version.uri,
        "requested": uri, "class_name": version.class_name, "framework": version.framework,
        "run_id": version.run_id, "signature": version.signature, "python": python,
        "files": {"model.pkl": _sha256(data),
                  **({"reference.pkl": _sha256(reference)} if reference is not None else {})},
    }
    with staged_folder(target) as staging:
        (staging / "model").mkdir(parents=True)
        (staging / "model" / "model.pkl").write_bytes(data)
        if reference is not None:
            (staging / "model" / "reference.pkl").write_bytes(reference)
        (staging / "model" / "model.json").write_text(
            json.dumps(description, indent=2, allow_nan=False) + "\n")
        (staging / "requirements.txt").write_text(
            f"# {label}: the model's distributions, then the server's (jupyter-mlops is in "
            "wheels/, installed with --no-deps)\n" + "\n".join(requirements) + "\n")
        pack_wheel(staging / "wheels")
        (staging / "serve.py").write_text(_SERVE.format(port=PORT))
        tag = "".join(c if c.isalnum() or c in "._-" else "-" for c in version.name.lower())
        (staging / "Dockerfile").write_text(_DOCKERFILE.format(
            label=label, class_name=version.class_name, port=PORT, tag=tag or "model",
            python=".".join(python.split(".")[:2])))
        (staging / ".dockerignore").write_text("**/__pycache__\n")
        sums = io.StringIO()
        for path in sorted(p for p in staging.rglob("*") if p.is_file()):
            sums.write(f"{_sha256(path.read_bytes())}  {path.relative_to(staging).as_posix()}\n")
        (staging / "SHA256SUMS").write_text(sums.getvalue())
    return target
