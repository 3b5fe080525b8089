"""What a cell's code binds and reads, from its AST.

Cell capture stores these names for every execution; autolog uses them to tell params
(names bound only to literals) from metrics (other numbers) and to find the data a cell
read; lineage uses them for def-use slicing. Names inside functions count for the cell
that defines the function, since calling it later reads them.
"""

from __future__ import annotations

import ast
import builtins
from dataclasses import dataclass, field
from typing import Any, NamedTuple

FIT_METHODS = frozenset({"fit", "fit_transform", "fit_predict", "partial_fit"})
# ``xgb.train(params, dtrain)`` and ``lgb.train(params, train_set)``: the data comes second.
TRAIN_FUNCTIONS = frozenset({"train"})
_TRAIN_KEYWORDS = ("dtrain", "train_set")
# What a dict of hyperparameters is handed to: model.fit(X, y, **params), xgb.train(params, ...)
PARAM_CALLS = FIT_METHODS | {"train"}
# Calls whose result MLflow ties back to the data they were given (post-training metrics).
PREDICT_METHODS = frozenset({"predict", "predict_proba", "predict_log_proba", "transform"})
# Functions that change their first argument in place: ``np.random.shuffle(idx)``.
INPLACE_FUNCTIONS = frozenset({"shuffle", "fill_diagonal", "copyto", "place", "putmask",
                               "heappush", "heappop", "heapify", "heapreplace", "heappushpop"})
_BUILTINS = frozenset(dir(builtins)) | {"get_ipython", "display", "In", "Out", "exit", "quit"}


@dataclass
class CellNames:
    defined: list[str] = field(default_factory=list)
    used: list[str] = field(default_factory=list)
    literals: dict[str, Any] = field(default_factory=dict)
    assigned: list[str] = field(default_factory=list)
    fitted: list[str] = field(default_factory=list)
    fit_inputs: list[tuple[str | None, str | None]] = field(default_factory=list)
    # Literals bound once, by a statement at the cell's top level: known from the source
    # before the cell runs, so a run can show them from its first second.
    early_literals: dict[str, Any] = field(default_factory=dict)
    # Each ``fit`` call whose model has a name, in source order, with the names of its
    # X, y and sample_weight (None when not a plain name): what was fitted on what.
    fit_calls: list[FitCall] = field(default_factory=list)
    # ``name = f(...)`` at top level: the dotted name of the function (``hyperopt.fmin``).
    calls: dict[str, str] = field(default_factory=dict)
    # Names bound to model.predict(X) and the like -> "X".
    predictions: dict[str, str] = field(default_factory=dict)
    # The calls whose values the cell displays last (``rmse(y_val, y_pred)``).
    displayed: list[DisplayedCall] = field(default_factory=list)
    # Names handed to a fit or train call (dicts of params), and dicts written in such a call.
    param_names: list[str] = field(default_factory=list)
    param_literals: list[dict[Any, Any]] = field(default_factory=list)
    dict_names: list[str] = field(default_factory=list)  # names bound to a {...} display
    # Names whose object the cell changes without binding them: item, attribute and
    # augmented stores into it, in-place functions given it.
    changed: list[str] = field(default_factory=list)
    # Method calls reached through a name: (name, method, inplace=True given, called on the
    # name's own object rather than on an attribute or item of it). Whether one changes the
    # object depends on what the name holds, so it is decided after the cell ran.
    method_calls: list[tuple[str, str, bool, bool]] = field(default_factory=list)


class FitCall(NamedTuple):
    model: str
    x: str | None
    y: str | None
    sample_weight: str | None


@dataclass(frozen=True)
class DisplayedCall:
    """A call in the cell's last expression: its dotted function name, per argument its
    name (or None) and, when it is itself ``model.predict(X)``, that ``X``; and its place
    in a displayed tuple (None when the call is the whole expression)."""

    func: tuple[str, ...]
    args: tuple[tuple[str | None, str | None], ...]
    position: int | None = None


def _literal(node: ast.AST) -> tuple[bool, Any]:
    try:
        return True, ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False, None


