"""``%mlops alerts [URI] [--since 7d]``: the alerts ``monitor`` recorded, as a DataFrame."""

from __future__ import annotations

from typing import Any


def register(subparsers) -> None:
    """Add the ``alerts`` subcommand to ``%mlops``."""
    parser = subparsers.add_parser(
        "alerts", help="Alerts recorded by monitoring (drift, metrics), newest first.")
    parser.add_argument("uri", nargs="?", default=None, metavar="URI",
                        help="a model (all its versions) or one version: name@alias, name/3")
    parser.add_argument("--since", default=None, help="only the last 1h, 7d …")
    parser.set_defaults(handler=run)


def run(shell, args) -> Any:
    from ..dashboards.listing import listing
    from ..dashboards.runs import frame_html
    from ..monitoring.monitor import list_alerts

    frame = list_alerts(args.uri, since=args.since)
    return listing(frame, lambda view: frame_html(
        view, ["created", "name", "version", "kind", "message"],
        note=f"{len(view)} alert(s)"))
