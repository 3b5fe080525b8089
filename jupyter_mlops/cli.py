"""``jupyter-mlops``: the store from a terminal, and notebooks run headless."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .errors import MLOpsError


def _store(args):
    from .store.current import get_store, set_store

    return set_store(args.store) if args.store else get_store()


def _short(value, width: int = 60) -> str:
    from .dashboards.html import format_value

    text = format_value(value).replace("\n", "⏎")
    return text if len(text) <= width else text[: width - 1] + "…"


def print_runs(store, experiment=None, filter_text=None, limit=None) -> None:
    from .tracking.search import search_runs

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
    from .tracking.history import history_rows

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
    for key, value in run.system_metrics.items():
        print(f"  system   {key} = {_short(value)}")
    from .dashboards.environment import git_text
    from .tracking.environment import session_environment

    environment = session_environment(store, run.session_id)
    if environment is not None and environment.sha256 is not None:
        print(f"  env      Python {environment.python} on {environment.platform}, "
              f"{len(environment.packages)} distributions, git {git_text(environment)}")
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
    from .tracking.runner import run_notebook

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
    from .registry.versions import list_models

    frame = list_models(store=_store(args))
    print(f"{len(frame)} model(s)")
    for row in frame.to_dict("records"):
        print(f"  {row['name']:<30} latest {row['latest_version']:<4} {row['aliases']}")
    return 0


def cmd_trust(args) -> int:
    from .registry.versions import trust_model

    store = _store(args)
    for uri in args.uri:
        version = trust_model(uri, store=store)  # prints what it signed
        print(f"{uri} ({version.uri}) now loads without allow_pickle.")
    return 0


def cmd_replay(args) -> int:
    from .registry.replay import replay

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
    from .registry.export import export_mlflow

    path = export_mlflow(args.uri, args.path, store=_store(args), allow_pickle=args.allow_pickle)
    print(f"Exported {args.uri} as an MLflow model at {path}")
    return 0


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def cmd_serve(args) -> int:
    import signal

    from .serving import serve
    from .serving.access import TOKEN_ENV

    chosen = args.token is not None or bool(os.environ.get(TOKEN_ENV))
    # From the moment it says where it listens, SIGTERM stops the server cleanly (its log
    # drained); before the wait below takes over, this handler does.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        server = serve(args.uri, challenger=args.challenger, split=args.split,
                       shadow=args.shadow, host=args.host, port=args.port,
                       max_body_mb=args.max_body_mb, workers=args.workers,
                       watch_interval=args.watch or None, log_predictions=not args.no_log,
                       store=_store(args), token=args.token,
                       allowed_hosts=args.allowed_host or ())
        try:
            _announce(args, server, chosen)
            server.wait()
        except KeyboardInterrupt:
            server.stop()
    finally:
        signal.signal(signal.SIGTERM, previous)
    print("Stopped; every prediction served is in the predictions log.", flush=True)
    return 0


def _announce(args, server, chosen: bool) -> None:
    deployment = server.deployment
    served = deployment.champion.label
    if deployment.challenger is not None:
        mode = "shadow" if args.shadow else f"{args.split or 0:g} of traffic"
        served += f", challenger {deployment.challenger.label} ({mode})"
    print(f"Serving {args.uri} ({served}) at {server.url}/invocations; Ctrl-C stops it.",
          flush=True)
    if chosen:
        print("POST /labels and /reload need the token you chose (Authorization: token ...).",
              flush=True)
    else:
        print(f"POST /labels and /reload need the header: Authorization: token {server.token}",
              flush=True)
    if args.host in ("", "0.0.0.0", "::") and not args.allowed_host:
        print("Listening on every address, but answering only requests to localhost: add "
              "the names clients use with --allowed-host NAME.", flush=True)


def cmd_score(args) -> int:
    from .serving import score_file

    result = score_file(args.uri, args.input, args.output, chunk_size=args.chunk_size,
                        prediction_column=args.prediction_column,
                        keep_columns=not args.only_predictions,
                        progress=False if args.no_progress else None, store=_store(args))
    print(f"Scored {result.rows:,} rows with {result.model} in {result.seconds:.2f} s "
          f"({result.rows_per_s:,.0f} rows/s, {result.chunks} chunk(s)) -> {result.output}")
    return 0


def cmd_monitor(args) -> int:
    from .monitoring.monitor import monitor

    result = monitor(args.uri, since=args.since, batch=args.batch, labels=args.labels,
                     thresholds=args.threshold, drift_share=args.drift_share,
                     stattest=args.stattest, retrain=args.retrain, promote=args.promote,
                     retrain_timeout=args.timeout, store=_store(args))
    for line in result.lines():
        print(line)
    if result.alert:
        print(f"ALERT: {len(result.alerts)} alert(s) recorded for {result.model_uri}.")
        return 1
    return 0


def cmd_ab(args) -> int:
    from .serving import compare_versions

    print(compare_versions(args.uri_a, args.uri_b, since=args.since, store=_store(args)))
    return 0


def cmd_prune(args) -> int:
    from .serving import prune_predictions

    deleted = prune_predictions(args.older_than, name=args.model, store=_store(args))
    print(f"Deleted {deleted:,} logged request(s) older than {args.older_than}"
          + (f" of {args.model}" if args.model else "") + ".")
    return 0


def cmd_alerts(args) -> int:
    from .monitoring.monitor import list_alerts

    frame = list_alerts(args.uri, since=args.since, store=_store(args))
    print(f"{len(frame)} alert(s)")
    for row in frame.head(args.max_results).to_dict("records"):
        print(f"  {row['created']:%Y-%m-%d %H:%M:%S}  {row['name']}/{row['version']:<4} "
              f"{row['kind']:<7} {row['message']}")
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
    trust = add("trust", "vouch for a version (its bytes, row, replay script, alias) made by "
                "someone else or an older jupyter-mlops (unpickling runs code: only for stores "
                "you trust)", cmd_trust)
    trust.add_argument("uri", nargs="+", help="name@alias, name/VERSION or models:/…")
    replay = add("replay", "print the script that rebuilds a model from the cell history",
                 cmd_replay)
    replay.add_argument("uri", help="name@alias, name/VERSION or models:/…")
    replay.add_argument("--verify", action="store_true")
    replay.add_argument("-o", "--output", help="write the script to this file")
    export = add("export", "write a version as an MLflow model folder", cmd_export)
    export.add_argument("uri")
    export.add_argument("path")
    export.add_argument("--allow-pickle", action="store_true",
                        help="export a version your key did not sign (MLflow will unpickle it)")
    serve = add("serve", "serve a version over HTTP (MLflow's scoring protocol)", cmd_serve)
    serve.add_argument("uri", help="name@alias, name/VERSION or models:/…")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default "
                       "127.0.0.1; 0.0.0.0 exposes the model to the network: scoring needs "
                       "no token)")
    serve.add_argument("--allowed-host", action="append", metavar="NAME",
                       help="also answer requests to this host name (repeat; * for any); "
                            "loopback names always")
    serve.add_argument("--token", default=None,
                       help="the token POST /labels and /reload need (default: "
                            "$JUPYTER_MLOPS_SERVE_TOKEN, else a new one, printed)")
    serve.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 picks a "
                       "free one)")
    serve.add_argument("--challenger", metavar="URI", help="a second version to compare")
    serve.add_argument("--split", type=float, default=None, metavar="SHARE",
                       help="share of requests the challenger answers, e.g. 0.1")
    serve.add_argument("--shadow", action="store_true",
                       help="the challenger scores every request; the champion answers")
    serve.add_argument("--max-body-mb", type=float, default=20.0,
                       help="larger request bodies get 413 (default 20)")
    serve.add_argument("--workers", type=int, default=None, help="scoring threads")
    serve.add_argument("--watch", type=float, default=2.0, metavar="SECONDS",
                       help="how often to check whether the alias moved (0: never)")
    serve.add_argument("--no-log", action="store_true", help="do not log predictions")
    score = add("score", "score a CSV or Parquet file in chunks", cmd_score)
    score.add_argument("uri")
    score.add_argument("input", help="a .csv (.csv.gz, .tsv) or .parquet file")
    score.add_argument("-o", "--output", required=True, help="a .csv or .parquet file")
    score.add_argument("--chunk-size", type=int, default=100_000, help="rows per chunk")
    score.add_argument("--prediction-column", default="prediction")
    score.add_argument("--only-predictions", action="store_true",
                       help="write the predictions alone, not the input columns beside them")
    score.add_argument("--no-progress", action="store_true")
    monitor = add("monitor", "drift and metrics of a version on new data; exits 1 on an alert",
                  cmd_monitor)
    monitor.add_argument("uri")
    source = monitor.add_mutually_exclusive_group()
    source.add_argument("--since", help="logged traffic of the last 90s, 15m, 1h, 7d … "
                        "(default: the newest 100,000 logged rows)")
    source.add_argument("--batch", metavar="FILE", help="a CSV or Parquet file of new inputs")
    monitor.add_argument("--labels", metavar="COL", help="the column of --batch holding the "
                         "true values (metrics are computed on them)")
    monitor.add_argument("--threshold", action="append", metavar="METRIC=VALUE",
                         help="alert when METRIC is worse than VALUE, e.g. accuracy=0.9 "
                              "(repeat)")
    monitor.add_argument("--drift-share", type=float, default=0.5,
                         help="dataset drift when this share of columns drifted (default 0.5)")
    monitor.add_argument("--stattest", default=None, help="one drift test for every column")
    monitor.add_argument("--retrain", metavar="NOTEBOOK",
                         help="on an alert, execute this training notebook")
    monitor.add_argument("--promote", metavar="METRIC", help="move the alias to the retrained "
                         "version only when it is better on METRIC")
    monitor.add_argument("--timeout", type=float, default=600,
                         help="seconds per cell of the retraining notebook")
    ab = add("ab", "compare two served versions: agreement, and metrics once labels arrive",
             cmd_ab)
    ab.add_argument("uri_a")
    ab.add_argument("uri_b")
    ab.add_argument("--since", default=None, help="only traffic of the last 1h, 7d …")
    prune = add("prune", "delete logged requests (and their labels) older than a window",
                cmd_prune)
    prune.add_argument("--older-than", required=True, metavar="WINDOW",
                       help="such as 30d, 12h or 3600 (seconds)")
    prune.add_argument("--model", default=None, help="only this model's requests")
    alerts = add("alerts", "alerts recorded by monitor, newest first", cmd_alerts)
    alerts.add_argument("uri", nargs="?", default=None)
    alerts.add_argument("--since", default=None)
    alerts.add_argument("-n", "--max-results", type=int, default=50)
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
