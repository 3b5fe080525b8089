"""Writing a model through a framework's save-to-path API, to bytes."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def saved_bytes(save: Callable[[str], object], file_name: str) -> bytes:
    """What ``save(path)`` writes at a fresh ``path`` ending in ``file_name``."""
    with tempfile.TemporaryDirectory(prefix="jupyter-mlops-native-") as folder:
        path = os.path.join(folder, file_name)
        save(path)
        return Path(path).read_bytes()


def loaded_from_bytes(load: Callable[[str], object], data: bytes, file_name: str) -> object:
    """``load(path)`` on a fresh file holding ``data``."""
    with tempfile.TemporaryDirectory(prefix="jupyter-mlops-native-") as folder:
        path = os.path.join(folder, file_name)
        Path(path).write_bytes(data)
        return load(path)
