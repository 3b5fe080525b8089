"""jupyter_mlops: MLOps that lives inside the notebook.

``%load_ext jupyter_mlops`` records every cell execution; ``%%track`` turns a cell into a
run. Everything is also a plain Python call, listed in ``__all__``. Importing this package
loads neither pandas, scikit-learn, matplotlib nor scipy: they are imported when used.
"""

from __future__ import annotations

from typing import Any

from ._version import __version__ as __version__
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

# The public API, name -> the module that defines it. A name is imported on first use
# (PEP 562), so ``import jupyter_mlops`` and ``%load_ext`` load only what a cell needs:
# a notebook that never serves a model never imports the server.
_EXPORTS: dict[str, str] = {
    "DriftProfile": ".drift",
    "DriftReport": ".drift",
    "drift_profile": ".drift",
    "drift_report": ".drift",
    "get_drift_report": ".drift",
    "load_drift_profile": ".drift",
    "DataDiff": ".drift.datadiff",
    "diff_datasets": ".drift.datadiff",
    "DataQuality": ".drift.quality",
    "data_quality": ".drift.quality",
    "EvaluationComparison": ".evaluation",
    "EvaluationResult": ".evaluation",
    "compare_evaluations": ".evaluation",
    "evaluate": ".evaluation",
    "get_evaluation": ".evaluation",
    "CheckResult": ".monitoring.gates",
    "MetricThreshold": ".monitoring.gates",
    "check": ".monitoring.gates",
    "maturity": ".monitoring.maturity",
    "list_alerts": ".monitoring.monitor",
    "monitor": ".monitoring.monitor",
    "retrain_model": ".monitoring.retrain",
    "list_schedules": ".monitoring.triggers",
    "schedule": ".monitoring.triggers",
    "unschedule": ".monitoring.triggers",
    "ModelCard": ".registry.cards",
    "describe": ".registry.cards",
    "model_card": ".registry.cards",
    "export_mlflow": ".registry.export",
    "ReplayScript": ".registry.replay",
    "replay": ".registry.replay",
    "ModelVersion": ".registry.versions",
    "delete_alias": ".registry.versions",
    "get_model_version": ".registry.versions",
    "list_models": ".registry.versions",
    "load_model": ".registry.versions",
    "model_versions": ".registry.versions",
    "reference_sample": ".registry.versions",
    "register_model": ".registry.versions",
    "set_alias": ".registry.versions",
    "trust_model": ".registry.versions",
    "ModelServer": ".serving",
    "compare_versions": ".serving",
    "log_labels": ".serving",
    "prune_predictions": ".serving",
    "score_file": ".serving",
    "serve": ".serving",
    "Store": ".store",
    "get_store": ".store.current",
    "reset_store": ".store.current",
    "set_store": ".store.current",
    "PullResult": ".teamsync",
    "SyncResult": ".teamsync",
    "pull": ".teamsync",
    "sync": ".teamsync",
    "compare_runs": ".tracking.compare",
    "list_datasets": ".tracking.datacatalog",
    "DataPolicy": ".tracking.datapolicy",
    "get_data_policy": ".tracking.datapolicy",
    "set_data_policy": ".tracking.datapolicy",
    "get_dataset": ".tracking.getdata",
    "cell_history": ".tracking.history",
    "InteractiveRuns": ".tracking.interact",
    "interact": ".tracking.interact",
    "NotebookRun": ".tracking.notebook_runs",
    "run_notebook": ".tracking.notebook_runs",
    "Provenance": ".tracking.provenance",
    "provenance": ".tracking.provenance",
    "ActiveRun": ".tracking.runs",
    "active_run": ".tracking.runs",
    "end_run": ".tracking.runs",
    "get_run": ".tracking.runs",
    "log_artifact": ".tracking.runs",
    "log_bytes": ".tracking.runs",
    "log_dataset": ".tracking.runs",
    "log_figure": ".tracking.runs",
    "log_metric": ".tracking.runs",
    "log_metrics": ".tracking.runs",
    "log_param": ".tracking.runs",
    "log_params": ".tracking.runs",
    "set_tag": ".tracking.runs",
    "set_tags": ".tracking.runs",
    "start_run": ".tracking.runs",
    "search_runs": ".tracking.search",
    "SweepResult": ".tracking.sweep",
    "sweep": ".tracking.sweep",
    "set_user": ".tracking.user",
    "export_model": ".registry.standalone",
    "import_model": ".registry.imports",
    "model_origin": ".registry.imports",
    "WorkerPool": ".serving",
    "build_image_context": ".serving",
    "Pipeline": ".pipelines",
    "PipelineRun": ".pipelines",
    "pipeline": ".pipelines",
    "pulled_versions": ".teamsync",
}

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
    "PullResult", "SyncResult", "pull", "sync",
    "set_user",
    "export_model", "import_model", "model_origin",
    "WorkerPool", "build_image_context",
    "Pipeline", "PipelineRun", "pipeline",
    "pulled_versions",
]




def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'jupyter_mlops' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(module, __name__), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


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
