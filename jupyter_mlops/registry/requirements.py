"""Which distributions a registered model needs, at the versions its session ran.

The modules come from the model's own bytes: every class and function a pickle refers to
is named in it (``GLOBAL`` / ``STACK_GLOBAL``), read here with ``pickletools`` without
unpickling anything. Each top-level module is mapped to the distribution that installs it
(``importlib.metadata.packages_distributions`` of this interpreter, else a distribution of
the same name), and its version is read from the environment recorded for the kernel
session that made the model, not from the exporting interpreter. That record must carry
this user's signature, as the version's row does: requirement files are read by
installers. Without a vouched record the caller keeps its older rule.
"""

from __future__ import annotations

import pickletools
import sys
import warnings
from typing import Any

from ..entities import Environment
from ..tracking.environment import canonical, session_environment

_STRINGS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "STRING",
            "BINSTRING", "SHORT_BINSTRING"}
_NOT_DISTRIBUTED = {"__main__", "builtins", "__builtin__"}


def pickle_modules(data: bytes) -> set[str]:
    """The modules a pickle imports when loaded, read from its opcodes (None of it runs)."""
    modules: set[str] = set()
    memo: dict[int, Any] = {}
    recent: list[Any] = []  # the last two values pushed: STACK_GLOBAL's module and name
    for opcode, arg, _ in pickletools.genops(data):
        name = opcode.name
        if name in _STRINGS:
            recent.append(arg)
        elif name == "MEMOIZE":
            memo[len(memo)] = recent[-1] if recent else None
            continue
        elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
            memo[arg] = recent[-1] if recent else None
            continue
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            recent.append(memo.get(arg))
        elif name == "GLOBAL":
            modules.add(str(arg).split(" ", 1)[0])
            recent.append(None)
        elif name == "STACK_GLOBAL":
            if len(recent) >= 2 and isinstance(recent[-2], str):
                modules.add(recent[-2])
            recent.append(None)
        else:
            recent.append(None)
        del recent[:-2]
    return modules


def top_level(modules: set[str]) -> set[str]:
    """Top-level names of ``modules`` that an installer provides (no standard library,
    under its names of today or, in pickles of protocol 0 to 2, of Python 2)."""
    import _compat_pickle

    stdlib = getattr(sys, "stdlib_module_names", frozenset()) | set(
        _compat_pickle.IMPORT_MAPPING)
    tops = {m.split(".", 1)[0] for m in modules if m}
    return {m for m in tops if m not in stdlib and m not in _NOT_DISTRIBUTED}


def _session_of(store, version) -> str | None:
    if version.run_id:
        rows = store.query("SELECT session_id FROM runs WHERE run_id = ?", (version.run_id,))
        if rows and rows[0][0]:
            return rows[0][0]
    if version.cell is not None:
        rows = store.query("SELECT session_id FROM cells WHERE id = ?", (version.cell,))
        if rows:
            return rows[0][0]
    return None


def version_environment(store, version) -> Environment | None:
    """The vouched environment of the session that made ``version``, or None (with one
    warning when there is a record this user did not sign)."""
    environment = session_environment(store, _session_of(store, version))
    if environment is None or environment.sha256 is None:
        return None
    if not environment.vouched:
        warnings.warn(
            f"The environment recorded for {version.name}/{version.version}'s session is not "
            "signed by you, so its versions are not used; requirements come from the "
            "version's own record instead.", stacklevel=3)
        return None
    return environment


def distributions(modules: set[str], environment: Environment,
                  installed: dict[str, list[str]] | None = None
                  ) -> tuple[list[tuple[str, str | None]], list[str]]:
    """``(name, version)`` of the distributions that provide ``modules`` (versions from
    ``environment``), and the modules no distribution provides."""
    if installed is None:
        from importlib.metadata import packages_distributions

        installed = packages_distributions()
    recorded = {canonical(name): (name, version)
                for name, version in environment.packages.items()}
    found: dict[str, tuple[str, str | None]] = {}
    orphans = []
    for module in sorted(modules):
        names = installed.get(module) or ([module] if canonical(module) in recorded else [])
        # A namespace package spreads over several distributions: the session's ones.
        names = [n for n in names if canonical(n) in recorded] or names
        if not names:
            orphans.append(module)
        for name in names:
            found.setdefault(canonical(name), recorded.get(canonical(name), (name, None)))
    return list(found.values()), orphans


def model_requirements(store, version, data: bytes
                       ) -> tuple[str | None, list[tuple[str, str | None]]] | None:
    """``(python version, [(distribution, version), ...])`` for ``version``'s bytes ``data``
    from its session's environment: the distribution of the model's own class first. None
    when no vouched environment is recorded."""
    from importlib.metadata import packages_distributions

    environment = version_environment(store, version)
    if environment is None:
        return None
    own = (version.class_name or "").split(".", 1)[0]
    try:
        modules = pickle_modules(data)
    except Exception:  # noqa: BLE001 - not a pickle (a native format): its class only
        modules = set()
    installed = packages_distributions()
    found, orphans = distributions(top_level(modules | ({own} if own else set())),
                                   environment, installed)
    if orphans:
        warnings.warn(
            f"{version.name}/{version.version} refers to module(s) "
            f"{', '.join(repr(m) for m in orphans)} that no installed distribution provides; "
            "they are left out of the requirements: ship them with the model.", stacklevel=3)
    first = ({canonical(name) for name, _ in distributions({own}, environment, installed)[0]}
             if own else set())
    found.sort(key=lambda item: (canonical(item[0]) not in first, canonical(item[0])))
    return environment.python, found