class _Scope(ast.NodeVisitor):
    """Loads and stores of statements in evaluation order.

    ``free`` holds the names read before this code bound them: what it takes from outside.
    ``stores`` are bindings of a name (what makes it local in a function); ``changes`` are
    names whose object a method call or an attribute or item store may change, which does
    not bind the name.
    """

    def __init__(self, bound: set[str] | None = None) -> None:
        self.bound: set[str] = set() if bound is None else bound
        self.loads: list[str] = []
        self.free: list[str] = []
        self.stores: list[str] = []
        self.changes: list[str] = []
        self.calls: list[tuple[str, str, bool, bool]] = []
        self.declared: set[str] = set()  # global and nonlocal names: never local

    def load(self, name: str) -> None:
        self.loads.append(name)
        if name not in self.bound:
            self.free.append(name)

    def store(self, name: str) -> None:
        self.stores.append(name)
        self.bound.add(name)

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self.load(node.id)
        else:
            self.store(node.id)

    def change(self, name: str) -> None:
        self.changes.append(name)

    def _target_base(self, node: ast.AST) -> None:
        # `df["a"] = 1` and `model.coef_ = x` change the object bound to the base name.
        if not isinstance(node, (ast.Attribute, ast.Subscript, ast.Starred)):
            return
        while isinstance(node, (ast.Attribute, ast.Subscript, ast.Starred)):
            node = node.value
        if isinstance(node, ast.Name):
            self.change(node.id)

    def visit_Assign(self, node: ast.Assign) -> None:
        self.visit(node.value)
        for target in node.targets:
            self.visit(target)
            self._target_base(target)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit(node.value)
            self.visit(node.target)
        self._target_base(node.target)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        target = node.target
        if isinstance(target, ast.Name):
            self.load(target.id)
        else:
            self.visit(target)
        self.visit(node.value)
        if isinstance(target, ast.Name):
            self.store(target.id)
        self._target_base(target)

    def _for(self, node: ast.For | ast.AsyncFor) -> None:
        self.visit(node.iter)
        self.visit(node.target)
        for statement in [*node.body, *node.orelse]:
            self.visit(statement)

    visit_For = _for
    visit_AsyncFor = _for

    def visit_Delete(self, node: ast.Delete) -> None:
        for target in node.targets:
            self._target_base(target)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        # `model.fit(X, y)` or `items.append(x)` may change the object, not the binding.
        func = node.func
        self.generic_visit(node)
        if not isinstance(func, ast.Attribute):
            name = func.id if isinstance(func, ast.Name) else None
            if name in INPLACE_FUNCTIONS and node.args and isinstance(node.args[0], ast.Name):
                self.change(node.args[0].id)
            return
        if func.attr in INPLACE_FUNCTIONS and node.args and isinstance(node.args[0], ast.Name):
            self.change(node.args[0].id)
        base = func.value
        while isinstance(base, (ast.Attribute, ast.Subscript)):
            base = base.value
        if isinstance(base, ast.Name):
            inplace = any(k.arg == "inplace" and isinstance(k.value, ast.Constant)
                          and k.value.value is True for k in node.keywords)
            self.calls.append((base.id, func.attr, inplace, base is func.value))

    def _declare(self, node: ast.Global | ast.Nonlocal) -> None:
        self.declared.update(node.names)

    visit_Global = _declare
    visit_Nonlocal = _declare

    def _import(self, node: ast.Import | ast.ImportFrom) -> None:
        for alias in node.names:
            if alias.name != "*":
                self.store((alias.asname or alias.name).split(".")[0])

    visit_Import = _import
    visit_ImportFrom = _import

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        for default in node.args.defaults + [d for d in node.args.kw_defaults if d]:
            self.visit(default)
        if not isinstance(node, ast.Lambda):
            for decorator in node.decorator_list:
                self.visit(decorator)
            self.store(node.name)
        inner = _Scope({a.arg for a in _all_args(node.args)})
        body = node.body if isinstance(node.body, list) else [node.body]
        for statement in body:
            inner.visit(statement)
        # Python's rule: a name bound anywhere in the body is local, unless declared
        # global or nonlocal; calling a method on a name or storing into it binds nothing.
        local = (set(inner.stores) | {a.arg for a in _all_args(node.args)}) - inner.declared
        for name in inner.loads:
            if name not in local:
                self.load(name)

    visit_FunctionDef = _function
    visit_AsyncFunctionDef = _function
    visit_Lambda = _function

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for expr in [*node.bases, *node.decorator_list, *(k.value for k in node.keywords)]:
            self.visit(expr)
        inner = _Scope()
        for statement in node.body:
            inner.visit(statement)
        local = set(inner.stores) - inner.declared
        for name in inner.loads:
            if name not in local:
                self.load(name)
        self.store(node.name)

    def _comprehension(self, node: ast.AST) -> None:
        targets: set[str] = set()
        for generator in node.generators:  # type: ignore[attr-defined]
            collector = _Scope()
            collector.visit(generator.target)
            targets.update(collector.stores)
        inner = _Scope()
        inner.generic_visit(node)
        for name in inner.loads:
            if name not in targets:
                self.load(name)
        # Walrus targets inside a comprehension bind in the enclosing scope.
        for name in inner.stores:
            if name not in targets:
                self.store(name)
        for name in inner.changes:
            if name not in targets:
                self.change(name)
        self.calls.extend(call for call in inner.calls if call[0] not in targets)

    visit_ListComp = _comprehension
    visit_SetComp = _comprehension
    visit_DictComp = _comprehension
    visit_GeneratorExp = _comprehension


