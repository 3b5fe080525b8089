"""The store: where every run, cell execution and artifact is kept."""

from .locate import ENV_VAR, default_store_path
from .schema import SCHEMA_VERSION
from .sqlite import Store

__all__ = ["ENV_VAR", "SCHEMA_VERSION", "Store", "default_store_path"]
