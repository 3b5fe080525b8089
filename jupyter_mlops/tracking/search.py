"""``search_runs``: runs as a pandas DataFrame, one row a run, MLflow's column naming.

Filters and ordering are translated to SQL over indexed tables, and params are decoded
by SQLite's JSON functions, so 10,000 runs come back in a fraction of a second.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ..errors import ValidationError, shorten
from ..store import Store
from .storage import param_value as _param_value
from .storage import read_summary

ATTRIBUTES = {
    "run_id": "r.run_id",
    "experiment": "e.name",
    "name": "r.name",
    "run_name": "r.name",
    "status": "r.status",
    "start_time": "r.start_time",
    "end_time": "r.end_time",
    "duration_s": "(r.end_time - r.start_time)",
    "session_id": "r.session_id",
    "cell_id": "r.cell_id",
    "execution_count": "r.execution_count",
    "parent_run_id": "r.parent_run_id",
    "user": "r.user",
    "origin": "r.origin",
}
# ``user``: who made the run; ``origin``: the tracking server it was pulled from (None: here).
RUN_COLUMNS = ["run_id", "experiment", "name", "status", "start_time", "end_time", "duration_s",
               "session_id", "cell_id", "execution_count", "parent_run_id", "user", "origin"]

# What a filter may hold. Past these, SQLite would refuse the query (its expression tree
# is at most 1,000 deep, a LIKE pattern at most 50,000 bytes) or a number would lose its
# meaning, so the filter is refused first with the limit named.
MAX_FILTER_CHARS = 20_000
MAX_CLAUSES = 100
MAX_IN_VALUES = 1_000
MAX_NUMBER_CHARS = 40
MAX_PATTERN_CHARS = 1_000
MAX_ORDER_TERMS = 20
_SQLITE_MAX_INT = 2**63 - 1

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^']|'')*'|"(?:[^"]|"")*")
      | (?P<number>[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|inf|nan))
      | (?P<op><=|>=|!=|<>|==|=|<|>|\(|\)|,)
      | (?P<ident>(?:[A-Za-z_][\w]*\.)?(?:`[^`]+`|[\w.\-]+))
    )""",
    re.VERBOSE,
)
_OPS = {"=": "=", "==": "=", "!=": "!=", "<>": "!=", "<": "<", "<=": "<=", ">": ">",
        ">=": ">=", "LIKE": "LIKE", "ILIKE": "LIKE"}
# A bare filter name -> which of "metrics" and "params" the store has it as.
Resolver = Callable[[str], list[str]]
_EXAMPLE = "\"metrics.acc > 0.9 and params.solver = 'lbfgs'\""


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    text = text.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise ValidationError(
                f"Cannot read the filter at {shorten(text[position:], 30)}. Write clauses like "
                f"{_EXAMPLE}."
            )
        kind = match.lastgroup
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


def _number(text: str) -> int | float:
    """The number a filter literal means, or a ValidationError naming why it means none."""
    if len(text) > MAX_NUMBER_CHARS:
        raise ValidationError(
            f"A number in the filter has at most {MAX_NUMBER_CHARS} characters; got "
            f"{shorten(text, 40)} ({len(text)} characters). Write it in exponent form, "
            "such as 1e+300."
        )
    if re.fullmatch(r"[-+]?\d+", text):
        whole = int(text)  # exact, where float() would round past 2**53
        # SQLite integers are 64-bit; a larger one compares as the REAL it is anyway
        return whole if -2**63 <= whole < 2**63 else float(whole)
    value = float(text)
    if math.isnan(value):
        raise ValidationError(
            f"The filter compares with {text!r}, which equals nothing, not even nan. Compare "
            "with a number, and pick NaN values from the result in pandas."
        )
    if math.isinf(value) and "inf" not in text.lower():
        raise ValidationError(
            f"The number {shorten(text, 40)} in the filter is beyond the range of a float "
            "(about ±1.8e308); write inf or -inf to mean an infinity."
        )
    return value


def _literal(kind: str, text: str) -> Any:
    if kind == "string":
        quote = text[0]
        return text[1:-1].replace(quote * 2, quote)
    if kind == "number":
        return _number(text)
    raise ValidationError(f"Expected a number or a quoted string in the filter; got {text!r}.")


