"""``%mlops SUBCOMMAND``: one line magic, a small function per subcommand.

Each subcommand parses its words, looks names up in the user namespace by dictionary
(never ``eval``), calls the library and returns its result object, so the result can be
assigned (``runs = %mlops runs``) and is shown as an HTML table.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.utils.text import dedent

from ..commands import COMMANDS, COMMON, MAGIC, Command, add_commands
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


def build_parser(commands: Iterable[Command] = COMMANDS) -> _Parser:
    """The magic's parser, built from the table of subcommands."""
    parser = _Parser(prog=MAGIC, description="Runs, models and cell history of this store.")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser, metavar="SUBCOMMAND")
    add_commands(sub, MAGIC, commands, COMMON[MAGIC])
    return parser


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
        try:
            return getattr(self, f"_cmd_{args.command}")(args)
        except MLOpsError as exc:
            raise UsageError(str(exc)) from None

    def _cmd_runs(self, args) -> Any:
        from ..dashboards.listing import listing
        from ..dashboards.runs import runs_html
        from ..tracking.search import search_runs

        frame = search_runs(args.experiment, args.filter, args.order_by, args.max_results)
        return listing(frame, runs_html)

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
            # --var dv,lr: several objects registered as one model that predicts through them.
            names = [name.strip() for name in args.var.split(",")]
            for name in names:
                if name not in self.shell.user_ns:
                    raise UsageError(f"No variable {name!r} in the notebook; fit the model first.")
            values = [self.shell.user_ns[name] for name in names]
            model = values[0] if len(values) == 1 else tuple(values)
        return register_model(model, args.name, run_id=args.run, alias=args.alias,
                              variable=args.var)

    def _cmd_models(self, args) -> Any:
        from ..dashboards.listing import listing
        from ..dashboards.runs import frame_html
        from ..registry.versions import list_models

        return listing(list_models(), lambda view: frame_html(view, note=f"{len(view)} models"))

    def _cmd_card(self, args) -> Any:
        from ..registry.cards import model_card

        card = model_card(args.uri)
        if args.output:
            card.save(args.output)
        return card

    def _cmd_status(self, args) -> Any:
        from ..dashboards.listing import listing
        from ..dashboards.runs import frame_html
        from ..monitoring.maturity import maturity

        return listing(maturity(), lambda view: frame_html(
            view, note="levels reached by each registered model, in order"))

    def _cmd_alias(self, args) -> Any:
        from ..registry.versions import delete_alias, set_alias

        if args.delete:
            delete_alias(args.name, args.alias)
            return None
        if args.version is None:
            raise UsageError("%mlops alias takes NAME VERSION ALIAS, or NAME ALIAS --delete.")
        return set_alias(args.name, args.version, args.alias)

    def _cmd_provenance(self, args) -> Any:
        from ..tracking.provenance import provenance

        return provenance(args.path)

    def _cmd_replay(self, args) -> Any:
        from ..registry.replay import replay

        return replay(args.uri, verify=args.verify, restore_data=args.restore_data)

    def _cmd_compare(self, args) -> Any:
        from ..tracking.compare import compare_runs

        if args.evaluations or any("@" in ref or "/" in ref for ref in args.runs):
            if len(args.runs) != 2:
                raise UsageError("%mlops compare --evaluations takes exactly two: A B.")
            from ..evaluation import compare_evaluations

            return compare_evaluations(*args.runs)
        return compare_runs(args.runs, children=args.children or None,
                            show_all=args.all)

    def _cmd_history(self, args) -> Any:
        from ..dashboards.listing import listing
        from ..dashboards.runs import history_html
        from ..tracking.history import cell_history

        session = "all" if args.all else args.session
        return listing(cell_history(session), history_html)

    # Subcommands with a module of their own, imported when first used.
    def _cmd_evaluate(self, args) -> Any:
        from .evaluate_command import run

        return run(self.shell, args)

    def _cmd_drift(self, args) -> Any:
        from .drift_command import run

        return run(self.shell, args)

    def _cmd_serve(self, args) -> Any:
        from .serve_command import run

        return run(self.shell, args)

    def _cmd_alerts(self, args) -> Any:
        from .alerts_command import run

        return run(self.shell, args)

    def _cmd_env(self, args) -> Any:
        from .env_command import run

        return run(self.shell, args)

    def _cmd_data(self, args) -> Any:
        from ..tracking.datapolicy import get_data_policy, set_data_policy

        if args.action != "policy":
            raise UsageError(f"%mlops data takes: policy; got {args.action!r}.")
        changes = {"keep": True if args.keep else False if args.no_keep else None,
                   "track_files": True if args.files else False if args.no_files else None,
                   "folders": args.folder, "max_dataset_bytes": args.max_dataset,
                   "max_store_bytes": args.max_store}
        if args.reset or any(v is not None for v in changes.values()):
            policy = set_data_policy(**changes, reset=args.reset)
        else:
            policy = get_data_policy()
        print(policy.describe())
        return policy

    def _cmd_datasets(self, args) -> Any:
        from ..dashboards.listing import listing
        from ..dashboards.runs import frame_html
        from ..tracking.datacatalog import list_datasets

        return listing(list_datasets(), lambda view: frame_html(view, note=f"{len(view)} datasets"))

    def _cmd_sync(self, args) -> Any:
        from ..teamsync import sync

        return sync(args.uri, args.experiment, models=not args.no_models,
                    workers=args.workers, timeout=args.timeout)

    def _cmd_pull(self, args) -> Any:
        from ..teamsync import pull

        return pull(args.uri, args.experiment, timeout=args.timeout)

    def _cmd_store(self, args) -> Any:
        from ..store.current import get_store, set_store

        store = set_store(args.path) if args.path else get_store()
        print(f"jupyter_mlops store: {store.path}")
        return None


MLOpsMagics.mlops.__doc__ = dedent(MLOpsMagics.mlops.__doc__ or "") + "\n" + build_parser().format_help()
