"""Who did it: the name recorded on sessions, runs and registered versions, and sent to an
MLflow server as ``mlflow.user``.

``JUPYTER_MLOPS_USER`` (or ``set_user``) names the person when the OS login does not (a
shared service account, a container running as root); otherwise it is the OS login, as
MLflow's own client records it.
"""

from __future__ import annotations

import getpass
import os

ENV_VAR = "JUPYTER_MLOPS_USER"
_configured: str | None = None


def set_user(name: str | None) -> None:
    """Record ``name`` as the user of what this process makes from now on (None: the default)."""
    from ..errors import ValidationError, shorten

    if name is not None and (not isinstance(name, str) or not name.strip() or len(name) > 200):
        raise ValidationError(f"A user name is a non-empty text of at most 200 characters; "
                              f"got {shorten(name)}.")
    global _configured
    _configured = None if name is None else name.strip()


def current_user() -> str | None:
    """The configured name, else ``$JUPYTER_MLOPS_USER``, else the OS login (None if none)."""
    if _configured:
        return _configured
    named = os.environ.get(ENV_VAR, "").strip()
    if named:
        return named[:200]
    try:
        return getpass.getuser()
    except (KeyError, OSError, ImportError):
        return None
