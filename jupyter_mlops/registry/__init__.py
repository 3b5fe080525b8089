"""The model registry: versions and aliases (``versions``), the replay that rebuilds a
version from the cells that made it (``replay``), imports (``imports``) and exports
(``export``, ``standalone``).

Names load with their module on first use: a module of this package (a card, a lineage)
does not pay for the exports' numpy and packaging imports.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "export_mlflow": ".export",
    "import_model": ".imports",
    "model_origin": ".imports",
    "export_model": ".standalone",
    "ReplayScript": ".replay",
    "replay": ".replay",
    **dict.fromkeys(("ModelVersion", "delete_alias", "get_model_version", "list_models",
                     "load_model", "model_versions", "reference_sample", "register_model",
                     "set_alias", "trust_model"), ".versions"),
}

__all__ = [
    "ModelVersion", "ReplayScript", "delete_alias", "export_mlflow", "export_model",
    "get_model_version", "import_model", "list_models", "load_model", "model_origin",
    "model_versions", "reference_sample", "register_model", "replay", "set_alias",
    "trust_model",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
