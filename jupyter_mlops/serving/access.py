"""Who the model server answers: Host names, cross-site requests and the token.

A server on 127.0.0.1 is still reachable from every web page the user opens: a page can
point a name it controls at 127.0.0.1 (DNS rebinding) or post a form to it. So, as
Jupyter's own server does:

- every request must name an allowed Host: loopback names and addresses by default, the
  address the server listens on, and what ``--allowed-host`` adds (``*``: any);
- a POST that carries an ``Origin`` must come from an allowed host, too;
- ``/reload`` and ``/labels`` change state: they need the server's token
  (``Authorization: token TOKEN``, or ``Bearer``), generated at start unless given, and
  refuse the content types a cross-site form can send without asking (``text/plain``,
  ``application/x-www-form-urlencoded``, ``multipart/form-data``).

Scoring (``/invocations``) needs no token: it is MLflow's protocol, its clients send none,
and it only takes JSON or CSV, which a cross-site page cannot post without a preflight
this server never answers.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ..errors import AccessDeniedError, ValidationError, shorten

TOKEN_ENV = "JUPYTER_MLOPS_SERVE_TOKEN"
LOCAL_NAMES = ("localhost",)
SIMPLE_TYPES = ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data")
_TOKEN = re.compile(r"^[\x21-\x7e]{16,256}\Z")
_WILDCARDS = ("", "0.0.0.0", "::")


def new_token() -> str:
    return secrets.token_hex(24)


def check_token(token: str | None) -> str:
    """The token to use: ``token``, else ``$JUPYTER_MLOPS_SERVE_TOKEN``, else a new one."""
    if token is None:
        token = os.environ.get(TOKEN_ENV) or new_token()
    if not isinstance(token, str) or not _TOKEN.match(token):
        given = (f"the one given has {len(token)} character(s)" if isinstance(token, str)
                 else f"got {type(token).__name__}")
        raise ValidationError("A server token is 16 to 256 printable characters without "
                              f"spaces; {given}. Leave it out to have one generated.")
    return token


def _host_name(host: str) -> str:
    """``host`` without a port or IPv6 brackets, lowercase."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host[1:]
    if host.count(":") == 1:
        host = host.partition(":")[0]
    return host.rstrip(".")


def _is_loopback(name: str) -> bool:
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return name in LOCAL_NAMES or name.endswith(".localhost")


@dataclass
class Access:
    """The allowed hosts and the token of one server."""

    token: str
    allowed_hosts: set[str] = field(default_factory=set)

    @classmethod
    def create(cls, token: str | None, allowed_hosts: Iterable[str] = (),
               listen: str = "127.0.0.1") -> Access:
        names = set()
        for host in allowed_hosts or ():
            if not isinstance(host, str) or not host.strip() or any(c in host for c in "/ @"):
                raise ValidationError(f"--allowed-host takes a host name or address (or *); "
                                      f"got {shorten(host)}.")
            names.add("*" if host.strip() == "*" else _host_name(host))
        if listen not in _WILDCARDS:
            names.add(_host_name(listen))
        return cls(check_token(token), names)

    @property
    def any_host(self) -> bool:
        return "*" in self.allowed_hosts

    def host_allowed(self, host: str) -> bool:
        name = _host_name(host)
        return self.any_host or _is_loopback(name) or name in self.allowed_hosts

    def check_host(self, host: str) -> None:
        if not self.host_allowed(host):
            raise AccessDeniedError(
                f"Host {shorten(_host_name(host), 60)} is not served here; start the server "
                f"with --allowed-host {_host_name(host)[:60]} to answer it.")

    def check_origin(self, origin: str | None) -> None:
        """A POST from a web page must come from a page of an allowed host."""
        if origin is None:
            return
        host = urlsplit(origin).netloc if origin != "null" else ""
        if not host or not self.host_allowed(host):
            raise AccessDeniedError(f"Cross-site request from {shorten(origin, 60)} refused: "
                                    "only pages of the allowed hosts may post here.")

    def check_token(self, authorization: str | None, route: str) -> None:
        scheme, _, value = (authorization or "").strip().partition(" ")
        if scheme.lower() not in ("token", "bearer") or not value.strip():
            raise AccessDeniedError(
                f"POST {route} needs the server's token: send the header 'Authorization: "
                "token TOKEN' (printed when the server started; server.token in Python).")
        if not hmac.compare_digest(value.strip().encode(), self.token.encode()):
            raise AccessDeniedError(f"Wrong token for POST {route}; use the one printed when "
                                    "the server started (server.token in Python).")


def check_state_change_type(content_type: str | None, route: str, *, body: bool) -> None:
    """``route`` changes state: a type a cross-site form can send is refused (415)."""
    from .formats import JSON_TYPE, UnsupportedMediaType

    mime = (content_type or "").partition(";")[0].strip().lower()
    if not mime and not body:
        return
    if mime != JSON_TYPE:
        why = (" (a type any web page can post cross-site)" if mime in SIMPLE_TYPES
               else "")
        raise UnsupportedMediaType(
            f"POST {route} takes {JSON_TYPE}; got {shorten(mime or 'no Content-Type', 60)}"
            f"{why}.")
