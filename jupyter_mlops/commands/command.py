"""How a subcommand is declared once and becomes a parser in each front end.

A :class:`Command` names a verb, its help and its arguments; ``front_ends`` says which of
``%mlops`` and ``jupyter-mlops`` offer it, and an argument or a help text that differs
between the two says so by front end. Nothing here knows how a verb runs: each front end
keeps its handlers and its rendering.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

MAGIC = "%mlops"
CLI = "jupyter-mlops"
BOTH = frozenset({MAGIC, CLI})


@dataclass(frozen=True)
class Arg:
    """One argument: argparse's flags and keyword arguments, in one front end or in both."""

    flags: tuple[str, ...]
    options: Mapping[str, Any]
    only: str | None = None  # the one front end that has it, when the other lacks or differs
    group: str | None = None  # arguments sharing a group exclude each other


def arg(*flags: str, only: str | None = None, group: str | None = None, **options: Any) -> Arg:
    """``arg("-n", "--max-results", type=int)``: flags and options as ``add_argument`` has them."""
    return Arg(flags, options, only, group)


@dataclass(frozen=True)
class Command:
    """A verb: its help (one text, or one per front end where the verb differs there)."""

    name: str
    help: str | Mapping[str, str]
    args: tuple[Arg, ...] = ()
    front_ends: frozenset[str] = BOTH
    description: str | Mapping[str, str] | None = None

    def help_in(self, front_end: str) -> str:
        """The help as ``front_end`` lists it."""
        return _style(_pick(self.help, front_end), front_end)

    def description_in(self, front_end: str) -> str | None:
        return _pick(self.description, front_end)

    def args_in(self, front_end: str) -> tuple[Arg, ...]:
        return tuple(a for a in self.args if a.only in (None, front_end))


def _pick(text: str | Mapping[str, str] | None, front_end: str) -> str | None:
    return text.get(front_end) if isinstance(text, Mapping) else text


def _style(text: str, front_end: str) -> str:
    """The table writes sentences, as ``%mlops`` shows them; the terminal lists its commands
    in argparse's own style, lower case without a full stop (``list runs, newest first``)."""
    if front_end != CLI:
        return text
    text = text.removesuffix(".")
    if text[1:2].isupper():  # an acronym, such as MLflow, keeps its case
        return text
    return text[:1].lower() + text[1:]


def offered(commands: Iterable[Command], front_end: str) -> list[Command]:
    """The commands ``front_end`` offers, in table order."""
    return [c for c in commands if front_end in c.front_ends]


def add_commands(subparsers: argparse._SubParsersAction, front_end: str,
                 commands: Iterable[Command], common: Iterable[Arg] = ()) -> None:
    """Add each command ``front_end`` offers to ``subparsers``; ``common`` goes first in each."""
    common = tuple(common)
    for command in offered(commands, front_end):
        parser = subparsers.add_parser(command.name, help=command.help_in(front_end),
                                       description=command.description_in(front_end))
        groups: dict[str, Any] = {}
        for argument in common + command.args_in(front_end):
            target: Any = parser
            if argument.group is not None:
                if argument.group not in groups:
                    groups[argument.group] = parser.add_mutually_exclusive_group()
                target = groups[argument.group]
            target.add_argument(*argument.flags, **argument.options)