def _column(ident: str, resolve: Resolver | None = None) -> tuple[str, str | None]:
    """``(kind, key)``: kind is 'metrics', 'params', 'tags' or an attribute name.

    A bare name that is no run attribute (``accuracy``) is the metric or param of that name
    when ``resolve`` finds it in the store; else the error says how to write it."""
    if not isinstance(ident, str):
        raise ValidationError(f"A column is a string such as 'metrics.acc'; got "
                              f"{type(ident).__name__} {shorten(ident)}.")
    prefix, dot, rest = ident.partition(".")
    if dot and prefix in ("metrics", "metric", "params", "param", "tags", "tag"):
        kind = {"metric": "metrics", "param": "params", "tag": "tags"}.get(prefix, prefix)
        key = rest.strip("`")
        if not key.strip():
            raise ValidationError(f"{shorten(ident)} names no key; write {kind}.<key>, such "
                                  f"as {kind}.acc.")
        return kind, key
    if dot and prefix in ("attributes", "attribute", "attr"):
        ident = rest
    if ident in ATTRIBUTES:
        return ident, None
    key = ident.strip("`")
    kinds = resolve(key) if resolve is not None and not dot else []
    if len(kinds) == 1:
        return kinds[0], key
    if len(kinds) > 1:
        raise ValidationError(f"{shorten(key)} is both a metric and a param; write "
                              f"metrics.{key} or params.{key}.")
    lacking = ": no metric or param has that name" if resolve is not None else ""
    raise ValidationError(
        f"Unknown column {shorten(ident)} in the filter{lacking}. "
        f"Write metrics.{key}, params.{key} or tags.{key}, such as metrics.{key} > 0.9; "
        f"or use one of {', '.join(ATTRIBUTES)}."
    )


def store_resolver(store: Store) -> Resolver:
    """Which of 'metrics' and 'params' some run of ``store`` has a key of that name in."""
    def resolve(key: str) -> list[str]:
        found = []
        for kind, table in (("metrics", "latest_metrics"), ("params", "params")):
            if store.query(f"SELECT 1 FROM {table} WHERE key = ? LIMIT 1", (key,)):
                found.append(kind)
        return found

    return resolve


def _numeric_text(value: str) -> float | None:
    """The finite number a quoted value spells (MLflow users quote numbers), else None."""
    if len(value) > MAX_NUMBER_CHARS:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _compare(expr: str, op: str, value: Any, params: list[Any]) -> str:
    if isinstance(value, str) and op != "LIKE":
        number = _numeric_text(value)
        if number is not None and op in ("=", "!="):
            # MLflow users quote numbers: params.C = '0.5' matches the number 0.5 too.
            params.extend([number, value])
            joiner = " OR " if op == "=" else " AND "
            return f"({expr} {op} ?{joiner}{expr} {op} ?)"
        if number is not None:
            value = number
    params.append(value)
    return f"{expr} {op} ?"


def _in_list(tokens: list[tuple[str, str]], i: int) -> tuple[list[Any], int]:
    """``( value [, value]... )`` from ``tokens[i]``; the values and the index after it."""
    if i >= len(tokens) or tokens[i] != ("op", "("):
        raise ValidationError("IN takes a parenthesised list, such as IN ('a', 'b').")
    i += 1
    if i < len(tokens) and tokens[i] == ("op", ")"):
        raise ValidationError("IN () is empty; list at least one value, such as IN ('a').")
    values: list[Any] = []
    while True:
        if i >= len(tokens):
            raise ValidationError("The filter ends inside IN (...); close the list with ')'.")
        values.append(_literal(*tokens[i]))
        if len(values) > MAX_IN_VALUES:
            raise ValidationError(f"IN (...) holds at most {MAX_IN_VALUES:,} values; split "
                                  "the search or filter the result in pandas.")
        i += 1
        if i >= len(tokens):
            raise ValidationError("The filter ends inside IN (...); close the list with ')'.")
        if tokens[i] == ("op", ")"):
            return values, i + 1
        if tokens[i] != ("op", ","):
            raise ValidationError(f"Separate the values of IN (...) with commas; got "
                                  f"{shorten(tokens[i][1], 40)}.")
        i += 1


