"""What an execution changed: the names it bound to new values, and the objects it may have
changed in place.

The two differ for lineage. A run whose input was *redefined* later cannot be reproduced by
running the notebook again; one whose input was *possibly modified* (a method call on it,
an item store into it) may or may not. And a method call on a module, a class or a function
(``np.zeros(3)``, ``plt.title(...)``, ``mlflow.log_param(...)``) changes nothing a model
depends on, nor does rebinding a name to the value it already held (running the import cell
again). The source says which names a cell binds and which methods it calls; what the names
hold decides the rest, so this runs after the cell, on its namespace.
"""

from __future__ import annotations

import ast
import types
from collections.abc import Mapping
from typing import Any

from ..entities import CellExecution
from .cellnames import FIT_METHODS, CellNames, analyze

_MISSING = object()
_UNKNOWN = object()  # a value too costly to compare: rebinding it counts as redefining

# Seeding the global generator changes every later draw: the module counts as modified.
_SEEDS = frozenset({"seed", "manual_seed", "set_seed", "set_random_seed"})
_CONTAINER_CHANGES = {
    list: {"append", "extend", "insert", "remove", "pop", "clear", "sort", "reverse"},
    dict: {"update", "pop", "popitem", "clear", "setdefault"},
    set: {"add", "discard", "remove", "pop", "clear", "update", "intersection_update",
          "difference_update", "symmetric_difference_update"},
    bytearray: {"append", "extend", "insert", "remove", "pop", "clear", "reverse"},
}
_ARRAY_CHANGES = {"sort", "fill", "resize", "put", "itemset", "partition", "setfield",
                  "setflags", "byteswap"}
_FRAME_CHANGES = {"insert", "pop", "update"}  # pandas changes in place only these (or inplace=)
_ESTIMATOR_CHANGES = FIT_METHODS | {"set_params", "set_output"}
# Calls that change the object whatever it is, also when reached through an attribute or
# item of the name (``models["lr"].fit(X, y)``, ``self.history.append(x)``).
_ANY_CHANGES = _ESTIMATOR_CHANGES | set().union(*_CONTAINER_CHANGES.values()) | {
    "train", "update", "fill", "compile", "load_state_dict", "load_weights", "set_weights"}
# Methods that read an object of an unknown kind without changing it.
_READS = frozenset({
    "predict", "predict_proba", "predict_log_proba", "decision_function", "score",
    "score_samples", "evaluate", "transform", "inverse_transform", "get_params", "get_config",
    "get_weights", "get_booster", "get_score", "get_feature_names_out", "feature_importance",
    "summary", "save", "save_model", "dump_model", "savefig", "show", "plot", "head", "tail",
    "describe", "info", "copy", "keys", "values", "items", "get", "count", "index", "to_csv",
    "to_json", "to_dict", "to_numpy", "to_pandas", "to_parquet", "tolist", "mean", "sum",
    "std", "min", "max", "isnull", "isna", "value_counts", "unique", "nunique", "groupby",
    "astype", "reshape", "apply", "map", "merge", "join", "query", "filter", "sort_values",
    "dropna", "fillna", "rename", "reset_index", "set_index", "format", "startswith",
    "endswith", "split", "strip", "lower", "upper", "replace", "encode", "decode",
})
_SCALARS = (int, float, complex, str, bytes, bool, type(None))
_IMMUTABLE = _SCALARS + (tuple, frozenset, range)
_INERT = (types.ModuleType, type, types.FunctionType, types.BuiltinFunctionType,
          types.MethodType)


def snapshot(names: CellNames, namespace: Mapping[str, Any]) -> dict[str, Any]:
    """What the names a cell binds hold before it runs, where sameness is cheap to tell
    (modules, classes, functions, scalars); other values are not kept alive."""
    before: dict[str, Any] = {}
    for name in names.defined:
        value = namespace.get(name, _MISSING)
        before[name] = value if value is _MISSING or _comparable(value) else _UNKNOWN
    return before


