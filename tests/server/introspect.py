"""The routes and the HTTP methods their handlers implement, read from the code, so the
route-wide tests (R8) cover a new route or method without being edited; and what no
refusal may contain."""

from __future__ import annotations

import tornado.web

from jupyter_mlops.server import routes

METHODS = tornado.web.RequestHandler.SUPPORTED_METHODS
EXAMPLES = [example for _, _, example in routes.ROUTES]


def own_classes(handler: type) -> list[type]:
    """The classes of ``handler``'s MRO that are ours, not tornado's or jupyter_server's."""
    return [cls for cls in handler.__mro__ if cls.__module__.startswith("jupyter_mlops")]


def implemented(handler: type) -> list[str]:
    """HTTP methods a jupyter_mlops class defines for ``handler``."""
    return [m for m in METHODS
            if any(m.lower() in vars(cls) for cls in own_classes(handler))]


def not_implemented(handler: type) -> list[str]:
    return [m for m in METHODS if m not in implemented(handler)]


# (example path, method) for every route: the methods it serves, and all the others.
ROUTE_METHODS = [(example, method) for _, handler, example in routes.ROUTES
                 for method in implemented(handler)]
OTHER_METHODS = [(example, method) for _, handler, example in routes.ROUTES
                 for method in not_implemented(handler)]

# (example path, the method it is for): GET where a route has it, else its write.
ROUTE_MAIN_METHOD = [(example, "GET" if "GET" in implemented(handler) else
                      next(m for m in implemented(handler) if m != "OPTIONS"))
                     for _, handler, example in routes.ROUTES]


def split(example: str) -> tuple[str, dict | None]:
    """``"cells?session=x"`` → ``("cells", {"session": "x"})``."""
    path, _, query = example.partition("?")
    params = dict(part.split("=", 1) for part in query.split("&")) if query else None
    return path, params


def assert_no_data(body: bytes, seeded) -> None:
    """No run, experiment or artifact of the seeded store, and no traceback."""
    text = body.decode(errors="replace")
    for run_id in seeded.runs.values():
        assert run_id not in text
    for secret in ("alpha", "exp-a", seeded.png_sha256, "Traceback"):
        assert secret not in text
