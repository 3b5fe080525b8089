"""What an image's entrypoint runs: the model of its ``model/`` folder, served on ``$PORT``.

The folder was written by ``build_image_context`` (``image.py``) from a version whose
signature was checked there; here its bytes are checked against the sha256 it recorded
before anything is unpickled. The predictions log needs a store, so the model is
registered once in a store of its own in ``$DATA/.mlops`` (a mounted folder keeps it, and
the log, across restarts; the key that signs that store sits beside it in ``$DATA``), then
served from there with every route and guarantee of ``jupyter-mlops serve``.

Settings: ``PORT`` (8000), ``HOST`` (0.0.0.0), ``DATA`` (/data), ``WORKERS`` (1),
``ALLOWED_HOSTS`` (``*``: a container is reached under names it cannot know),
``JUPYTER_MLOPS_SERVE_TOKEN`` (for ``/labels`` and ``/reload``; else one is printed).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from ..errors import MLOpsError, ValidationError

KEY_ENV = "JUPYTER_MLOPS_KEY_FILE"


def _setting(name: str, default: str) -> str:
    return os.environ.get(name) or default


def _number(name: str, default: int) -> int:
    text = _setting(name, str(default))
    if not text.isdigit():
        raise ValidationError(f"${name} must be a whole number; got {text!r}.")
    return int(text)


def _load(folder: Path, name: str, digest: str) -> Any:
    """Unpickle ``folder/name`` through the one gate, only if it hashes to ``digest`` (the
    image's trust: the build checked this user's signature of that digest)."""
    from ..store.serialize import load_verified

    with open(folder / name, "rb") as handle:
        return load_verified(handle, digest, f"{name} of this image (rebuild the image from "
                             "the registry)", signature=None, allow_pickle=True)


def registered(folder: Path, store: Any) -> str:
    """The URI of the folder's model in ``store``, registering it the first time."""
    from ..registry.versions import register_model

    description = json.loads((folder / "model.json").read_text())
    files = description["files"]
    marker = Path(store.path) / f"image-{files['model.pkl'][:16]}.version"
    if marker.exists():
        return f"{description['name']}/{int(marker.read_text())}"
    model = _load(folder, "model.pkl", files["model.pkl"])
    reference = (_load(folder, "reference.pkl", files["reference.pkl"])
                 if "reference.pkl" in files else None)
    version = register_model(model, description["name"], alias="serving", reference=reference,
                             store=store)
    marker.write_text(str(version.version))
    print(f"Registered {description['uri']} (built from {description['requested']}) as "
          f"{version.name}/{version.version} in {store.path}", flush=True)
    return f"{version.name}/{version.version}"


def main(folder: Path) -> int:
    """Serve until SIGTERM; 2 with one line on a bad setting or model."""
    from ..store.current import set_store
    from .fastpath import silence_feature_name_warning

    try:
        data = Path(_setting("DATA", "/data"))
        data.mkdir(parents=True, exist_ok=True)
        os.environ.setdefault(KEY_ENV, str(data / ".mlops-key"))
        port, workers = _number("PORT", 8000), _number("WORKERS", 1)
        store = set_store(data / ".mlops")
        uri = registered(folder, store)
        silence_feature_name_warning()
        options = dict(host=_setting("HOST", "0.0.0.0"), port=port, watch_interval=None,
                       store=store, allowed_hosts=_setting("ALLOWED_HOSTS", "*").split(","))
        if workers > 1:
            from .workers import WorkerPool

            server = WorkerPool(uri, workers=workers, **options).start()
        else:
            from .server import serve

            server = serve(uri, **options)
    except MLOpsError as exc:
        print(f"serve: {exc}", file=sys.stderr)
        return 2
    print(f"Serving {uri} at http://{options['host']}:{server.port}/invocations "
          f"({workers} process(es)); predictions logged in {store.path}", flush=True)
    if not os.environ.get("JUPYTER_MLOPS_SERVE_TOKEN"):
        print(f"POST /labels and /reload need the header: Authorization: token {server.token}",
              flush=True)
    server.wait()
    return 0
