"""jupyter_mlops: MLOps that lives inside the notebook.

``%load_ext jupyter_mlops`` records every cell execution; ``%%track`` turns a cell into a
run. Everything is also a plain Python call, listed in ``__all__``. Importing this package
loads neither pandas, scikit-learn, matplotlib nor scipy: they are imported when used.
"""

from __future__ import annotations

from typing import Any

from ._version import __version__ as __version__
from .tracking.compare import compare_runs
from .errors import (
    IntegrityError,
    MLOpsError,
    ModelSerializationError,
    NotFoundError,
    SchemaVersionError,
    StoreCorruptError,
    StoreError,
    StoreFullError,
    StoreLockedError,
    StoreMissingError,
    StoreOwnershipError,
    StoreReadOnlyError,
    TamperedError,
    UntrustedPickleError,
    UntrustedRecordError,
    ValidationError,
)
from .drift import (
    DriftProfile,
    DriftReport,
    drift_profile,
    drift_report,
    get_drift_report,
    load_drift_profile,
)
from .evaluation import (
    EvaluationComparison,
    EvaluationResult,
    compare_evaluations,
    evaluate,
    get_evaluation,
)
from .registry.cards import ModelCard, describe, model_card
from .registry.export import export_mlflow
from .tracking.history import cell_history
from .tracking.notebook_runs import NotebookRun, run_notebook
from .tracking.datapolicy import DataPolicy, get_data_policy, set_data_policy
from .tracking.getdata import get_dataset
from .tracking.datacatalog import list_datasets
from .drift.datadiff import DataDiff, diff_datasets
from .drift.quality import DataQuality, data_quality
from .tracking.provenance import Provenance, provenance
from .registry.versions import (
    ModelVersion,
    delete_alias,
    get_model_version,
    list_models,
    load_model,
    model_versions,
    reference_sample,
    register_model,
    set_alias,
    trust_model,
)
from .monitoring.gates import CheckResult, MetricThreshold, check
from .monitoring.maturity import maturity
from .monitoring.monitor import list_alerts, monitor
from .monitoring.triggers import list_schedules, schedule, unschedule
from .registry.replay import ReplayScript, replay
from .monitoring.retrain import retrain_model
from .tracking.search import search_runs
from .tracking.interact import InteractiveRuns, interact
from .tracking.sweep import SweepResult, sweep
from .serving import (
    ModelServer,
    compare_versions,
    log_labels,
    prune_predictions,
    score_file,
    serve,
)
from .store import Store
from .tracking.runs import (
    ActiveRun,
    active_run,
    end_run,
    get_run,
    log_artifact,
    log_bytes,
    log_dataset,
    log_figure,
    log_metric,
    log_metrics,
    log_param,
    log_params,
    set_tag,
    set_tags,
    start_run,
)
from .store.current import get_store, reset_store, set_store
from .teamsync import PullResult, SyncResult, pull, pulled_versions, sync
from .tracking.user import set_user


__all__ = [
    "ActiveRun", "DriftProfile", "DriftReport", "EvaluationComparison", "EvaluationResult",
    "IntegrityError", "MLOpsError", "ModelSerializationError", "ModelServer", "ModelVersion",
    "NotFoundError", "ReplayScript", "SchemaVersionError", "Store", "StoreCorruptError",
    "StoreError", "StoreFullError", "StoreLockedError", "StoreMissingError",
    "StoreOwnershipError", "StoreReadOnlyError", "TamperedError", "UntrustedPickleError",
    "UntrustedRecordError", "ValidationError", "active_run", "cell_history",
    "compare_evaluations", "compare_runs", "compare_versions", "delete_alias", "drift_profile",
    "drift_report", "end_run", "evaluate", "export_mlflow", "get_drift_report",
    "get_evaluation", "get_model_version", "get_run", "get_store", "list_alerts",
    "list_models", "load_drift_profile", "load_model", "log_artifact", "log_bytes",
    "log_dataset", "log_figure", "log_labels", "log_metric", "log_metrics", "log_param",
    "log_params", "model_versions", "monitor", "prune_predictions", "reference_sample",
    "register_model", "replay", "reset_store", "retrain_model", "score_file", "search_runs",
    "serve", "set_alias", "set_store", "set_tag", "set_tags", "start_run", "trust_model",
    "Provenance", "provenance", "NotebookRun", "run_notebook",
    "CheckResult", "MetricThreshold", "check", "list_schedules", "schedule", "unschedule",
    "maturity", "ModelCard", "describe", "model_card",
    "DataPolicy", "get_data_policy", "get_dataset",
    "list_datasets", "set_data_policy", "DataDiff", "DataQuality", "data_quality",
    "diff_datasets", "SweepResult", "sweep", "InteractiveRuns", "interact",
    "PullResult", "SyncResult", "pull", "pulled_versions", "sync",
    "set_user",
]


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext jupyter_mlops``: register the magics and start capturing cells."""
    from .magics import load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext jupyter_mlops``: stop capturing; nothing stored is touched."""
    from .magics import unload

    unload(ipython)


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """The prebuilt JupyterLab extension shipped in this package (the sidebar)."""
    return [{"src": "labextension", "dest": "jupyter-mlops"}]


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    """The Jupyter server extension: the REST API the sidebar reads."""
    return [{"module": "jupyter_mlops"}]


def _load_jupyter_server_extension(server_app: Any) -> None:
    """Called by jupyter_server; tornado and jupyter_server are imported only here."""
    from .server import setup

    setup(server_app)
