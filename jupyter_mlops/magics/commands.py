"""``%mlops SUBCOMMAND``: one line magic, a small function per subcommand.

Each subcommand parses its words, looks names up in the user namespace by dictionary
(never ``eval``), calls the library and returns its result object, so the result can be
assigned (``runs = %mlops runs``) and is shown as an HTML table.
"""

from __future__ import annotations

import argparse
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.utils.text import dedent

from ..errors import MLOpsError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise UsageError(f"{self.prog}: {message}. See %mlops --help.")

    def exit(self, status: int = 0, message: str | None = None):
        if message:
            print(message)
        raise _HelpShown


class _HelpShown(Exception):
    """argparse printed help; the magic returns quietly."""


def build_parser() -> _Parser:
    parser = _Parser(prog="%mlops", description="Runs, models and cell history of this store.")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser, metavar="SUBCOMMAND")

    runs = sub.add_parser("runs", help="List runs (newest first) as a DataFrame.")
    runs.add_argument("-e", "--experiment", action="append", default=None)
    runs.add_argument("-f", "--filter", default=None,
                      help="e.g. \"metrics.acc > 0.9 and params.C = 0.5\"")
    runs.add_argument("-o", "--order-by", action="append", default=None,
                      help="e.g. \"metrics.acc DESC\"; repeat for several keys")
    runs.add_argument("-n", "--max-results", type=int, default=None)

    show = sub.add_parser("show", help="Show a run, or a model version with its lineage.")
    show.add_argument("run", help="run id or unique prefix, or a model: name@alias, name/3")

    compare = sub.add_parser(
        "compare", help="Runs side by side, differences highlighted; or two evaluations.")
    compare.add_argument("runs", nargs="+",
                         help="run ids (prefixes), or two model URIs (name@alias, name/3)")
    compare.add_argument("--evaluations", action="store_true",
                         help="compare the latest evaluations of two runs, model versions or "
                              "evaluation ids: deltas and the better one per metric")

    history = sub.add_parser("history", help="Cell executions in the order they ran.")
    history.add_argument("--session", default=None, help="a session id, or 'all'")
    history.add_argument("--all", action="store_true", help="every session in the store")

    register = sub.add_parser(
        "register", help="Register a model version (default: the latest tracked run's model).")
    register.add_argument("name")
    register.add_argument("--var", default=None, help="the notebook variable holding the model")
    register.add_argument("--run", default=None, help="take the model saved by this run")
    register.add_argument("--alias", default=None)

    sub.add_parser("models", help="List registered models.")

    alias = sub.add_parser("alias", help="Point NAME@ALIAS at VERSION (--delete removes it).")
    alias.add_argument("name")
    alias.add_argument("version", nargs="?", type=int)
    alias.add_argument("alias")
    alias.add_argument("--delete", action="store_true")

    replay = sub.add_parser("replay", help="The script that rebuilds a model, from the history.")
    replay.add_argument("uri")
    replay.add_argument("--verify", action="store_true",
                        help="run it in a fresh interpreter and compare with the registry")

    store = sub.add_parser("store", help="Show the store in use, or switch to PATH.")
    store.add_argument("path", nargs="?", default=None)
    for module in _subcommand_modules():
        module.register(sub)
    return parser


# Subcommands that live in modules of their own; each has ``register(subparsers)``, which
# adds its parser with ``set_defaults(handler=function(shell, args))``.
SUBCOMMAND_MODULES = (
    "jupyter_mlops.magics.evaluate_command",
    "jupyter_mlops.magics.drift_command",
    "jupyter_mlops.magics.serve_command",
    "jupyter_mlops.magics.alerts_command",
    "jupyter_mlops.magics.env_command",
)


def _subcommand_modules():
    import importlib

    modules = []
    for name in SUBCOMMAND_MODULES:
        try:
            modules.append(importlib.import_module(name))
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
    return modules


def _split(line: str) -> list[str]:
    from IPython.utils.process import arg_split

    return arg_split(line, posix=True)


