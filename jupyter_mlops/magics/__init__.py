"""The IPython side: ``%%track``, ``%mlops`` and the hooks that capture every cell."""

from __future__ import annotations

from typing import Any

_hooks = None


def load(shell: Any) -> None:
    global _hooks
    from .commands import MLOpsMagics
    from .hooks import KernelHooks
    from .track import TrackMagics

    if _hooks is not None and _hooks.shell is shell:
        return  # %load_ext twice, or %reload_ext: keep one set of hooks
    if _hooks is not None:
        _hooks.unregister()
    _hooks = KernelHooks(shell)
    _hooks.register()
    shell.register_magics(TrackMagics(shell, _hooks), MLOpsMagics(shell))


def unload(shell: Any) -> None:
    global _hooks
    if _hooks is not None:
        _hooks.unregister()
        _hooks = None