def _all_args(args: ast.arguments) -> list[ast.arg]:
    found = [*args.posonlyargs, *args.args, *args.kwonlyargs]
    if args.vararg:
        found.append(args.vararg)
    if args.kwarg:
        found.append(args.kwarg)
    return found


def _unique(names: list[str]) -> list[str]:
    return list(dict.fromkeys(names))


def _top_level_assignments(body: list[ast.stmt]):
    """Assignment-like statements outside functions and classes, in source order."""
    for statement in body:
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        yield statement
        for child_body in ("body", "orelse", "finalbody"):
            yield from _top_level_assignments(getattr(statement, child_body, []) or [])
        for handler in getattr(statement, "handlers", []) or []:
            yield from _top_level_assignments(handler.body)
        for case in getattr(statement, "cases", []) or []:
            yield from _top_level_assignments(case.body)


def _dotted_name(node: ast.AST) -> str | None:
    """``"a.b.c"`` for a chain of names and attributes, else None."""
    parts = _dotted(node)
    return ".".join(parts) if parts is not None else None


def _argument(call: ast.Call, position: int, keyword: str) -> str | None:
    """The plain name passed at ``position`` or as ``keyword``, else None."""
    node = call.args[position] if len(call.args) > position else next(
        (k.value for k in call.keywords if k.arg == keyword), None)
    return node.id if isinstance(node, ast.Name) else None


def _fit_calls(tree: ast.Module) -> list[FitCall]:
    # `gs = GridSearchCV(...).fit(X, y)` fits the object it binds: fit returns self.
    bound = {}
    for statement in _top_level_assignments(tree.body):
        if (isinstance(statement, ast.Assign) and len(statement.targets) == 1
                and isinstance(statement.targets[0], ast.Name)):
            bound[id(statement.value)] = statement.targets[0].id
    found = []
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)
             and isinstance(node.func, ast.Attribute) and node.func.attr in FIT_METHODS]
    for node in sorted(calls, key=lambda call: (call.lineno, call.col_offset)):
        owner = node.func.value
        model = owner.id if isinstance(owner, ast.Name) else bound.get(id(node))
        if model is not None:
            found.append(FitCall(model, _argument(node, 0, "X"), _argument(node, 1, "y"),
                                 _argument(node, 2, "sample_weight")))
    return found


