"""The IPython side: ``%%track``, ``%mlops`` and the hooks that capture every cell."""

from __future__ import annotations

from typing import Any

_hooks = None


def current_session_id() -> str | None:
    """This kernel's session id once the extension is loaded, else None."""
    return _hooks.capture.session_id if _hooks is not None else None


def flush_capture(timeout: float = 5.0) -> None:
    """Wait until this kernel's captured executions are in the store (no-op when not loaded)."""
    if _hooks is not None:
        _hooks.capture.writer.flush(timeout)


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
