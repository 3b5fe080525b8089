"""The IPython side: ``%%track``, ``%mlops`` and the hooks that capture every cell."""

from __future__ import annotations

from typing import Any

_hooks = None
_probe = None


def load(shell: Any) -> None:
    global _hooks, _probe
    from .commands import MLOpsMagics
    from .hooks import KernelHooks
    from .probe import StoreProbe
    from .sweep import SweepMagics
    from .track import TrackMagics

    if _hooks is not None and _hooks.shell is shell:
        return  # %load_ext twice, or %reload_ext: keep one set of hooks
    if _hooks is not None:
        _hooks.unregister()
    _say_where()  # before the hooks open the store for the cell running this
    _hooks = KernelHooks(shell)
    _hooks.register()
    shell.register_magics(TrackMagics(shell, _hooks), SweepMagics(shell, _hooks),
                          MLOpsMagics(shell))
    if _probe is not None:
        _probe.unregister()
    _probe = StoreProbe(shell, _hooks.capture.session_id)
    _probe.register()


def _say_where() -> None:
    """One line naming the store this kernel writes to, so a notebook whose runs do not
    show up elsewhere says why at once."""
    from ..errors import StoreOwnershipError
    from ..store.current import store_location

    try:
        path, why = store_location()
    except StoreOwnershipError:
        return  # the hooks say why in one line as they try to record this very cell
    print(f"jupyter_mlops: recording to {path} ({why})")


def unload(shell: Any) -> None:
    global _hooks, _probe
    if _probe is not None:
        _probe.unregister()
        _probe = None
    if _hooks is not None:
        _hooks.unregister()
        _hooks = None
