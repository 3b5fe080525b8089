"""``%mlops serve URI``: serve a version from the notebook, in the background of the kernel.

The subcommand returns the running :class:`~jupyter_mlops.serving.ModelServer`, so
``server = %mlops serve churn@champion`` keeps a handle with ``.url``, ``.stop()`` and
``.headers`` (the token that ``POST /labels`` and ``/reload`` need; never printed into
the notebook, which is saved with its outputs);
``%mlops serve --stop`` stops every server this kernel started, ``--list`` lists them.
The port defaults to a free one (``--port 8080`` to choose).
"""

from __future__ import annotations

from typing import Any

from IPython.core.error import UsageError


def register(subparsers) -> None:
    """Add the ``serve`` subcommand to ``%mlops``."""
    parser = subparsers.add_parser(
        "serve", help="Serve a version over HTTP in the background; returns the server.",
        description="Serve URI at http://127.0.0.1:PORT/invocations (MLflow's scoring "
                    "protocol) while the kernel keeps running cells.")
    parser.add_argument("uri", nargs="?", default=None, metavar="URI",
                        help="name@alias, name/VERSION or models:/…")
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--challenger", default=None, metavar="URI")
    parser.add_argument("--split", type=float, default=None, metavar="SHARE",
                        help="share of requests the challenger answers")
    parser.add_argument("--shadow", action="store_true",
                        help="the challenger scores every request; the champion answers")
    parser.add_argument("--max-body-mb", type=float, default=20.0)
    parser.add_argument("--no-log", action="store_true", help="do not log predictions")
    parser.add_argument("--allowed-host", action="append", metavar="NAME",
                        help="also answer requests to this host name (loopback always)")
    parser.add_argument("--token", default=None,
                        help="the token POST /labels and /reload need (default: a new one, "
                             "in server.token)")
    parser.add_argument("--stop", action="store_true",
                        help="stop the servers this kernel started (all, or URI's)")
    parser.add_argument("--list", action="store_true", help="list this kernel's servers")
    parser.set_defaults(handler=run)


def run(shell, args) -> Any:
    from ..serving import running_servers, serve

    if args.stop or args.list:
        servers = [s for s in running_servers() if args.uri in (None, s.uri)]
        if args.list:
            return servers
        for server in servers:
            server.stop()
        print(f"Stopped {len(servers)} server(s).")
        return None
    if args.uri is None:
        raise UsageError("%mlops serve takes a model URI, such as churn@champion.")
    server = serve(args.uri, challenger=args.challenger, split=args.split, shadow=args.shadow,
                   host=args.host, port=args.port, max_body_mb=args.max_body_mb,
                   log_predictions=not args.no_log, token=args.token,
                   allowed_hosts=args.allowed_host or ())
    return server
