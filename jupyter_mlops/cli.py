"""``jupyter-mlops``: the store from a terminal, and notebooks run headless."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .errors import MLOpsError


def _store(args):
    from .tracking import get_store, set_store

    return set_store(args.store) if args.store else get_store()


def _short(value, width: int = 60) -> str:
    from .dashboards.html import format_value

    text = format_value(value).replace("\n", "⏎")
    return text if len(text) <= width else text[: width - 1] + "…"


def print_runs(store, experiment=None, filter_text=None, limit=None) -> None:
    from .search import search_runs

    frame = search_runs(experiment, filter_text, max_results=limit, store=store)
    print(f"{len(frame)} run(s) in {store.path}")
    for row in frame.to_dict("records"):
        duration = "" if row["duration_s"] != row["duration_s"] else f"{row['duration_s']:.2f}s"
        print(f"\n  run {row['run_id'][:8]}  {row['status']:<8} {row['experiment']} / "
              f"{row['name'] or '(unnamed)'}  [{row['execution_count'] or '-'}]  {duration}")
        for prefix in ("params", "metrics", "tags"):
            items = [(k.split(".", 1)[1], v) for k, v in row.items()
                     if k.startswith(prefix + ".") and v is not None and v == v]
            items.sort(key=lambda item: "." in item[0])  # the cell's own names first
            if items:
                shown = ", ".join(f"{k}={_short(v, 30)}" for k, v in items[:12])
                more = f" (+{len(items) - 12} more)" if len(items) > 12 else ""
                print(f"    {prefix:<8} {shown}{more}")


def print_history(store, session=None) -> None:
    from .history import history_rows

    rows = history_rows(store, session)
    print(f"\n{len(rows)} cell execution(s), in the order they ran:")
    for row in rows:
        marks = []
        if row["out_of_order"]:
            marks.append("out of order")
        if row["stale"]:
            marks.append(f"stale: {row['stale']}")
        if row["status"] != "ok":
            marks.append(row["status"])
        run = f" -> run {row['run_id'][:8]}" if row["run_id"] else ""
        lines = [line for line in row["source"].strip().split("\n")
                 if line.strip() and not line.lstrip().startswith("#")]
        first_line = lines[0] if lines else row["source"].strip()
        print(f"  [{row['execution_count'] if row['execution_count'] is not None else '-':>3}] "
              f"{_short(first_line, 50):<50}{run}" + (f"  ({'; '.join(marks)})" if marks else ""))


def cmd_runs(args) -> int:
    print_runs(_store(args), args.experiment, args.filter, args.max_results)
    return 0


def cmd_show(args) -> int:
    store = _store(args)
    run = store.get_run(args.run)
    print(f"run {run.run_id}  {run.status}  {run.experiment} / {run.name or '(unnamed)'}")
    for title, mapping in (("params", run.params), ("metrics", run.metrics), ("tags", run.tags)):
        for key, value in mapping.items():
            print(f"  {title:<8} {key} = {_short(value)}")
    for item in run.inputs:
        print(f"  input    {item.name} ({item.role}) {item.fingerprint} shape={item.shape}")
    for artifact in run.artifacts:
        print(f"  artifact {artifact.name} {artifact.size} B sha256={artifact.sha256[:16]}")
    if run.error:
        print(f"  error    {run.error_type}: {run.error}")
    if run.source:
        print("  cell:\n" + "\n".join(f"    {line}" for line in run.source.splitlines()))
    return 0


def cmd_history(args) -> int:
    print_history(_store(args), "all" if args.all else args.session)
    return 0


def cmd_execute(args) -> int:
    from .runner import run_notebook

    store_path = os.path.abspath(args.store) if args.store else None
    env = {"JUPYTER_MLOPS_STORE": store_path} if store_path else {}
    print(f"Executing {args.notebook} in a fresh kernel"
          + (f", store {store_path}" if store_path else ""))
    outcomes = run_notebook(args.notebook, env=env, timeout=args.timeout)
    failed = [o for o in outcomes if o.status != "ok" and not o.expected_error]
    print(f"{len(outcomes)} code cell(s) ran, {len(failed)} failed")
    for outcome in outcomes:
        if outcome.error:
            note = " (expected: tagged raises-exception)" if outcome.expected_error else ""
            print(f"  cell {outcome.index}: {outcome.error}{note}")
    if store_path:
        os.environ["JUPYTER_MLOPS_STORE"] = store_path
    store = _store(argparse.Namespace(store=store_path))
    print()
    print_runs(store)
    print_history(store)
    return 1 if failed else 0


def cmd_models(args) -> int:
    from .registry import list_models

    frame = list_models(store=_store(args))
    print(f"{len(frame)} model(s)")
    for row in frame.to_dict("records"):
        print(f"  {row['name']:<30} latest {row['latest_version']:<4} {row['aliases']}")
    return 0


def cmd_replay(args) -> int:
    from .replay import replay

    script = replay(args.uri, verify=args.verify, store=_store(args))
    if args.output:
        script.save(args.output)
        print(f"Wrote {args.output}")
    else:
        print(script.source)
    if script.verification is not None:
        print(("verified: " if script.verification.ok else "NOT verified: ")
              + script.verification.message, file=sys.stderr)
        return 0 if script.verification.ok else 1
    return 0


def cmd_export(args) -> int:
    from .export import export_mlflow

    path = export_mlflow(args.uri, args.path, store=_store(args))
    print(f"Exported {args.uri} as an MLflow model at {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jupyter-mlops", description="Runs, cell history and notebooks of a jupyter_mlops store.")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, help_text: str, handler) -> argparse.ArgumentParser:
        command = sub.add_parser(name, help=help_text)
        command.add_argument("--store", default=None,
                             help="store folder (default: $JUPYTER_MLOPS_STORE or nearest .mlops)")
        command.set_defaults(handler=handler)
        return command

    runs = add("runs", "list runs, newest first", cmd_runs)
    runs.add_argument("-e", "--experiment", action="append")
    runs.add_argument("-f", "--filter")
    runs.add_argument("-n", "--max-results", type=int)
    show = add("show", "one run in full", cmd_show)
    show.add_argument("run", help="run id or unique prefix")
    history = add("history", "cell executions in the order they ran", cmd_history)
    history.add_argument("--session")
    history.add_argument("--all", action="store_true")
    add("models", "registered models", cmd_models)
    replay = add("replay", "print the script that rebuilds a model from the cell history",
                 cmd_replay)
    replay.add_argument("uri", help="name@alias, name/VERSION or models:/…")
    replay.add_argument("--verify", action="store_true")
    replay.add_argument("-o", "--output", help="write the script to this file")
    export = add("export", "write a version as an MLflow model folder", cmd_export)
    export.add_argument("uri")
    export.add_argument("path")
    execute = add("execute", "run a notebook headless in a fresh kernel and report what it stored",
                  cmd_execute)
    execute.add_argument("notebook")
    execute.add_argument("--timeout", type=float, default=600, help="seconds per cell")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except MLOpsError as exc:
        print(f"jupyter-mlops: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
