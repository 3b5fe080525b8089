"""The model registry: versions and aliases (``versions``), the replay that rebuilds a
version from the cells that made it (``replay``), imports (``imports``) and exports
(``export``, ``standalone``)."""

from .export import export_mlflow
from .imports import import_model, model_origin
from .standalone import export_model
from .replay import ReplayScript, replay
from .versions import (
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

__all__ = [
    "ModelVersion", "ReplayScript", "delete_alias", "export_mlflow", "export_model",
    "get_model_version", "import_model", "list_models", "load_model", "model_origin",
    "model_versions", "reference_sample", "register_model", "replay", "set_alias",
    "trust_model",
]
