"""``jupyter-mlops``: the store from a terminal, and notebooks run headless."""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from collections.abc import Iterable, Sequence

from .commands import CLI, COMMANDS, COMMON, Command, add_commands
from .errors import MLOpsError, ValidationError
from .tracking import storage


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
    rows = frame.to_dict("records")
    listed = {row["run_id"] for row in rows}
    children: dict[str, list[str]] = {}
    for row in rows:  # a child listed under its parent, as one line of names
        if isinstance(row["parent_run_id"], str) and row["parent_run_id"] in listed:
            children.setdefault(row["parent_run_id"], []).append(row["name"] or "(unnamed)")
    folded = sum(len(names) for names in children.values())
    print(f"{len(rows) - folded} run(s) in {store.path}"
          + (f", with {folded} child run(s) under them" if folded else ""))
    for row in rows:
        if isinstance(row["parent_run_id"], str) and row["parent_run_id"] in listed:
            continue
        duration = "" if row["duration_s"] != row["duration_s"] else f"{row['duration_s']:.2f}s"
        who = f"  by {row['user']}" if row.get("user") else ""
        if row.get("origin"):
            who += f" (pulled from {row['origin']})"
        print(f"\n  run {row['run_id'][:8]}  {row['status']:<8} {row['experiment']} / "
              f"{row['name'] or '(unnamed)'}  [{row['execution_count'] or '-'}]  {duration}"
              f"{who}")
        for prefix in ("params", "metrics", "tags"):
            items = [(k.split(".", 1)[1], v) for k, v in row.items()
                     if k.startswith(prefix + ".") and v is not None and v == v]
            items.sort(key=lambda item: "." in item[0])  # the cell's own names first
            if items:
                shown = ", ".join(f"{k}={_short(v, 30)}" for k, v in items[:12])
                more = f" (+{len(items) - 12} more)" if len(items) > 12 else ""
                print(f"    {prefix:<8} {shown}{more}")
        if row["run_id"] in children:
            counted = Counter(reversed(children[row["run_id"]]))  # in the order they ran
            print("    children " + ", ".join(
                name if n == 1 else f"{name} ×{n}" for name, n in counted.items()))


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
        if row["possibly_stale"]:
            marks.append(f"inputs {row['possibly_stale']}")
        if row["files"]:
            marks.append("wrote " + ", ".join(_short(os.path.relpath(f), 40)
                                              for f in row["files"][:3]))
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
    run = storage.get_run(store, args.run)
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
            # [n] as Jupyter shows it; the cell's place counts every cell, markdown too.
            print(f"  [{outcome.execution_count}] (cell {outcome.index + 1} of the notebook): "
                  f"{outcome.error}{note}")
    if store_path:
        os.environ["JUPYTER_MLOPS_STORE"] = store_path
    store = _store(argparse.Namespace(store=store_path))
    print()
    print_runs(store)
    print_history(store)
    return 1 if failed else 0


def _run_parameters(args) -> dict:
    """-f's mapping, then -p (values read as papermill does) and -r (strings) over it."""
    from .tracking.notebook_runs import parse_value

    parameters: dict = {}
    if args.parameters_file:
        import yaml

        try:
            with open(args.parameters_file, encoding="utf-8") as file:
                loaded = yaml.safe_load(file)
        except (OSError, yaml.YAMLError) as exc:
            raise ValidationError(f"Cannot read parameters from {args.parameters_file}: "
                                  f"{exc}".split("\n", 1)[0]) from None
        if not isinstance(loaded, dict):
            raise ValidationError(f"{args.parameters_file} must hold a YAML mapping of "
                                  "parameter names to values (C: 0.5).")
        parameters.update(loaded)
    for items, read in ((args.parameter, parse_value), (args.raw, str)):
        for item in items:
            name, sep, value = item.partition("=")
            if not sep:
                raise ValidationError(f"Parameter {item!r} has no value: write NAME=VALUE.")
            parameters[name.strip()] = read(value)
    return parameters


def cmd_run(args) -> int:
    from .tracking.notebook_runs import run_notebook

    store = _store(args)
    parameters = _run_parameters(args)
    print(f"Running {args.notebook} in a fresh kernel, store {store.path}"
          + (f", parameters {parameters}" if parameters else ""))
    result = run_notebook(args.notebook, parameters, output=args.output,
                          experiment=args.experiment, name=args.name, store=store,
                          timeout=args.timeout)
    children = store.query("SELECT count(*) FROM runs WHERE parent_run_id = ?",
                           (result.run_id,))[0][0]
    print(f"run {result.run_id[:8]} {result.status}: {len(result.outcomes)} code cell(s) ran, "
          f"{children} tracked run(s)" + (f"; {result.error}" if result.error else ""))
    return 1 if result.failed else 0


