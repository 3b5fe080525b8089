"""The README documents every public name, %mlops subcommand and CLI command, with the help
the code gives them (as sqlite-utils' own docs tests do)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import jupyter_mlops

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("reference", ROOT / "scripts" / "reference.py")
reference = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(reference)


def test_the_reference_section_matches_the_code():
    # On failure: python scripts/reference.py rewrites the section; review and commit it.
    assert reference.current() == reference.reference()


def test_every_public_name_has_a_docstring_and_a_row():
    text = reference.current() or ""
    for name in jupyter_mlops.__all__:
        assert f"| `{name}` | " in text
        assert reference._first_line(getattr(jupyter_mlops, name)), f"{name} has no docstring"


def test_every_command_is_listed_with_its_help():
    from jupyter_mlops.cli import build_parser as cli_parser
    from jupyter_mlops.magics.commands import build_parser as magic_parser

    text = reference.current() or ""
    for prefix, parser in (("%mlops", magic_parser()), ("jupyter-mlops", cli_parser())):
        commands = reference._commands(parser)
        assert len(commands) >= 10
        for name, help_text in commands:
            assert help_text, f"{prefix} {name} has no help"
            assert f"| `{prefix} {name}` | {help_text} |" in text