def _clause(tokens: list[tuple[str, str]], i: int, params: list[Any],
            resolve: Resolver | None = None) -> tuple[str, int]:
    if i >= len(tokens) or tokens[i][0] != "ident":
        raise ValidationError("Each filter clause starts with a column, such as metrics.acc.")
    kind, key = _column(tokens[i][1], resolve)
    i += 1
    if i >= len(tokens):
        raise ValidationError(f"The filter ends after {tokens[i - 1][1]!r}; add a comparison.")
    word = tokens[i][1].upper()
    negate = False
    lower = word == "ILIKE"
    if word == "IS":
        i += 1
        if i < len(tokens) and tokens[i][1].upper() == "NOT":
            negate, i = True, i + 1
        if i >= len(tokens) or tokens[i][1].upper() != "NULL":
            raise ValidationError("Write IS NULL or IS NOT NULL.")
        op, values, i = "NULL", [], i + 1
    elif word in ("IN", "NOT"):
        if word == "NOT":
            i += 1
            if i >= len(tokens) or tokens[i][1].upper() != "IN":
                raise ValidationError("Write NOT IN (...).")
            negate = True
        values, i = _in_list(tokens, i + 1)
        op = "IN"
    else:
        op = _OPS.get(word)
        if op is None:
            raise ValidationError(f"Unknown comparison {shorten(tokens[i][1], 40)} in the "
                                  "filter.")
        i += 1
        if i >= len(tokens):
            raise ValidationError("The filter ends before the value to compare with.")
        values, i = [_literal(*tokens[i])], i + 1
        if op == "LIKE":
            _check_pattern(values[0])

    if kind in ("metrics", "params", "tags"):
        table = {"metrics": "latest_metrics", "params": "params", "tags": "tags"}[kind]
        column = {"metrics": "x.value", "params": "json_extract(x.value, '$')",
                  "tags": "x.value"}[kind]
        head = f"SELECT 1 FROM {table} x WHERE x.run_id = r.run_id AND x.key = ?"
        params.append(key)
        if op == "NULL":
            return (f"EXISTS ({head})" if negate else f"NOT EXISTS ({head})"), i
        condition = _condition(column, op, values, params, lower)
        return f"{'NOT ' if negate else ''}EXISTS ({head} AND {condition})", i
    expr = ATTRIBUTES[kind]
    if op == "NULL":
        return f"{expr} IS {'NOT ' if negate else ''}NULL", i
    condition = _condition(expr, op, values, params, lower)
    return (f"NOT ({condition})" if negate else condition), i


def _check_pattern(value: Any) -> None:
    if not isinstance(value, str):
        raise ValidationError("LIKE compares with a quoted pattern, such as 'rf-%'.")
    if len(value) > MAX_PATTERN_CHARS:
        raise ValidationError(f"A LIKE pattern has at most {MAX_PATTERN_CHARS:,} characters; "
                              f"got {len(value):,}. Use = to compare with long text.")


def _condition(expr: str, op: str, values: list[Any], params: list[Any], lower: bool) -> str:
    if op == "IN":
        params.extend(values)
        return f"{expr} IN ({', '.join('?' * len(values))})"
    if lower:
        expr = f"lower({expr})"
        values = [values[0].lower()]
    return _compare(expr, op, values[0], params)


