"""The store this process uses: the one owner of that piece of process state.

Everything that needs "the current store" asks here, so no domain module has to import
the tracking API (or the notebook layer) just to find it.
"""

from __future__ import annotations

import os
import threading

from ..errors import StoreOwnershipError
from .locate import ENV_VAR, check_owned, default_store_path, locate_store
from .sqlite import Store

_store: Store | None = None
_lock = threading.Lock()


def set_store(path: str | os.PathLike[str]) -> Store:
    """Use the store in folder ``path`` (created when missing) from now on.

    Examples
    --------
    >>> import jupyter_mlops as mlops
    >>> store = mlops.set_store("/tmp/demo-store")   # doctest: +SKIP
    """
    global _store
    with _lock:
        new = Store(path)
        if _store is not None and _store.path != new.path:
            _store.close()
        _store = new
        return new


def use_store(store: Store | None) -> Store | None:
    """Make ``store`` (an open Store, or None to forget it) the current one; returns the
    previous one, left open. For tests and tools that open a store themselves."""
    global _store
    with _lock:
        previous, _store = _store, store
        return previous


def store_location() -> tuple[str, str]:
    """The folder of the store in use (or the one ``get_store()`` would open) and why it is
    that one; opens nothing."""
    current = _store
    if current is not None:
        return str(current.path), "set in this process"
    path, why = locate_store()
    return str(path), why


def reset_store() -> None:
    """Forget the current store without closing it: the next ``get_store()`` finds the
    default location again (``$JUPYTER_MLOPS_STORE``, a ``.mlops/`` up the tree, ...)."""
    use_store(None)


def get_store() -> Store:
    """The store in use: the one set with ``set_store``, else the default location.

    The default is ``$JUPYTER_MLOPS_STORE``, else the nearest ancestor folder holding a
    ``.mlops/`` folder that this user owns and only they can write, else ``./.mlops``.
    """
    global _store
    if _store is None:
        with _lock:
            if _store is None:
                named = bool(os.environ.get(ENV_VAR))
                found = Store(default_store_path())
                if not named:
                    try:  # another user may have made ./.mlops just before we did
                        check_owned(found.path)
                    except StoreOwnershipError:
                        found.close()
                        raise
                _store = found
    return _store
