"""A model whose process dies while it predicts: a Dask worker killed mid-partition."""

from __future__ import annotations

import os
from pathlib import Path


class DiesWhilePredicting:
    """Wraps a fitted model. The first ``deaths`` calls to predict, across processes (counted
    in files under ``folder``), end the calling process at once, as an OOM kill would."""

    def __init__(self, inner, folder: str, deaths: int) -> None:
        self.inner, self.folder, self.deaths = inner, folder, deaths

    def predict(self, X):
        died = len(list(Path(self.folder).glob("died-*")))
        if died < self.deaths:
            (Path(self.folder) / f"died-{os.getpid()}-{died}").touch()
            os._exit(1)
        return self.inner.predict(X)