def cmd_pipeline(args) -> int:
    from .pipelines import pipeline

    store = _store(args)
    if args.action == "build":
        built = pipeline(args.target, name=args.name, folder=args.output, store=store)
        print(f"Wrote pipeline {built.name} to {built.folder}")
        print(repr(built))
        return 0
    found = pipeline(args.target, store=store)
    if args.action == "trust":
        found.trust()
        print(f"Trusted the files of pipeline {found.name} as they are now.")
        return 0
    if args.action == "verify":
        verification = found.verify(args.run)
        print(verification.message)
        return 0 if verification.ok else 1
    parameters = _run_parameters(argparse.Namespace(
        parameters_file=args.parameters_file, parameter=[], raw=[]))
    for item in args.parameter:  # read as the type of the parameter's default
        name, sep, value = item.partition("=")
        if not sep:
            raise ValidationError(f"Parameter {item!r} has no value: write NAME=VALUE.")
        parameters[name.strip()] = value
    result = found.run(parameters)
    print(result)
    return 0 if result.status == "FINISHED" else 1


def cmd_check(args) -> int:
    from .monitoring.gates import check

    result = check(args.candidate, args.against, data=args.data, target=args.target,
                   thresholds=args.threshold, min_delta=args.min_delta,
                   min_relative=args.min_relative, max_drift=args.max_drift,
                   verify_replay=not args.no_replay, store=_store(args))
    report = result.markdown()
    print(report, end="")
    for path, text in ((args.json, result.to_json()), (args.markdown, report)):
        if path:
            with open(path, "w", encoding="utf-8") as file:
                file.write(text)
    return 0 if result.passed else 1


def cmd_card(args) -> int:
    from .registry.cards import model_card

    card = model_card(args.uri, store=_store(args))
    if args.output:
        print(f"Wrote {card.save(args.output)}")
    else:
        print(card.markdown(), end="")
    return 0


def cmd_status(args) -> int:
    from .monitoring.maturity import LEVELS, maturity

    frame = maturity(store=_store(args))
    if not len(frame):
        print("No registered models yet: register one with %mlops register NAME.")
        return 0
    for row in frame.itertuples(index=False):
        marks = " ".join(f"{level}:{'yes' if getattr(row, level) else 'no'}" for level in LEVELS)
        print(f"{row.model:<24} level {row.level}/{len(LEVELS)}  {marks}")
        if row.next:
            print(f"{'':<24} next: {row.next}")
    return 0


def cmd_scheduler(args) -> int:
    import logging

    from .monitoring.scheduler import Scheduler
    from .monitoring.triggers import list_schedules

    store = _store(args)
    if args.list:
        frame = list_schedules(store=store)
        print(frame.to_string(index=False) if len(frame) else "No triggers; schedule() adds one.")
        return 0
    logging.basicConfig(format="%(asctime)s %(message)s", level=logging.INFO)
    scheduler = Scheduler(store, interval=args.interval, log=logging.getLogger("jupyter_mlops"))
    if args.once:
        fired = scheduler.tick(wait=True)
        for firing in fired:
            row = store.query("SELECT status, message FROM firings WHERE firing_id = ?",
                              (firing.firing_id,))[0]
            print(f"{firing.trigger}: {row[0]} ({firing.reason}): {row[1]}")
        return 1 if any(store.query("SELECT 1 FROM firings WHERE firing_id = ? AND status IN "
                                    "('failed', 'refused')", (f.firing_id,)) for f in fired) else 0
    import signal
    import time

    print(f"Checking the triggers of {store.path} every {args.interval:g} s; Ctrl-C stops.")
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        while True:
            scheduler.tick()
            time.sleep(args.interval)
    except KeyboardInterrupt:
        scheduler.join(timeout=60)
    return 0


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


def cmd_provenance(args) -> int:
    from .tracking.provenance import provenance

    print(provenance(args.path, store=_store(args)))
    return 0


def cmd_replay(args) -> int:
    from .registry.replay import replay

    script = replay(args.uri, verify=args.verify, restore_data=args.restore_data,
                    store=_store(args))
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
    if args.format == "mlflow":
        from .registry.export import export_mlflow

        path = export_mlflow(args.uri, args.path, store=_store(args),
                             allow_pickle=args.allow_pickle)
        print(f"Exported {args.uri} as an MLflow model at {path}")
        return 0
    import json

    from .registry.standalone import export_model

    path = export_model(args.uri, args.path, args.format, store=_store(args),
                        allow_pickle=args.allow_pickle)
    manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    print(f"Exported {args.uri} as {args.format} at {path} (sha256 in SHA256SUMS)")
    if manifest.get("check"):
        check = manifest["check"]
        print(f"  checked on {check['rows']} reference rows: largest difference "
              f"{check['max_abs_difference']:.3g} ({check['tolerance']})")
    return 0


def cmd_import(args) -> int:
    from .registry.imports import import_model
    from .monitoring.monitor import read_table

    sample = read_table(args.sample) if args.sample else None
    version = import_model(args.source, args.name, sample=sample, trust=args.trust,
                           tracking_uri=args.tracking_uri, alias=args.alias,
                           store=_store(args))
    print(f"Imported {args.source} as {version.uri}"
          + (f" (@{', @'.join(version.aliases)})" if version.aliases else ""))
    return 0


