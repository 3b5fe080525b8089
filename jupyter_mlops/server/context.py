"""What the handlers share: the store (opened on first use), the server root and a thread
pool for the SQLite work."""

from __future__ import annotations

import asyncio
import functools
import os
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from ..errors import StoreMissingError, StoreReadOnlyError
from ..store import Store
from ..store.locate import check_owned
from ..store.sqlite import DB_NAME

T = TypeVar("T")

# Absolute POSIX or Windows paths inside a message; they are cut to their last component
# before an error reaches a browser.
_ABSOLUTE_PATH = re.compile(r"""(?<![\w.~-])(?:[A-Za-z]:[\\/]|/)[^\s'"]+""")


class ServerContext:
    """The server side of the extension: one store, one root, one small thread pool."""

    def __init__(self, store_path: Path, root_dir: Path, *, workers: int = 4,
                 check_owner: bool = False) -> None:
        self.store_path = store_path
        self.root_dir = root_dir
        # True when the server chose <root>/.mlops itself: held to discovery's rule (R13).
        self.check_owner = check_owner
        self.executor = ThreadPoolExecutor(max_workers=workers,
                                           thread_name_prefix="jupyter-mlops")
        self._store: Store | None = None
        self._lock = threading.Lock()
        self.scheduler: Any = None  # the trigger scheduler this server runs, if any

    def store(self) -> Store | None:
        """The store, opened on first use; None while no kernel has created it yet.

        The server never creates the store: a read finds nothing until a kernel writes.
        A store whose file was deleted or replaced since is let go (one ``stat`` a
        request): the sidebar shows what is on disk, never what an unlinked file held.
        """
        if self._store is not None:
            try:
                self._store.check_file()
            except StoreMissingError:
                with self._lock:
                    # Not closed here: a request in another thread may still be reading
                    # it; the connection closes when the last of them lets it go.
                    self._store = None
        if self._store is None:
            with self._lock:
                if self._store is None:
                    if not (self.store_path / DB_NAME).exists():
                        return None
                    if self.check_owner:
                        check_owned(self.store_path)
                    try:
                        # Read-write, so an older schema is upgraded and runs of dead
                        # kernels are marked KILLED, as any other opener would.
                        self._store = Store(self.store_path)
                    except StoreReadOnlyError:
                        self._store = Store(self.store_path, read_only=True)
        return self._store

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """``function(*args)`` in the thread pool, awaited without blocking the loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, functools.partial(function, *args))

    def relative(self, path: str | None) -> str | None:
        """``path`` relative to the server root (POSIX), or None when it lies outside."""
        if not path:
            return None
        try:
            return Path(path).resolve().relative_to(self.root_dir).as_posix()
        except (ValueError, OSError):
            return None

    def absolute(self, relative: str) -> str:
        """The absolute path of a notebook named relative to the server root."""
        return os.path.normpath(self.root_dir / relative.lstrip("/"))

    def public_message(self, message: str) -> str:
        """An error message fit for the browser: no absolute paths of this machine."""
        return _ABSOLUTE_PATH.sub(lambda m: _last_part(m.group(0)), message)

    def close(self) -> None:
        """Stop the scheduler and the pool and close the store: a server app that stops in
        a process that goes on (tests, an embedding application) leaves nothing open."""
        if self.scheduler is not None:
            self.scheduler.stop()
        self.executor.shutdown(wait=False, cancel_futures=True)
        if self._store is not None:
            self._store.close()


def _last_part(path: str) -> str:
    trail = ""
    while path and path[-1] in ".,;:)":
        trail = path[-1] + trail
        path = path[:-1]
    name = re.split(r"[\\/]", path.rstrip("\\/"))[-1]
    return (f"…/{name}" if name else "…") + trail
