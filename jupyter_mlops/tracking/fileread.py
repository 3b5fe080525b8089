"""The files a tracked cell reads, noted while it runs and linked to its run as inputs.

An audit hook (``sys.addaudithook``) sees every ``open`` the kernel's own thread makes,
whatever library calls it (``pd.read_csv``, ``np.load``, ``open``); pyarrow's readers open
files in C++, so while a tracked cell runs ``pyarrow.parquet.read_table`` (which
``pd.read_parquet`` calls), ``pyarrow.feather.read_table`` and ``pyarrow.csv.read_csv`` are
wrapped to note their path too, and put back when it ends. Only files under the working
directory and the policy's folders count, never the store's own, nor Python sources; at
the run's end each gets its sha256, size and mtime, kept under the data policy and linked
to the run with role ``file``.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
from typing import Any

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
MAX_FILES = 10_000  # per run
_SKIPPED_SUFFIXES = (".py", ".pyc", ".pyi", ".pth", ".so", ".ipynb")
_WRAPPED = (("pyarrow.parquet", "read_table"), ("pyarrow.feather", "read_table"),
            ("pyarrow.csv", "read_csv"))


class ReadRecorder:
    """Paths opened for reading between ``start`` and ``stop``, by the thread that started."""

    def __init__(self) -> None:
        self._paths: dict[str, None] | None = None
        self._thread: int | None = None
        self._roots: tuple[str, ...] = ()
        self._exclude = ""
        self._patched: list[tuple[Any, str, Any]] = []

    def __call__(self, event: str, args: tuple) -> None:
        if event != "open" or self._paths is None or threading.get_ident() != self._thread:
            return
        path, _, flags = args
        if path is None or isinstance(path, int) or (flags and flags & _WRITE_FLAGS):
            return
        self.note(path)

    def note(self, path: Any) -> None:
        if self._paths is None or len(self._paths) >= MAX_FILES:
            return
        try:
            absolute = os.path.abspath(os.fsdecode(path))
        except (TypeError, ValueError):
            return
        if (absolute.startswith(self._exclude) or absolute.endswith(_SKIPPED_SUFFIXES)
                or "__pycache__" in absolute or not absolute.startswith(self._roots)):
            return
        self._paths[absolute] = None

    @property
    def running(self) -> bool:
        return self._paths is not None

    def start(self, roots: list[str], exclude: str) -> None:
        self._thread = threading.get_ident()
        self._roots = tuple(os.path.join(os.path.abspath(r), "") for r in roots)
        self._exclude = os.path.join(os.path.abspath(exclude), "")
        self._paths = {}
        self._wrap_pyarrow()

    def stop(self) -> list[str]:
        """The regular files read since ``start``, in the order first read."""
        for module, name, original in self._patched:
            setattr(module, name, original)
        self._patched = []
        paths, self._paths = self._paths or {}, None
        return [p for p in paths if os.path.isfile(p)]

    def _wrap_pyarrow(self) -> None:
        if "pyarrow" not in sys.modules and "pandas" not in sys.modules:
            return
        import importlib

        for module_name, name in _WRAPPED:
            try:
                module = importlib.import_module(module_name)
            except ImportError:
                continue
            original = getattr(module, name, None)
            if original is None or getattr(original, "_jupyter_mlops_reads", False):
                continue
            setattr(module, name, self._wrapper(original))
            self._patched.append((module, name, original))

    def _wrapper(self, original: Any) -> Any:
        @functools.wraps(original)
        def read(source: Any, *args: Any, **kwargs: Any) -> Any:
            if isinstance(source, (str, os.PathLike)) and threading.get_ident() == self._thread:
                self.note(source)
            return original(source, *args, **kwargs)

        read._jupyter_mlops_reads = True  # type: ignore[attr-defined]
        return read


@functools.cache
def recorder() -> ReadRecorder:
    """This process's recorder; its audit hook is installed once (hooks cannot be removed)."""
    made = ReadRecorder()
    sys.addaudithook(made)
    return made


def start_reading(store: Any) -> bool:
    """Start noting the files read, when the store's policy asks for it."""
    from .datapolicy import data_policy

    try:
        policy = data_policy(store)
    except Exception:  # noqa: BLE001 - a store without the policy table: nothing noted
        return False
    if not policy.track_files:
        return False
    recorder().start([os.getcwd(), *policy.folders], exclude=str(store.path))
    return True


def display_path(path: str) -> str:
    """A path as a run records it: relative to the working directory when under it."""
    relative = os.path.relpath(path)
    return path if relative.startswith(os.pardir) else relative


def link_files(store: Any, run_id: str, paths: list[str]) -> int:
    """Fingerprint, keep (under the policy) and link ``paths`` to the run; how many."""
    from . import storage
    from .dvcfiles import dvc_pointers, record_pointers
    from .keeping import file_info, keep_files

    pointers = dvc_pointers(paths)
    found = keep_files(store, paths, skip=frozenset(
        p for p, pointer in pointers.items() if pointer["committed"]))
    rows = [(display_path(path), sha, size, mtime) for path, sha, size, mtime in found]
    if rows:
        with store.write() as conn:
            record_pointers(conn, [(sha[:32], pointers[path]) for path, sha, _, _ in found
                                   if path in pointers])
            storage.write_datasets(
                conn, [(name, "file", file_info(sha, size)) for name, sha, size, _ in rows],
                run_id)
            conn.executemany(
                "UPDATE run_datasets SET mtime = ? WHERE run_id = ? AND name = ? "
                "AND role = 'file'", [(mtime, run_id, name) for name, _, _, mtime in rows])
    return len(rows)


def stop_reading(store: Any, run_id: str) -> int:
    """Stop noting, and link what was read to the run."""
    rec = recorder()
    if not rec.running:
        return 0
    paths = rec.stop()
    # Most cells read no file: no policy, DVC or kept-bytes queries for them.
    return link_files(store, run_id, paths) if paths else 0