def filter_sql(text: str | None, store: Store | None = None) -> tuple[str, list[Any]]:
    """SQL for a filter such as ``"metrics.acc > 0.9 and params.C = 0.5"``.

    With ``store``, a bare name such as ``accuracy > 0.95`` means the metric or param of
    that name in the store (an error asks which when it is both).

    A filter has at most ``MAX_FILTER_CHARS`` characters and ``MAX_CLAUSES`` clauses, an
    ``IN`` list at most ``MAX_IN_VALUES`` values, a number at most ``MAX_NUMBER_CHARS``
    characters; anything it cannot mean raises ValidationError naming it.
    """
    if text is None:
        return "1", []
    if not isinstance(text, str):
        raise ValidationError(f"A filter is a string such as {_EXAMPLE}; got "
                              f"{type(text).__name__} {shorten(text)}.")
    if len(text) > MAX_FILTER_CHARS:
        raise ValidationError(f"A filter has at most {MAX_FILTER_CHARS:,} characters; got "
                              f"{len(text):,}. Filter on fewer values, or filter the result "
                              "in pandas.")
    if not text.strip():
        return "1", []
    tokens = _tokens(text)
    clauses = 1 + sum(kind == "ident" and word.upper() == "AND" for kind, word in tokens)
    if clauses > MAX_CLAUSES:
        raise ValidationError(f"A filter has at most {MAX_CLAUSES} clauses; got {clauses:,}. "
                              "Use IN (...) for many values of one column, or filter the "
                              "result in pandas.")
    params: list[Any] = []
    parts = []
    resolve = store_resolver(store) if store is not None else None
    i = 0
    while i < len(tokens):
        sql, i = _clause(tokens, i, params, resolve)
        parts.append(sql)
        if i < len(tokens):
            if tokens[i][1].upper() != "AND":
                raise ValidationError(
                    f"Filter clauses are joined with AND; got {shorten(tokens[i][1], 40)}."
                )
            i += 1
            if i == len(tokens):
                raise ValidationError("The filter ends with AND; add a clause after it.")
    return " AND ".join(parts), params


def _order_sql(order_by: Sequence[str] | str | None, params: list[Any],
               resolve: Resolver | None = None) -> tuple[str, str]:
    if not order_by:
        return "", "r.start_time DESC, r.run_id"
    order_by = _strings("order_by", order_by)
    if len(order_by) > MAX_ORDER_TERMS:
        # Each term by a metric, param or tag is a join, and SQLite joins 64 tables at most.
        raise ValidationError(f"order_by takes at most {MAX_ORDER_TERMS} terms; got "
                              f"{len(order_by)}.")
    joins, terms = [], []
    for n, item in enumerate(order_by):
        parts = item.strip().rsplit(None, 1)
        direction = "ASC"
        if len(parts) == 2 and parts[1].upper() in ("ASC", "DESC"):
            column, direction = parts[0], parts[1].upper()
        else:
            column = item.strip()
        kind, key = _column(column, resolve)
        if kind in ATTRIBUTES:
            terms.append(f"{ATTRIBUTES[kind]} {direction}")
            continue
        table = {"metrics": "latest_metrics", "params": "params", "tags": "tags"}[kind]
        value = "json_extract(o{n}.value, '$')" if kind == "params" else "o{n}.value"
        joins.append(f"LEFT JOIN {table} o{n} ON o{n}.run_id = r.run_id AND o{n}.key = ?")
        params.append(key)
        # Runs without the key go last, whichever the direction.
        terms.append(f"o{n}.value IS NULL, {value.format(n=n)} {direction}")
    terms.append("r.run_id")
    return " ".join(joins), ", ".join(terms)


