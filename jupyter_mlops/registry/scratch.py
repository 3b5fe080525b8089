"""The scratch folder a replay is verified in, so running it again changes none of the user's
files, tracking stores or settings.

The replay runs in a copy of the folder the notebook ran in: its directories made anew, its
small files (and every file the script names in a string) copied, larger ones linked for
reading. ``HOME``, the temporary folder, ``MLFLOW_TRACKING_URI`` and our own store point into
the scratch folder. In the replay process an audit hook lets the script write only inside
it: opening a linked file for writing (or connecting SQLite to it) first replaces the link
with a copy, and a write, removal or rename anywhere else is refused with one line that
says where. Code that writes through C without Python's ``open`` (some model savers) is
covered by the copies of the files the script names.

Run as a script (``python .../registry/scratch.py SPEC``) it is that replay process: it runs
the replay as ``__main__``, then compares what it rebuilt with the registered version. It is
started as a file, not with ``-m``, so that nothing but the standard library is imported
before the replay: the time verification takes stays the time the cells took.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

COPY_LIMIT = 4 * 2**20  # files up to this size are copied, larger ones linked
NAMED_COPY_BUDGET = 512 * 2**20  # larger files the script names are copied up to this total
MAX_ENTRIES = 20_000  # past this many files, folders are linked rather than walked
_SKIPPED_DIRS = {".mlops", ".git", ".ipynb_checkpoints", "__pycache__", ".venv", "venv",
                 "node_modules", ".tox", ".mypy_cache", ".pytest_cache"}


class Scratch:
    """A scratch folder: ``work`` (the copy of the notebook's folder) and the environment
    the replay runs with."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.root = Path(folder).resolve()
        self.work = self.root / "work"
        for sub in ("work", "home", "tmp"):  # mlruns: MLflow makes it, with its default
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    def mirror(self, source: str | os.PathLike[str] | None, script: str) -> None:
        """Fill ``work`` from the folder ``source`` (nothing when it is gone)."""
        if not source or not os.path.isdir(source):
            return
        source = Path(source).resolve()
        named = _named_paths(script)
        entries, budget = 0, NAMED_COPY_BUDGET
        for folder, dirs, files in os.walk(source):
            here = Path(folder)
            target = self.work / here.relative_to(source)
            target.mkdir(exist_ok=True)
            walked = []
            for name in dirs:
                if name in _SKIPPED_DIRS:
                    continue
                if entries > MAX_ENTRIES:  # a huge tree (a home folder): read it in place
                    os.symlink(here / name, target / name)
                else:
                    walked.append(name)
            dirs[:] = walked
            for name in files:
                entries += 1
                path, relative = here / name, (here / name).relative_to(source)
                try:
                    size = path.stat().st_size
                except OSError:
                    continue
                if size <= COPY_LIMIT or (relative.as_posix() in named and size <= budget):
                    if size > COPY_LIMIT:
                        budget -= size
                    shutil.copy2(path, target / name)
                else:
                    os.symlink(path, target / name)

    def environment(self, base: dict[str, str]) -> dict[str, str]:
        """``base`` with home, temporary folder and tracking stores in the scratch folder."""
        from ..store.signing import key_path

        env = {k: v for k, v in base.items()
               if k not in ("JPY_SESSION_NAME", "JUPYTER_MLOPS_NOTEBOOK")
               and not k.startswith("XDG_")}
        # Matplotlib's font cache is read from where it is (building one takes seconds).
        cache = Path(base.get("MPLCONFIGDIR") or Path.home() / ".cache" / "matplotlib")
        if cache.is_dir():
            env["MPLCONFIGDIR"] = str(cache)
        env.update({
            "HOME": str(self.root / "home"), "TMPDIR": str(self.root / "tmp"),
            "MLFLOW_TRACKING_URI": (self.root / "mlruns").as_uri(),
            "MLFLOW_ALLOW_FILE_STORE": "true",  # MLflow 3 asks for it; a database costs seconds
            "JUPYTER_MLOPS_STORE": str(self.root / "store"),
            # The key stays the user's: the comparison loads the registered version.
            "JUPYTER_MLOPS_KEY_FILE": str(key_path().resolve()),
            "JUPYTER_MLOPS_SCRATCH": str(self.root),
            "MPLBACKEND": "Agg", "PYTHONDONTWRITEBYTECODE": "1",
        })
        return env


def _named_paths(script: str) -> set[str]:
    """Relative paths the script spells out in its strings."""
    try:
        tree = ast.parse(script)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return set()
    return {os.path.normpath(node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and 0 < len(node.value) < 4096 and not os.path.isabs(node.value)}


# -- in the replay process -------------------------------------------------------------

class Guard:
    """An audit hook: writes stay inside ``root``; a linked file is copied before it is
    written."""

    _WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
    _PATH_EVENTS = {"os.remove": (0,), "os.rmdir": (0,), "os.rename": (0, 1),
                    "os.link": (1,), "os.symlink": (1,), "os.truncate": (0,),
                    "os.mkdir": (0,), "os.chmod": (0,), "os.chown": (0,), "os.utime": (0,),
                    "shutil.rmtree": (0,), "shutil.copyfile": (1,), "shutil.move": (1,)}

    def __init__(self, root: str) -> None:
        self.root = os.path.realpath(root)
        self.active = True
        self._busy = False

    def __call__(self, event: str, args: tuple) -> None:
        if not self.active or self._busy:
            return
        if event == "open":
            path, _, flags = args
            if path is not None and not isinstance(path, int) and flags & self._WRITE_FLAGS:
                self._writing(path)
        elif event == "sqlite3.connect":
            database = args[0]
            if isinstance(database, (str, bytes, os.PathLike)) and os.fsdecode(database) \
                    not in ("", ":memory:") and not os.fsdecode(database).startswith("file:"):
                self._writing(database)
        elif event in self._PATH_EVENTS:
            for index in self._PATH_EVENTS[event]:
                if index < len(args) and isinstance(args[index], (str, bytes, os.PathLike)):
                    self._check(args[index])

    def _inside(self, path: str) -> bool:
        return path == self.root or path.startswith(self.root + os.sep)

    def _check(self, path: Any) -> str:
        absolute = os.path.abspath(os.fsdecode(path))
        if absolute.startswith("/dev/"):
            return absolute
        if self._inside(absolute) and self._inside(os.path.realpath(os.path.dirname(absolute))):
            return absolute
        raise PermissionError(
            f"Replay verification writes only inside its scratch folder; the script tried "
            f"to change {os.fsdecode(path)!r}, which is left as it is.")

    def _writing(self, path: Any) -> None:
        absolute = self._check(path)
        if os.path.islink(absolute):
            self._busy = True
            try:
                target = os.path.realpath(absolute)
                os.unlink(absolute)
                shutil.copy2(target, absolute)
                for suffix in ("-wal", "-journal"):  # a SQLite database comes with these
                    if os.path.exists(target + suffix) and not os.path.exists(absolute + suffix):
                        shutil.copy2(target + suffix, absolute + suffix)
            finally:
                self._busy = False


def _display(*objects: Any, **options: Any) -> None:
    """What ``display`` is in a notebook; a script has nothing to show it on."""


def _tables(namespace: dict[str, Any], expressions: list[str]):
    """``(expression, value)`` of the data a model may predict from: the ``expressions``
    first (names, or what a cell passed to ``fit``), then every table the script bound."""
    from jupyter_mlops.tracking.datasets import data_kind

    def table(value: Any) -> bool:
        if isinstance(value, type):
            return False
        if isinstance(value, list):  # records, as a DictVectorizer reads them
            return bool(value) and isinstance(value[0], dict)
        shape = getattr(value, "shape", None)
        if isinstance(shape, tuple):
            return len(shape) >= 2  # a target, or not data: a model takes a table
        # XGBoost's and LightGBM's own, which have no shape
        return data_kind(value) in ("dmatrix", "lgb_dataset")

    for expression in expressions:
        try:
            value = eval(expression, namespace)  # noqa: S307 - from the user's signed cells
        except Exception:  # noqa: BLE001 - not bound by the script: try the next
            continue
        if table(value):
            yield expression, value
    for name, value in list(namespace.items()):
        if not name.startswith("_") and table(value):
            yield name, value


def _bare_package() -> None:
    """Let the comparison import the few modules it needs without the package's whole
    public API (drift, serving, evaluation, ...), which costs a few tenths of a second on
    every verification: the package is entered without running its ``__init__``. Only
    when the replayed cells did not import it themselves."""
    import importlib.util

    if "jupyter_mlops" in sys.modules:
        return
    spec = importlib.util.find_spec("jupyter_mlops")
    if spec is not None and spec.submodule_search_locations is not None:
        sys.modules["jupyter_mlops"] = importlib.util.module_from_spec(spec)


def _compare(namespace: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    # Absolute imports: in the replay process this file runs as a script, not in its package.
    import numpy as np

    _bare_package()

    from jupyter_mlops.registry.chain import as_pipeline, variable_parts
    from jupyter_mlops.registry.versions import load_model
    from jupyter_mlops.store import Store
    from jupyter_mlops.tracking.datasets import data_kind, fingerprint
    from jupyter_mlops.tracking.frameworks import plain_data, predictor

    result: dict[str, Any] = {"fingerprints": {}, "missing": [], "unreadable": []}
    for name in spec["datasets"]:
        value = namespace.get(name)
        info = fingerprint(value) if value is not None else None
        result["fingerprints"][name] = info["fingerprint"] if info else None
        if value is not None and info is None and data_kind(value) == "lgb_dataset":
            result["unreadable"].append(name)  # its rows were freed once trained on
    parts = variable_parts(spec["variable"])
    missing = [part for part in parts if namespace.get(part) is None]
    result["missing"].extend(missing)
    rebuilt = None
    if not missing:
        rebuilt = namespace[parts[0]] if len(parts) == 1 else as_pipeline(
            [namespace[part] for part in parts], parts)
    registered = load_model(spec["uri"], store=Store(spec["store"], read_only=True))
    for name, X in _tables(namespace, spec["train"]) if rebuilt is not None else ():
        try:
            X = plain_data(X)  # a DMatrix or lgb.Dataset: its rows
            theirs = np.asarray(predictor(registered).predict(X))
        except Exception:  # noqa: BLE001 - not what this model predicts from; try the next
            continue
        mine = np.asarray(predictor(rebuilt).predict(X))
        result["rows"], result["compared_on"] = int(len(theirs)), name
        if mine.shape != theirs.shape:
            result["equal"] = False
            result["first_difference"] = {"row": None, "rebuilt": f"shape {mine.shape}",
                                          "registered": f"shape {theirs.shape}"}
            break
        diff = np.flatnonzero(np.asarray(mine != theirs).reshape(len(theirs), -1).any(axis=1))
        result["equal"] = bool(diff.size == 0)
        if diff.size:
            i = int(diff[0])
            result["first_difference"] = {"row": i, "rebuilt": repr(mine[i]),
                                          "registered": repr(theirs[i])}
        break
    return result


def _main(spec_path: str) -> None:
    import builtins
    import time
    import types

    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    sys.path[0] = os.getcwd()  # the notebook's folder, as in the kernel: its helper modules
    guard = Guard(spec["root"])
    sys.addaudithook(guard)
    if not hasattr(builtins, "display"):
        builtins.display = _display  # type: ignore[attr-defined]
    main = types.ModuleType("__main__")
    main.__file__ = spec["script"]
    sys.modules["__main__"] = main  # classes the script defines pickle as the notebook's do
    code = compile(Path(spec["script"]).read_text(encoding="utf-8"), spec["script"], "exec")
    started = time.perf_counter()
    exec(code, main.__dict__)  # noqa: S102 - the user's own cells, signed at registration
    ran_s = time.perf_counter() - started
    guard.active = False
    result = _compare(main.__dict__, spec)
    result["script_s"], result["compare_s"] = ran_s, time.perf_counter() - started - ran_s
    Path(spec["out"]).write_text(json.dumps(result, allow_nan=False), encoding="utf-8")
    _quick_exit()


def _quick_exit() -> None:
    """End the process once the result is written, without tearing down every module the
    replay imported: freeing scipy's, pandas' and a framework's modules and objects one by
    one takes a second or more and changes nothing. The exit handlers still run (a pool of
    worker processes is shut down, a tracker flushes into the scratch folder)."""
    import atexit

    try:
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(0)


if __name__ == "__main__":
    _main(sys.argv[1])