def analyze(code: str) -> CellNames:
    """Names a cell defines and reads, its literal bindings and its ``fit`` calls."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return CellNames()
    result = CellNames()
    scope = _Scope()
    for statement in tree.body:
        scope.visit(statement)
    result.defined = _unique(scope.stores)
    result.changed = _unique(scope.changes)
    result.method_calls = list(dict.fromkeys(scope.calls))
    result.used = _unique(n for n in scope.free if n not in _BUILTINS)

    literal_values: dict[str, Any] = {}
    non_literal: set[str] = set()
    assigned: list[str] = []
    top_level = {id(statement) for statement in tree.body}
    bindings: dict[str, int] = {}
    outermost: set[str] = set()
    for statement in _top_level_assignments(tree.body):
        if isinstance(statement, (ast.Assign, ast.AnnAssign)):
            for target in (statement.targets if isinstance(statement, ast.Assign)
                           else [statement.target]):
                for node in ast.walk(target):
                    if isinstance(node, ast.Name):
                        bindings[node.id] = bindings.get(node.id, 0) + 1
                        if id(statement) in top_level:
                            outermost.add(node.id)
        if isinstance(statement, ast.Assign):
            pairs = []
            for target in statement.targets:
                if isinstance(target, ast.Name):
                    pairs.append((target.id, statement.value))
                elif isinstance(target, (ast.Tuple, ast.List)) and isinstance(
                    statement.value, (ast.Tuple, ast.List)
                ) and len(target.elts) == len(statement.value.elts):
                    pairs.extend(
                        (t.id if isinstance(t, ast.Name) else None, v)
                        for t, v in zip(target.elts, statement.value.elts)
                    )
                else:
                    collector = _Scope()
                    collector.visit(target)
                    non_literal.update(collector.stores)
                    assigned.extend(n for n in collector.stores if isinstance(target, ast.Tuple))
            for name, value in pairs:
                if name is None:
                    continue
                if isinstance(value, ast.Call) and (callee := _dotted_name(value.func)):
                    result.calls[name] = callee
                ok, literal = _literal(value)
                if ok:
                    literal_values[name] = literal
                else:
                    non_literal.add(name)
                assigned.append(name)
        elif isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
            name = statement.target.id
            ok, literal = _literal(statement.value) if statement.value else (False, None)
            (literal_values.__setitem__(name, literal) if ok else non_literal.add(name))
            assigned.append(name)
        elif isinstance(statement, ast.AugAssign) and isinstance(statement.target, ast.Name):
            non_literal.add(statement.target.id)
            assigned.append(statement.target.id)
        elif isinstance(statement, (ast.For, ast.AsyncFor, ast.With, ast.AsyncWith)):
            collector = _Scope()
            for target in ([statement.target] if hasattr(statement, "target") else
                           [i.optional_vars for i in statement.items if i.optional_vars]):
                collector.visit(target)
            non_literal.update(collector.stores)
    logs_params = False
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            called = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(
                node.func, "id", None)
            logs_params = logs_params or called in ("log_param", "log_params")
        if isinstance(node, ast.NamedExpr):
            non_literal.add(node.target.id)
            assigned.append(node.target.id)
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in FIT_METHODS):
            if isinstance(node.func.value, ast.Name):
                result.fitted.append(node.func.value.id)
            args = [a.id if isinstance(a, ast.Name) else None for a in node.args[:2]]
            while len(args) < 2:
                args.append(None)
            result.fit_inputs.append((args[0], args[1]))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in TRAIN_FUNCTIONS):
            data = node.args[1] if len(node.args) > 1 else next(
                (k.value for k in node.keywords if k.arg in _TRAIN_KEYWORDS), None)
            if isinstance(data, ast.Name):
                result.fit_inputs.append((data.id, None))
    result.literals = {k: v for k, v in literal_values.items() if k not in non_literal}
    # A cell that logs params itself may log one of these names with another value, and
    # explicit calls win: its literals wait for the end, as before.
    if not logs_params:
        result.early_literals = {k: v for k, v in result.literals.items()
                                 if bindings.get(k) == 1 and k in outermost}
    result.assigned = _unique(n for n in assigned if n not in result.literals)
    result.fitted = _unique(result.fitted)
    result.fit_calls = _fit_calls(tree)
    _read_untidy(tree.body, result)
    return result


def _dotted(node: ast.AST) -> tuple[str, ...] | None:
    """``a.b.c`` as ("a", "b", "c"); None for anything but names and attributes."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return (node.id, *reversed(parts))


def _predicted_from(node: ast.AST) -> str | None:
    """``X`` for ``<model>.predict(X)`` (or ``predict_proba(X)[:, 1]``), else None."""
    while isinstance(node, ast.Subscript):
        node = node.value
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr in PREDICT_METHODS and node.args
            and isinstance(node.args[0], ast.Name)):
        return node.args[0].id
    return None


def _read_untidy(body: list[ast.stmt], result: CellNames) -> None:
    """What notebooks bind without saying so: predictions, a displayed metric call, dicts
    of params handed to a fit or train call."""
    for statement in _top_level_assignments(body):
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
            target = statement.targets[0]
            if isinstance(target, ast.Name):
                source = _predicted_from(statement.value)
                if source is not None:
                    result.predictions[target.id] = source
                else:
                    result.predictions.pop(target.id, None)
                if isinstance(statement.value, ast.Dict):
                    result.dict_names.append(target.id)
    for node in ast.walk(ast.Module(body=body, type_ignores=[])):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in PARAM_CALLS):
            continue
        for value in [*node.args, *(k.value for k in node.keywords)]:
            if isinstance(value, ast.Name):
                result.param_names.append(value.id)
            elif isinstance(value, ast.Dict):
                entries = {}
                for key, item in zip(value.keys, value.values):
                    ok_key, k = _literal(key) if key is not None else (False, None)
                    ok_value, v = _literal(item)
                    if ok_key and ok_value:
                        entries[k] = v
                if entries:
                    result.param_literals.append(entries)
    result.param_names = _unique(result.param_names)
    last = body[-1] if body else None
    if isinstance(last, ast.Expr):
        several = isinstance(last.value, ast.Tuple)
        for position, node in enumerate(last.value.elts if several else [last.value]):
            func = _dotted(node.func) if isinstance(node, ast.Call) else None
            if func is None:
                continue
            args = [*node.args, *(k.value for k in node.keywords)]
            result.displayed.append(DisplayedCall(func, tuple(
                (a.id if isinstance(a, ast.Name) else None, _predicted_from(a)) for a in args),
                position if several else None))
