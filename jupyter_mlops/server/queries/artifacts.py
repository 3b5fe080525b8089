"""Artifact bytes by sha256, and what the server knows of its store."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ...errors import NotFoundError, ValidationError
from ...store import Store
from .values import Relative, has_table

# \Z, not $: a media type ending in "\n" would reach the Content-Type header.
MEDIA_TYPE_RE = re.compile(r"^[A-Za-z0-9][\w.+-]*/[A-Za-z0-9][\w.+-]*\Z")


def artifact_info(store: Store | None, sha256: str) -> dict[str, Any]:
    """Where an artifact's bytes are and how to label them.

    The digest is checked (64 lowercase hex characters) before any file is looked at, so
    no request can name a path outside the artifact folder.
    """
    if store is None:
        if not isinstance(sha256, str) or not re.fullmatch(r"[0-9a-f]{64}", sha256):
            raise ValidationError("An artifact digest is 64 lowercase hex characters.")
        raise NotFoundError("No artifact with that digest in the store.")
    path = store.artifacts.path_for(sha256)
    rows = store.query(
        "SELECT name, media_type, size FROM artifacts WHERE sha256 = ? ORDER BY id LIMIT 1",
        (sha256,))
    recorded = bool(rows)
    if not recorded and has_table(store, "model_versions"):
        # Registered models keep their bytes in the same content-addressed folder.
        versions = store.query(
            "SELECT name, version, size FROM model_versions WHERE sha256 = ? LIMIT 1",
            (sha256,))
        if versions:
            name, version, size = versions[0]
            rows = [(f"{name}-v{version}.bin", None, size)]
    if not _inside(path, store.artifacts.root):
        raise NotFoundError(f"No artifact {sha256[:12]} in the store.")
    name, media_type, size = rows[0] if rows else (sha256, None, path.stat().st_size)
    if not media_type or not MEDIA_TYPE_RE.match(media_type):
        media_type = _sniff(path)
    return {"path": path, "name": name.replace("\\", "/").rsplit("/", 1)[-1],
            "media_type": media_type, "size": size, "bytes": path.stat().st_size,
            "recorded": recorded}


def _inside(path: Path, root: Path) -> bool:
    """A regular file, no symlink, whose real location is inside ``root``."""
    try:
        return (path.is_file() and not path.is_symlink()
                and path.resolve().is_relative_to(root.resolve()))
    except OSError:
        return False


def _sniff(path: Path) -> str:
    """PNG and JPEG by their magic bytes (figures of evaluations), else opaque bytes."""
    with open(path, "rb") as handle:
        head = handle.read(8)
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    return "application/octet-stream"


def store_status(store: Store | None, relative: Relative, store_path: Any) -> dict[str, Any]:
    from ..._version import __version__

    where = relative(str(store_path))
    return {
        "version": __version__,
        "store": {
            "exists": store is not None,
            "path": where if where is not None else str(store_path).replace(
                "\\", "/").rsplit("/", 1)[-1],
            "schema_version": store.schema_version if store is not None else None,
        },
    }
