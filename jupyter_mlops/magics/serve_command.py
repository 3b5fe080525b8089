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
