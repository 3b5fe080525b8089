"""``%mlops alerts [URI] [--since 7d]``: the alerts ``monitor`` recorded, as a DataFrame."""

from __future__ import annotations

from typing import Any


def run(shell, args) -> Any:
    from ..dashboards.listing import listing
    from ..dashboards.runs import frame_html
    from ..monitoring.monitor import list_alerts

    frame = list_alerts(args.uri, since=args.since)
    return listing(frame, lambda view: frame_html(
        view, ["created", "name", "version", "kind", "message"],
        note=f"{len(view)} alert(s)"))