def changes(names: CellNames, before: Mapping[str, Any], namespace: Mapping[str, Any]
            ) -> tuple[list[str], list[str], list[str]]:
    """``(defined, unchanged, modified)`` of an execution that ran, from its namespace
    afterwards: the names it bound, those of them it bound to the value they already held,
    and the names whose object it may have changed in place."""
    defined, unchanged = [], []
    for name in names.defined:
        was, now = before.get(name, _UNKNOWN), namespace.get(name, _MISSING)
        if was is _MISSING and now is _MISSING:
            continue  # bound in a branch that did not run
        defined.append(name)
        if _same(was, now):
            unchanged.append(name)
    modified = list(names.changed)
    for name, method, inplace, direct in names.method_calls:
        if name not in modified and can_change(namespace.get(name, _MISSING), method,
                                               inplace, direct):
            modified.append(name)
    return defined, unchanged, [n for n in modified if n not in defined]


def can_change(value: Any, method: str, inplace: bool = False, direct: bool = True) -> bool:
    """Whether calling ``method`` on ``value`` (or on a part of it) may change it."""
    if method in _SEEDS:
        return True
    if isinstance(value, _INERT) or isinstance(value, _IMMUTABLE):
        return False
    if inplace:
        return True
    if not direct or value is _MISSING:
        return method in _ANY_CHANGES
    for kind, mutators in _CONTAINER_CHANGES.items():
        if isinstance(value, kind):
            return method in mutators
    module = type(value).__module__.split(".")[0]
    if module == "pandas":
        return method in _FRAME_CHANGES
    if module == "numpy" and hasattr(value, "__array_interface__"):
        return method in _ARRAY_CHANGES
    if callable(getattr(value, "get_params", None)) and callable(getattr(value, "fit", None)):
        return method in _ESTIMATOR_CHANGES
    return method not in _READS


def _comparable(value: Any) -> bool:
    if isinstance(value, _INERT) or isinstance(value, _SCALARS):
        return True
    return isinstance(value, tuple) and len(value) <= 64 and all(
        isinstance(v, _SCALARS) for v in value)


def _same(before: Any, after: Any) -> bool:
    """Whether rebinding left the name with the value it had: the same module, class or
    builtin, a function compiled from the same code, or an equal scalar."""
    if before is _UNKNOWN or before is _MISSING or after is _MISSING:
        return False
    if before is after:
        return True
    if type(before) is not type(after):
        return False
    if isinstance(before, types.FunctionType):
        return (before.__code__ == after.__code__ and before.__closure__ is None
                and after.__closure__ is None and before.__globals__ is after.__globals__
                and _equal(before.__defaults__, after.__defaults__)
                and _equal(before.__kwdefaults__, after.__kwdefaults__))
    if _comparable(before) and not isinstance(before, _INERT):
        return _equal(before, after)
    return False


def _equal(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - an odd __eq__ means we cannot tell: changed
        return False


def statements_run(code: str, error: BaseException, namespace: Mapping[str, Any]) -> int:
    """How many top-level statements of a cell's ``code`` finished before ``error``.

    IPython runs a cell's top-level statements one by one in the user's namespace; the
    outermost frame of the traceback that runs there is the statement that raised. Zero
    when it cannot be told (an error before the cell ran, or raised outside its code).
    """
    tb = error.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_globals is namespace and frame.f_code.co_name == "<module>":
            return statements_before(code, tb.tb_lineno)
        tb = tb.tb_next
    return 0


def statements_before(code: str, line: int) -> int:
    """The number of top-level statements of ``code`` that end before ``line``."""
    try:
        body = ast.parse(code).body
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return 0
    return sum(1 for statement in body if (statement.end_lineno or statement.lineno) < line)


def first_statements(code: str, count: int) -> str:
    """The source of the first ``count`` top-level statements of ``code``."""
    try:
        body = ast.parse(code).body
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return ""
    if count >= len(body):
        return code
    following = body[count]
    start = min([following.lineno, *(d.lineno for d in
                                     getattr(following, "decorator_list", []))])
    return "\n".join(code.split("\n")[:start - 1])


def failed_names(code: str, ran: int) -> CellNames:
    """What the statements a failed execution finished bound and read."""
    return analyze(first_statements(code, ran)) if ran else CellNames()


def took_effect(execution: CellExecution) -> bool:
    """Whether an execution's bindings count: it ran whole, or (a failed one) ran the
    statements before the one that raised."""
    if execution.status == "ok":
        return True
    return execution.status in ("error", "interrupted") and bool(execution.statements_run)
