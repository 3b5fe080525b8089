"""The subcommands of ``%mlops`` and ``jupyter-mlops``: one table both parsers are built from.

The front ends keep what differs by nature (their top-level parser, their handlers, how
they show a result); the verbs, their help and their arguments live here once.
"""

from __future__ import annotations

from .command import BOTH, CLI, MAGIC, Arg, Command, add_commands, arg, offered
from .table import COMMANDS, COMMON

__all__ = ["BOTH", "CLI", "COMMANDS", "COMMON", "MAGIC", "Arg", "Command", "add_commands", "arg",
           "offered"]
