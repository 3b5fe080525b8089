"""The statements of a replay script that act outside it: write files, reach the network, log
to a tracking server. Each gets a comment line above it, so whoever runs the script sees what
running it again will touch (verification runs it in a scratch folder; a user may not).
"""

from __future__ import annotations

import ast

MARK = "# side effect:"
WRITES, NETWORK, TRACKING = "writes files", "uses the network", "logs to a tracker"

# Methods and functions that write when given a destination.
_WRITE_METHODS = {"to_csv", "to_parquet", "to_pickle", "to_excel", "to_feather", "to_hdf",
                  "to_sql", "to_json", "to_stata", "to_netcdf", "to_zarr"}
_WRITE_CALLS = {"savefig", "save", "save_model", "save_weights", "dump", "dump_model",
                "savez", "savez_compressed", "savetxt", "write_text", "write_bytes",
                "makedirs", "mkdir", "remove", "unlink", "rmdir", "rmtree", "rename",
                "copyfile", "copy2", "copytree", "move", "touch", "to_filename"}
_NETWORK_MODULES = {"requests", "urllib", "httpx", "http", "aiohttp", "boto3", "s3fs",
                    "gcsfs", "ftplib", "smtplib", "socket"}
_NETWORK_CALLS = {"urlopen", "urlretrieve", "download", "wget", "hf_hub_download"}
_REMOTE = ("http://", "https://", "s3://", "gs://", "ftp://", "hf://")
_TRACKERS = {"mlflow", "wandb", "neptune", "comet_ml", "clearml", "dvclive", "aim", "mlops",
             "jupyter_mlops"}
_TRACKING_CALLS = {"log_param", "log_params", "log_metric", "log_metrics", "log_artifact",
                   "log_artifacts", "log_model", "log_figure", "log_dataset", "log_dict",
                   "log_text", "log_input", "start_run", "end_run", "set_tag", "set_tags",
                   "register_model", "set_alias", "set_experiment", "set_tracking_uri",
                   "autolog"}


def _dotted(node: ast.AST) -> list[str]:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return parts[::-1]


def _kinds(call: ast.Call) -> list[tuple[str, str]]:
    """What a call does outside the script, with the name it is known by."""
    path = _dotted(call.func)
    if not path:
        return []
    label, first, last = ".".join(path), path[0], path[-1]
    found = []
    has_args = bool(call.args or call.keywords)
    if (last == "open" and _opens_for_writing(call)) or (
            last in _WRITE_CALLS and has_args and first not in _TRACKERS) or (
            last in _WRITE_METHODS and has_args):
        found.append((WRITES, label))
    remote = any(isinstance(a, ast.Constant) and isinstance(a.value, str)
                 and a.value.startswith(_REMOTE)
                 for a in [*call.args, *(k.value for k in call.keywords)])
    if first in _NETWORK_MODULES or last in _NETWORK_CALLS or last.startswith("fetch_") \
            or remote:
        found.append((NETWORK, label))
    if first in _TRACKERS or (len(path) == 1 and last in _TRACKING_CALLS):
        found.append((TRACKING, label))
    return found


def _opens_for_writing(call: ast.Call) -> bool:
    mode = call.args[1] if len(call.args) > 1 else next(
        (k.value for k in call.keywords if k.arg == "mode"), None)
    return isinstance(mode, ast.Constant) and isinstance(mode.value, str) and any(
        c in mode.value for c in "wax+")


def _statements(body: list[ast.stmt]):
    """Every statement, with the expressions of its own line(s), not of its body."""
    for statement in body:
        own: list[ast.AST] = []
        nested: list[ast.stmt] = []
        for _, value in ast.iter_fields(statement):
            values = value if isinstance(value, list) else [value]
            for item in values:
                if isinstance(item, ast.stmt):
                    nested.append(item)
                elif isinstance(item, (ast.excepthandler, ast.match_case)):
                    nested.extend(item.body)
                    own.extend(getattr(item, "type", None) and [item.type] or [])
                elif isinstance(item, ast.AST):
                    own.append(item)
        yield statement, own
        yield from _statements(nested)


def mark_side_effects(code: str) -> str:
    """``code`` with a ``# side effect: ...`` line above each statement that has one."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return code
    marks: dict[int, dict[str, list[str]]] = {}
    for statement, own in _statements(tree.body):
        for part in own:
            for node in ast.walk(part):
                if isinstance(node, ast.Call):
                    for kind, label in _kinds(node):
                        start = min([statement.lineno, *(d.lineno for d in getattr(
                            statement, "decorator_list", []))])
                        labels = marks.setdefault(start, {}).setdefault(kind, [])
                        if label not in labels:
                            labels.append(label)
    if not marks:
        return code
    lines = code.split("\n")
    for line in sorted(marks, reverse=True):
        text = lines[line - 1]
        indent = text[:len(text) - len(text.lstrip())]
        what = "; ".join(f"{kind} ({', '.join(labels)})" for kind, labels in marks[line].items())
        lines.insert(line - 1, f"{indent}{MARK} {what}")
    return "\n".join(lines)