def _strings(what: str, value: str | Sequence[str]) -> list[str]:
    """One string or a sequence of them, as a list; anything else is refused by name."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, Iterable) and not isinstance(value, (bytes, bytearray, Mapping)):
        values = list(value)
        if all(isinstance(v, str) for v in values):
            return values
    raise ValidationError(f"{what} is a string or a list of strings; got "
                          f"{type(value).__name__} {shorten(value)}.")


def search_runs(
    experiment: str | Sequence[str] | None = None,
    filter: str | None = None,  # noqa: A002 - MLflow's name
    order_by: Sequence[str] | str | None = None,
    max_results: int | None = None,
    *,
    store: Store | None = None,
):
    """Runs as a DataFrame: ``run_id, experiment, name, status, ...`` then ``params.<k>``,
    ``metrics.<k>`` (latest value) and ``tags.<k>``.

    A filter it cannot mean, or one past its limits (:func:`filter_sql`: 20,000
    characters, 100 clauses, 1,000 values in an IN list, 40 characters in a number), raises
    ValidationError naming the problem; so do more than 20 ``order_by`` terms.

    Examples
    --------
    >>> search_runs("iris", filter="metrics.acc > 0.9", order_by=["metrics.acc DESC"])  # doctest: +SKIP
    """
    import pandas as pd

    from ..store.current import get_store

    store = store or get_store()
    params: list[Any] = []
    joins, order = _order_sql(order_by, params, store_resolver(store))
    where, where_params = filter_sql(filter, store)
    if experiment is not None:
        # One JSON parameter however many names: SQLite caps the number of parameters.
        names = json.dumps(_strings("experiment", experiment), allow_nan=False)
        where = f"({where}) AND e.name IN (SELECT value FROM json_each(?))"
        where_params = [*where_params, names]
    limit = ""
    if max_results is not None:
        if isinstance(max_results, bool) or not isinstance(max_results, int) or max_results < 0:
            raise ValidationError(f"max_results must be a whole number ≥ 0; got "
                                  f"{shorten(max_results)}.")
        # More than SQLite's largest integer means every run, as it would anyway.
        limit = f" LIMIT {min(max_results, _SQLITE_MAX_INT)}"
    sql = (
        "SELECT r.run_id, e.name, r.name, r.status, r.start_time, r.end_time, "
        "r.end_time - r.start_time, r.session_id, r.cell_id, r.execution_count, "
        "r.parent_run_id, r.user, r.origin, r.summary "
        f"FROM runs r JOIN experiments e USING (experiment_id) {joins} "
        f"WHERE {where} ORDER BY {order}{limit}"
    )
    rows = store.query(sql, [*params, *where_params])
    params_columns: dict[str, list[Any]] = {}
    metric_columns: dict[str, list[Any]] = {}
    tag_columns: dict[str, list[Any]] = {}

    def put(columns: dict[str, list[Any]], key: str, i: int, value: Any) -> None:
        column = columns.get(key)
        if column is None:
            column = columns[key] = [None] * len(rows)
        column[i] = value

    # Finished runs carry a summary: one JSON decode per run.
    unsummarized: dict[str, int] = {}
    for i, row in enumerate(rows):
        if row[13] is None:
            unsummarized[row[0]] = i
            continue
        summary = read_summary(row[13])
        for key, value in summary["p"].items():
            put(params_columns, key, i, value)
        for key, value in summary["m"].items():
            put(metric_columns, key, i, value)
        for key, value in summary["t"].items():
            put(tag_columns, key, i, value)

    # Running (or killed) runs: read their rows.
    if unsummarized:
        selection = "WHERE run_id IN (SELECT value FROM json_each(?))"
        selection_params = [json.dumps(list(unsummarized), allow_nan=False)]
        for columns, sql_text, fix in (
            (params_columns, "SELECT run_id, key, json_extract(value, '$'), json_type(value) "
                             "FROM params", _param_value),
            (metric_columns, "SELECT run_id, key, value, is_nan FROM latest_metrics",
             lambda value, is_nan: float("nan") if is_nan or value is None else value),
            (tag_columns, "SELECT run_id, key, value, NULL FROM tags", None),
        ):
            for run_id, key, value, extra in store.query(f"{sql_text} {selection}",
                                                         selection_params):
                put(columns, key, unsummarized[run_id], fix(value, extra) if fix else value)

    data: dict[str, Any] = {name: [row[i] for row in rows] for i, name in enumerate(RUN_COLUMNS)}
    for prefix, columns in (("params", params_columns), ("metrics", metric_columns),
                            ("tags", tag_columns)):
        for key in sorted(columns):
            data[f"{prefix}.{key}"] = columns[key]
    frame = pd.DataFrame(data)
    for column in ("start_time", "end_time"):
        frame[column] = pd.to_datetime(frame[column], unit="s", utc=True)
    for key in metric_columns:
        frame[f"metrics.{key}"] = frame[f"metrics.{key}"].astype("float64")
    for key in params_columns:
        # Keep params exactly as logged: 500 stays an int, not 500.0 beside missing values.
        frame[f"params.{key}"] = pd.Series(params_columns[key], dtype=object)
    frame["duration_s"] = frame["duration_s"].astype("float64")
    frame["execution_count"] = frame["execution_count"].astype("Int64")
    from ..dashboards.frames import TextFrame
    return TextFrame(frame)
