"""``%mlops`` and ``jupyter-mlops`` build their parsers from one table of subcommands."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest
from IPython.core.error import UsageError

from jupyter_mlops import cli
from jupyter_mlops.commands import CLI, COMMANDS, COMMON, MAGIC, Command, arg, offered
from jupyter_mlops.magics import commands as magic

BUILDERS = {MAGIC: magic.build_parser, CLI: cli.build_parser}
# What argparse keeps of each add_argument option, where the attribute has another name.
_ATTRIBUTE = {"type": "type", "nargs": "nargs", "default": "default", "metavar": "metavar",
              "help": "help", "required": "required", "choices": "choices"}
_ACTIONS = {"store_true": argparse._StoreTrueAction, "append": argparse._AppendAction}


def _subcommands(parser: argparse.ArgumentParser) -> argparse._SubParsersAction:
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))


def _declared(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if not isinstance(a, argparse._HelpAction)]


@pytest.mark.parametrize("front_end", [MAGIC, CLI])
def test_each_parser_is_the_table(front_end):
    sub = _subcommands(BUILDERS[front_end]())
    commands = offered(COMMANDS, front_end)
    assert list(sub.choices) == [c.name for c in commands]
    listed = {choice.dest: choice.help for choice in sub._choices_actions}
    for command in commands:
        parser = sub.choices[command.name]
        assert listed[command.name] == command.help_in(front_end)
        assert parser.description == command.description_in(front_end)
        declared = COMMON[front_end] + command.args_in(front_end)
        actions = _declared(parser)
        assert len(actions) == len(declared), command.name
        for action, argument in zip(actions, declared):
            where = f"{front_end} {command.name} {argument.flags}"
            if argument.flags[0].startswith("-"):
                assert tuple(action.option_strings) == argument.flags, where
            else:
                assert action.dest == argument.flags[0] and not action.option_strings, where
            for option, value in argument.options.items():
                if option == "action":
                    assert type(action) is _ACTIONS[value], where
                else:
                    assert getattr(action, _ATTRIBUTE[option]) == value, where
        groups = [[a.dest for a in g._group_actions] for g in parser._mutually_exclusive_groups]
        wanted: dict[str, list[str]] = {}
        for argument in declared:
            if argument.group:
                wanted.setdefault(argument.group, []).append(
                    argument.flags[-1].lstrip("-").replace("-", "_"))
        assert groups == list(wanted.values()), command.name


def test_a_verb_added_to_the_table_reaches_the_front_ends_that_offer_it():
    both = Command("ping", "Answer with pong.", (
        arg("target", help="who to ping"),
        arg("--loud", action="store_true", help="shout"),
        arg("--count", type=int, default=3, only=CLI, help="how many times"),
    ))
    terminal_only = Command("pong", "Answer with ping.", front_ends=frozenset({CLI}))
    table = (*COMMANDS, both, terminal_only)

    args = magic.build_parser(table).parse_args(["ping", "bob", "--loud"])
    assert (args.command, args.target, args.loud) == ("ping", "bob", True)
    assert not hasattr(args, "count")
    with pytest.raises(UsageError, match="invalid choice: 'pong'"):
        magic.build_parser(table).parse_args(["pong"])

    args = cli.build_parser(table).parse_args(["ping", "bob", "--count", "5", "--store", "s"])
    assert (args.command, args.target, args.loud, args.count, args.store) == (
        "ping", "bob", False, 5, "s")
    assert cli.build_parser(table).parse_args(["pong"]).command == "pong"
    assert "answer with pong" in cli.build_parser(table).format_help()
    assert "Answer with pong." in magic.build_parser(table).format_help()


def test_every_verb_a_front_end_offers_has_a_handler_there():
    assert set(cli.HANDLERS) == {c.name for c in offered(COMMANDS, CLI)}
    handlers = {name[len("_cmd_"):] for name in dir(magic.MLOpsMagics)
                if name.startswith("_cmd_")}
    assert handlers == {c.name for c in offered(COMMANDS, MAGIC)}


def test_each_verb_is_declared_once():
    names = [c.name for c in COMMANDS]
    assert len(names) == len(set(names))
    for command in COMMANDS:
        for front_end in command.front_ends:
            assert command.help_in(front_end), f"{front_end} {command.name} has no help"
            flags = [a.flags for a in command.args_in(front_end)]
            assert len(flags) == len(set(flags)), f"{front_end} {command.name}: {flags}"


def test_the_terminal_lists_the_same_help_in_its_own_style():
    runs = next(c for c in COMMANDS if c.name == "runs")
    assert runs.help_in(MAGIC) == "List runs, newest first."
    assert runs.help_in(CLI) == "list runs, newest first"
    assert Command("x", "MLflow models.").help_in(CLI) == "MLflow models"


def _loaded_after(code: str, modules: tuple[str, ...]) -> list[str]:
    probe = (f"import json, sys\n{code}\n"
             f"print(json.dumps(sorted(m for m in {modules!r} if m in sys.modules)))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True, timeout=120)
    return json.loads(done.stdout)


def test_the_terminal_builds_its_parser_without_ipython():
    assert _loaded_after("from jupyter_mlops.cli import build_parser; build_parser()",
                         ("IPython", "ipywidgets", "tornado", "pandas")) == []


def test_the_magic_parser_loads_no_handler_module():
    # %load_ext builds the %mlops parser (its help is the magic's docstring); the modules
    # that run evaluate, drift, serve and alerts wait until one of them is called.
    handlers = tuple(f"jupyter_mlops.magics.{name}_command"
                     for name in ("evaluate", "drift", "serve", "alerts"))
    assert _loaded_after("import jupyter_mlops.magics.commands as c; c.build_parser()",
                         (*handlers, "pandas", "ipywidgets")) == []
