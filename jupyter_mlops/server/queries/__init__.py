"""Every store read the server makes, each returning plain, JSON-ready dicts.

Handlers call these in a worker thread and serialise the result with
``json.dumps(..., allow_nan=False)``: a float that is NaN or infinite never reaches the
JSON; it becomes ``null`` with a marker beside it (``"nonfinite": "nan" | "inf" | "-inf"``,
the names ``store.jsoncodec`` gives them).
A ``store`` of None means no kernel has created the store yet: lists are empty and any
single thing asked for is not found. One module per concept; handlers use only the names
exported here.
"""

from .artifacts import Artifact, artifact_info, open_artifact, store_status
from .cells import list_sessions, session_cells
from .compare import compare
from .data import data_preview, model_card_html
from .models import check_model_name, delete_alias, list_models, model_detail, set_alias
from .schedules import list_schedules
from .runs import MAX_PAGE, STATUSES, check_run_id, list_runs, run_detail
from .values import Relative, number, plain

__all__ = [
    "MAX_PAGE", "STATUSES", "Artifact", "Relative", "artifact_info", "check_model_name",
    "check_run_id", "compare", "data_preview", "delete_alias", "list_models", "list_runs",
    "list_schedules", "list_sessions", "model_card_html",
    "model_detail", "number", "open_artifact", "plain", "run_detail", "session_cells",
    "set_alias", "store_status",
]
