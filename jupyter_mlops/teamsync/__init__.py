"""Team scale on the systems teams already run: push to and pull from an MLflow tracking
server over its REST API (``sync``, ``pull``), with a local ledger of what went where."""

from .pull import PullResult, pull
from .push import SyncResult, sync
from .versions import pulled_versions

__all__ = ["PullResult", "SyncResult", "pull", "pulled_versions", "sync"]
