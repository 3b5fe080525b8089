"""``%%track``: run a cell inside a run, exactly as it would run without the magic.

The body is not re-executed by the magic. An input transformer removes the ``%%track``
line, so IPython runs the body as an ordinary cell (same output, ``_``, ``Out``,
top-level ``await``, magics, ``global``, ``del``), and the kernel hooks start the run before
the cell and end it after. The registered cell magic below gives ``%%track?`` its help and
serves the rare direct call of ``run_cell_magic('track', ...)``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from ..errors import ValidationError
from ..validation import check_name, check_tag

TRACK_HEADER = re.compile(r"^%%track(?:[ \t]+(?P<args>.*?))?[ \t]*$")


@dataclass(frozen=True)
class TrackOptions:
    name: str | None = None
    experiment: str = "default"
    tags: dict[str, str] = field(default_factory=dict)
    autolog: bool = True
    model: str | None = None  # --model VAR: the run's model, whatever else the cell fits
    quiet: bool = False  # -q: no one-line summary when the run ends
    training_metrics: bool = True  # a sweep's trials leave them out unless asked


def _track_arguments(func):
    """The options of ``%%track``, shared by the magic and the header parser."""
    for decorator in (
        argument("-q", "--quiet", action="store_true",
                 help="Print no summary line when the run ends (or set "
                      "JUPYTER_MLOPS_SUMMARY=off for every cell)."),
        argument("--model", default=None, metavar="VAR",
                 help="The variable holding the run's model; other models the cell fits "
                      "are kept in child runs only."),
        argument("--no-training-metrics", action="store_true",
                 help="Leave out MLflow's training metrics (a prediction over the fit "
                      "data), as a sweep's trials do."),
        argument("--no-autolog", action="store_true",
                 help="Log only what the cell logs explicitly with log_* calls."),
        argument("--tag", action="append", default=[], metavar="KEY=VALUE",
                 help="Tag the run; repeat for several tags."),
        argument("-e", "--experiment", default="default", help="Experiment the run belongs to."),
        argument("-n", "--name", default=None, help="Name of the run."),
        argument("run_name", nargs="?", default=None, help="Name of the run (same as -n)."),
    ):
        func = decorator(func)
    return magic_arguments()(func)


@_track_arguments
def _track_signature(line: str) -> None:
    """Record the cell as a run: params, metrics, models, figures and input data."""


def parse_track_line(line: str) -> TrackOptions:
    """Options of a ``%%track`` line; a mistake raises UsageError with one line to read."""
    from IPython.utils.process import arg_split

    # POSIX splitting, so that -n "my run" names the run my run, without the quotes.
    args = _track_signature.parser.parse_args(arg_split(line, posix=True))
    if args.name and args.run_name:
        raise UsageError("%%track takes the run name once: either NAME or -n NAME.")
    tags: dict[str, str] = {}
    try:
        for item in args.tag:
            key, sep, value = item.partition("=")
            if not sep:
                raise UsageError(f"--tag takes KEY=VALUE; got {item!r}.")
            tags[check_name("Tag key", key)] = check_tag(key, value)
        name = args.name or args.run_name
        if name is not None:
            check_name("Run name", name)
        check_name("Experiment name", args.experiment)
    except ValidationError as exc:
        raise UsageError(str(exc)) from None
    if args.model is not None and not args.model.isidentifier():
        raise UsageError(f"--model takes the name of a variable, such as --model clf; "
                         f"got {args.model!r}.")
    return TrackOptions(name, args.experiment, tags, not args.no_autolog, args.model,
                        args.quiet, not args.no_training_metrics)


def track_header(raw_cell: str) -> str | None:
    """The arguments of the ``%%track`` line opening ``raw_cell``, or None."""
    stripped = raw_cell.lstrip("\n\r \t")
    first = stripped.split("\n", 1)[0].rstrip("\r")
    match = TRACK_HEADER.match(first)
    if match is None:
        return None
    return match.group("args") or ""


class TrackTransformer:
    """Cleanup transformer: drops the ``%%track`` line so the body runs as a normal cell.

    It keeps a blank line in its place, so line numbers in tracebacks match the cell.
    """

    def __init__(self) -> None:
        self.tracking = False  # set by the kernel hooks while a tracked cell runs
        # The header it parsed last and its options: the hooks take them instead of
        # parsing the same line again.
        self.parsed: tuple[str, TrackOptions] | None = None

    def options_for(self, header: str) -> TrackOptions:
        """The options of a ``%%track`` header, parsed once per cell."""
        if self.parsed is not None and self.parsed[0] == header:
            return self.parsed[1]
        options = parse_track_line(header)
        self.parsed = (header, options)
        return options

    def __call__(self, lines: list[str]) -> list[str]:
        if not lines:
            return lines
        first = lines[0].rstrip("\r\n")
        match = TRACK_HEADER.match(first)
        if match is None:
            return lines
        if self.tracking:
            raise UsageError("nested %%track is not supported: the outer cell is already a run.")
        self.options_for(match.group("args") or "")
        rest = lines[1:]
        if rest and rest[0].startswith("%%"):
            return rest  # another cell magic must stay on the first line
        return ["\n", *rest]


@magics_class
class TrackMagics(Magics):
    def __init__(self, shell, hooks) -> None:
        super().__init__(shell)
        self.hooks = hooks

    @_track_arguments
    @cell_magic
    def track(self, line: str, cell: str):
        """Record this cell as a run.

        Params are the names the cell binds to literals, metrics the other numbers it binds,
        the model the cell ends with is saved as the run's model (``--model VAR`` names it;
        models fitted only inside loops, and every other fit of a cell that fits several,
        are child runs), matplotlib figures as PNG, and the DataFrames and arrays it reads
        are fingerprinted. A one-line summary follows the cell (``-q`` for none). An
        exception ends the run FAILED (KeyboardInterrupt: KILLED) and still reaches you.
        """
        return self.hooks.run_tracked_body(parse_track_line(line), cell)