@magics_class
class MLOpsMagics(Magics):
    @line_magic
    def mlops(self, line: str = "") -> Any:
        """Runs, models and cell history: ``%mlops SUBCOMMAND [...]``; ``%mlops --help``."""
        parser = build_parser()
        try:
            args = parser.parse_args(_split(line))
        except _HelpShown:
            return None
        if args.command is None:
            parser.print_help()
            return None
        handler = getattr(args, "handler", None)
        try:
            if handler is not None:
                return handler(self.shell, args)
            return getattr(self, f"_cmd_{args.command}")(args)
        except MLOpsError as exc:
            raise UsageError(str(exc)) from None

    def _cmd_runs(self, args) -> Any:
        from ..dashboards.listing import listing
        from ..dashboards.runs import frame_html
        from ..tracking.search import search_runs

        frame = search_runs(args.experiment, args.filter, args.order_by, args.max_results)

        def render(view) -> str:
            # The cell's own params and every metric; estimator params (model.*) stay in
            # the DataFrame but would drown the table.
            params = [c for c in view.columns if c.startswith("params.") and "." not in c[7:]]
            # The system.* metrics of every tracked cell too: `%mlops show RUN` has them.
            metrics = [c for c in view.columns if c.startswith("metrics.")
                       and not c.startswith("metrics.system.")]
            hidden = sum(c.startswith("params.") for c in view.columns) - len(params)
            columns = ["run_id", "experiment", "name", "status", "start_time", "duration_s",
                       *params, *metrics]
            shown = view.assign(run_id=[r[:8] for r in view["run_id"]])
            note = f"{len(view)} runs" + (f"; {hidden} estimator param columns are in the "
                                          "DataFrame, not shown" if hidden else "")
            if any(c.startswith("metrics.system.") for c in view.columns):
                note += "; system.* metric columns are in the DataFrame, not shown"
            return frame_html(shown, columns, note=note)

        return listing(frame, render)

    def _cmd_show(self, args) -> Any:
        from ..tracking.runs import get_run

        if "@" in args.run or "/" in args.run:
            from ..registry.versions import get_model_version

            return get_model_version(args.run)
        return get_run(args.run)

    def _cmd_register(self, args) -> Any:
        from ..registry.versions import register_model

        model = None
        if args.var is not None:
            if args.var not in self.shell.user_ns:
                raise UsageError(f"No variable {args.var!r} in the notebook; fit the model first.")
            model = self.shell.user_ns[args.var]
        return register_model(model, args.name, run_id=args.run, alias=args.alias,
                              variable=args.var)

    def _cmd_models(self, args) -> Any:
        from ..dashboards.listing import listing
        from ..dashboards.runs import frame_html
        from ..registry.versions import list_models

        return listing(list_models(), lambda view: frame_html(view, note=f"{len(view)} models"))

    def _cmd_alias(self, args) -> Any:
        from ..registry.versions import delete_alias, set_alias

        if args.delete:
            delete_alias(args.name, args.alias)
            return None
        if args.version is None:
            raise UsageError("%mlops alias takes NAME VERSION ALIAS, or NAME ALIAS --delete.")
        return set_alias(args.name, args.version, args.alias)

    def _cmd_replay(self, args) -> Any:
        from ..registry.replay import replay

        return replay(args.uri, verify=args.verify)

    def _cmd_compare(self, args) -> Any:
        from ..tracking.compare import compare_runs

        if args.evaluations or any("@" in ref or "/" in ref for ref in args.runs):
            if len(args.runs) != 2:
                raise UsageError("%mlops compare --evaluations takes exactly two: A B.")
            from ..evaluation import compare_evaluations

            return compare_evaluations(*args.runs)
        return compare_runs(args.runs)

    def _cmd_history(self, args) -> Any:
        from ..dashboards.listing import listing
        from ..dashboards.runs import history_html
        from ..tracking.history import cell_history

        session = "all" if args.all else args.session
        return listing(cell_history(session), history_html)

    def _cmd_store(self, args) -> Any:
        from ..store.current import get_store, set_store

        store = set_store(args.path) if args.path else get_store()
        print(f"jupyter_mlops store: {store.path}")
        return None


MLOpsMagics.mlops.__doc__ = dedent(MLOpsMagics.mlops.__doc__ or "") + "\n" + build_parser().format_help()
