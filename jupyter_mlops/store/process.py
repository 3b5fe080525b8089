"""Who is writing: enough to tell later whether a writer process is still alive.

A pid alone is not enough, since pids are reused; on Linux the process start time from
``/proc`` pins it down.
"""

from __future__ import annotations

import os
import socket
from functools import lru_cache


@lru_cache(maxsize=1)
def hostname() -> str:
    return socket.gethostname()


def _proc_stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            raw = handle.read().decode("ascii", "replace")
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    return raw[raw.rfind(")") + 2 :].split()


def process_start(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), or None off Linux."""
    fields = _proc_stat(pid)
    return fields[19] if fields and len(fields) > 19 else None


_own_start: tuple[int, str | None] | None = None


def current_process() -> tuple[int, str, str | None]:
    """``(pid, host, start)`` of this process, computed once per pid (forks get their own)."""
    global _own_start
    pid = os.getpid()
    if _own_start is None or _own_start[0] != pid:
        _own_start = (pid, process_start(pid))
    return pid, hostname(), _own_start[1]


def is_alive(pid: int | None, host: str | None, start: str | None) -> bool:
    """False only when we can tell for sure that the process is gone."""
    if pid is None or host != hostname():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    fields = _proc_stat(pid)
    if fields is None:
        return os.name != "posix" or not os.path.isdir("/proc")
    if fields[0] in ("Z", "X"):  # killed but not yet reaped by its parent
        return False
    return start is None or fields[19] == start
