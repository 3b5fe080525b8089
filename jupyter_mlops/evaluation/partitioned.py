"""``evaluate`` on a Dask cluster: the model predicts every partition on its worker (sent
there once); the predictions, a column or a few per row, come back in order and every
metric is computed from them exactly as on one machine."""

from __future__ import annotations

from typing import Any

from .inputs import Predictions


def _predict(part: Any, model: Any, kind: str) -> Predictions:
    from .inputs import predict

    return predict(model, part, kind, len(part))


def predict(model: Any, X: Any, kind: str, client: Any) -> Predictions:
    """What ``inputs.predict`` returns for the whole of the Dask frame ``X``."""
    import time

    import numpy as np

    from ..cluster import ordered, share

    started = time.perf_counter()
    pieces = [p for p in ordered(_predict, X.to_delayed(), client, share(model, client), kind)
              if len(p.pred)]
    pred = np.concatenate([p.pred for p in pieces])
    proba = None if pieces[0].proba is None else np.concatenate([p.proba for p in pieces])
    return Predictions(pred, proba, pieces[0].no_proba, time.perf_counter() - started)


def values(y: Any, client: Any) -> Any:
    """A Dask Series of true values gathered here, in order (one value per row)."""
    import numpy as np

    from ..cluster import ordered

    return np.concatenate(list(ordered(lambda part: np.asarray(part), y.to_delayed(), client)))
