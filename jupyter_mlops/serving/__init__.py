"""Serving: a registered version at work over HTTP, in batches, with its traffic logged.

``serve(uri)`` starts a model server in the background (MLflow's scoring protocol,
champion/challenger routing, a predictions log); ``score_file(uri, input, output)`` scores
a CSV or Parquet file in bounded memory; ``WorkerPool`` is ``serve --workers N`` (processes
sharing a port); ``build_image_context(uri, out)`` writes a container build context; ``log_labels`` records true values for served
requests; ``compare_versions`` is the A/B comparison of two served versions.

Importing this package loads neither pandas nor tornado: they load when used.
"""

from __future__ import annotations

from .ab import ABComparison, compare_versions
from .batch import BatchResult, score_file
from .formats import BadRequest, InputSpec
from .image import build_image_context
from .predictions import log_labels, predictions_frame, prune_predictions
from .server import ModelServer, running_servers, serve
from .workers import WorkerPool

__all__ = [
    "ABComparison", "BadRequest", "BatchResult", "InputSpec", "ModelServer", "WorkerPool",
    "build_image_context", "compare_versions", "log_labels", "predictions_frame",
    "prune_predictions", "running_servers", "score_file", "serve",
]