def cmd_build(args) -> int:
    from .serving.image import build_image_context

    path = build_image_context(args.uri, args.out, store=_store(args),
                               allow_pickle=args.allow_pickle)
    print(f"Wrote a build context for {args.uri} in {path}: docker build -t NAME {path}; "
          "without Docker: pip install -r requirements.txt && pip install --no-deps "
          "wheels/*.whl, then python serve.py (PORT, DATA, WORKERS).")
    return 0


def cmd_datasets(args) -> int:
    from .tracking.datacatalog import list_datasets

    frame = list_datasets(_store(args)).head(args.max_results)
    if frame.empty:
        print("No datasets.")
        return 0
    for row in frame.itertuples():
        kept = f"kept {row.kept_bytes:,} B" if row.kept else "fingerprint only"
        print(f"{row.fingerprint[:12]}  {row.kind:<10} {str(list(row.shape)):<14} {kept:<20} "
              f"runs {','.join(row.runs) or '-'}  versions {','.join(row.versions) or '-'}  "
              f"{_short(', '.join(row.names))}")
    return 0


def cmd_gc(args) -> int:
    from .store.gc import collect_garbage

    garbage = collect_garbage(_store(args), delete=args.delete)
    for path, size in garbage.files:
        print(f"{size:>12,}  {path}")
    print(garbage.summary())
    return 0


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def cmd_serve(args) -> int:
    import signal

    from .serving import serve
    from .serving.access import TOKEN_ENV
    from .serving.fastpath import silence_feature_name_warning
    from .serving.workers import WorkerPool

    chosen = args.token is not None or bool(os.environ.get(TOKEN_ENV))
    # From the moment it says where it listens, SIGTERM stops the server cleanly (its log
    # drained); before the wait below takes over, this handler does.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    # This process only serves: models fitted on a DataFrame may take arrays (fastpath.py).
    silence_feature_name_warning()
    try:
        options = dict(challenger=args.challenger, split=args.split, shadow=args.shadow,
                       host=args.host, port=args.port, max_body_mb=args.max_body_mb,
                       watch_interval=args.watch or None, log_predictions=not args.no_log,
                       store=_store(args), token=args.token,
                       allowed_hosts=args.allowed_host or ())
        if args.workers != 1:
            server = WorkerPool(args.uri, workers=args.workers, threads=args.threads,
                                **options).start()
        else:
            server = serve(args.uri, workers=args.threads, **options)
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
    deployment = getattr(server, "deployment", None)
    if deployment is None:  # a pool: its workers load the models
        served = f"{server.served}, {server.workers} worker processes"
    else:
        served = deployment.champion.label
    if args.challenger is not None:
        mode = "shadow" if args.shadow else f"{args.split or 0:g} of traffic"
        served += (f", challenger {deployment.challenger.label} ({mode})" if deployment
                   else f", challenger {args.challenger} ({mode})")
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


def cmd_sync(args) -> int:
    from .teamsync import sync

    result = sync(args.uri, args.experiment, models=not args.no_models, store=_store(args),
                  workers=args.workers, timeout=args.timeout)
    print("\n".join(result.lines()))
    return 0


def cmd_pull(args) -> int:
    from .teamsync import pull

    result = pull(args.uri, args.experiment, store=_store(args), timeout=args.timeout)
    print("\n".join(result.lines()))
    return 0


# The handler of each command the table offers here, by name.
HANDLERS = {"runs": cmd_runs, "show": cmd_show, "history": cmd_history, "models": cmd_models,
            "trust": cmd_trust, "replay": cmd_replay, "export": cmd_export, "import": cmd_import,
            "serve": cmd_serve, "build": cmd_build,
            "score": cmd_score, "monitor": cmd_monitor, "ab": cmd_ab, "prune": cmd_prune,
            "alerts": cmd_alerts, "execute": cmd_execute, "run": cmd_run, "check": cmd_check,
            "pipeline": cmd_pipeline,
            "scheduler": cmd_scheduler, "status": cmd_status,
            "card": cmd_card, "provenance": cmd_provenance,
            "datasets": cmd_datasets, "gc": cmd_gc, "sync": cmd_sync, "pull": cmd_pull}


def build_parser(commands: Iterable[Command] = COMMANDS) -> argparse.ArgumentParser:
    """The terminal's parser, built from the table of subcommands."""
    parser = argparse.ArgumentParser(
        prog=CLI, description="Runs, cell history and notebooks of a jupyter_mlops store.")
    sub = parser.add_subparsers(dest="command", required=True)
    add_commands(sub, CLI, commands, COMMON[CLI])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return HANDLERS[args.command](args)
    except MLOpsError as exc:
        print(f"jupyter-mlops: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
