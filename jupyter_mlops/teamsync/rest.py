"""MLflow's REST API over the standard library: JSON calls, artifact uploads, and errors
translated into one line that names the server.

Speaking the protocol directly (no ``mlflow`` package) keeps a sync light: a notebook that
pushes its runs does not import MLflow's client, its SQLAlchemy and its plugins. Auth is
MLflow's own: ``MLFLOW_TRACKING_TOKEN`` (a bearer token) or ``MLFLOW_TRACKING_USERNAME`` and
``MLFLOW_TRACKING_PASSWORD`` (basic auth). Every request has a timeout; none is retried here,
because the caller records what succeeded and the next sync resumes from there.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import threading
from collections.abc import Iterator
from typing import IO, Any
from urllib.parse import quote, urlencode, urlsplit

from ..errors import SyncError, ValidationError, shorten

API = "/api/2.0/mlflow/"
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts/"
TIMEOUT_S = 60.0
PAGE = 1000  # runs/search's largest page
MAX_PAGES = 10_000  # bounds every paging loop


class RemoteError(SyncError):
    """The server answered with an error: its HTTP status and MLflow's error code."""

    def __init__(self, message: str, status: int, code: str | None) -> None:
        super().__init__(message)
        self.status, self.code = status, code


def normalize_uri(uri: str) -> str:
    """``http(s)://host[:port][/prefix]`` without a trailing slash, or a clear refusal."""
    if not isinstance(uri, str):
        raise ValidationError(f"A tracking server is an http(s) URI; got {shorten(uri)}.")
    parts = urlsplit(uri.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(
            f"A tracking server is an http(s) URI such as http://mlflow:5000; got "
            f"{shorten(uri)}.")
    if parts.query or parts.fragment:
        raise ValidationError(f"The tracking URI {shorten(uri)} carries a query or fragment; "
                              "give scheme, host, port and path only.")
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def auth_header() -> dict[str, str]:
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    if token:
        return {"Authorization": f"Bearer {token}"}
    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    password = os.environ.get("MLFLOW_TRACKING_PASSWORD")
    if user and password is not None:
        pair = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        return {"Authorization": f"Basic {pair}"}
    return {}


class Client:
    """One tracking server; a keep-alive connection per thread (pushes run on a few)."""

    def __init__(self, uri: str, timeout: float = TIMEOUT_S) -> None:
        self.uri = normalize_uri(uri)
        parts = urlsplit(self.uri)
        self._https = parts.scheme == "https"
        self._host, self._port = parts.hostname, parts.port
        self._prefix = parts.path
        self._headers = {"Host": parts.netloc, **auth_header()}
        self.timeout = timeout
        self._local = threading.local()
        self._connections: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    # -- transport -----------------------------------------------------------------

    def _connection(self) -> http.client.HTTPConnection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            connection = kind(self._host, self._port, timeout=self.timeout)
            self._local.connection = connection
            with self._lock:
                self._connections.append(connection)
        return connection

    def close(self) -> None:
        with self._lock:
            for connection in self._connections:
                connection.close()
            self._connections.clear()

    def request(self, method: str, path: str, body: bytes | IO[bytes] | None = None,
                headers: dict[str, str] | None = None, length: int | None = None
                ) -> tuple[int, bytes]:
        """One HTTP exchange; a dropped keep-alive connection is reopened once."""
        sent = {**self._headers, **(headers or {})}
        if length is not None:
            sent["Content-Length"] = str(length)
        target = self._prefix + path
        for attempt in (0, 1):
            connection = self._connection()
            try:
                connection.request(method, target, body=body, headers=sent)
                response = connection.getresponse()
                return response.status, response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError,
                    ConnectionResetError) as exc:
                connection.close()
                self._local.connection = None
                # Only a request whose body can be sent again is repeated, and only when
                # the connection was an old one the server had closed.
                if attempt or not (body is None or isinstance(body, bytes)):
                    raise SyncError(f"{self.uri} closed the connection ({exc}).") from None
            except (socket.timeout, TimeoutError):
                connection.close()
                self._local.connection = None
                raise SyncError(f"{self.uri} did not answer within {self.timeout:g} s.") from None
            except OSError as exc:
                connection.close()
                self._local.connection = None
                raise SyncError(f"{self.uri} cannot be reached ({exc.strerror or exc}).") from None
        raise AssertionError("unreachable")

    def _check(self, status: int, data: bytes, what: str) -> Any:
        if 200 <= status < 300:
            return json.loads(data) if data.strip() else {}
        code = message = None
        try:
            answer = json.loads(data)
            code, message = answer.get("error_code"), answer.get("message")
        except (ValueError, AttributeError):
            pass
        if status in (401, 403):
            hint = ("set MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME and "
                    "MLFLOW_TRACKING_PASSWORD, to credentials the server accepts")
            raise RemoteError(f"{self.uri} refused {what} ({status}): {hint}.", status, code)
        detail = shorten(message or data.decode("utf-8", "replace").strip() or "no detail", 160)
        raise RemoteError(f"{self.uri} answered {status} to {what}: {detail}", status, code)

    # -- JSON API --------------------------------------------------------------------

    def call(self, method: str, endpoint: str, payload: dict[str, Any] | None = None) -> Any:
        """``endpoint`` of MLflow's REST API (``runs/create``): GET with a query, else JSON."""
        if method == "GET":
            query = f"?{urlencode(payload, doseq=True)}" if payload else ""
            status, data = self.request("GET", API + endpoint + query)
        else:
            body = json.dumps(payload or {}, allow_nan=False).encode()
            status, data = self.request(method, API + endpoint, body,
                                        {"Content-Type": "application/json"})
        return self._check(status, data, endpoint)

    def get_or_none(self, endpoint: str, payload: dict[str, Any]) -> Any:
        """A GET whose 'not found' (404, RESOURCE_DOES_NOT_EXIST, a missing alias) is None."""
        try:
            return self.call("GET", endpoint, payload)
        except RemoteError as exc:
            if exc.status == 404 or exc.code == "RESOURCE_DOES_NOT_EXIST":
                return None
            if exc.code == "INVALID_PARAMETER_VALUE" and "not found" in str(exc):
                return None
            raise

    def search_runs(self, experiment_ids: list[str], filter_string: str = "") -> Iterator[dict]:
        token = None
        for _ in range(MAX_PAGES):
            payload: dict[str, Any] = {"experiment_ids": experiment_ids, "max_results": PAGE,
                                       "filter": filter_string, "run_view_type": "ACTIVE_ONLY"}
            if token:
                payload["page_token"] = token
            answer = self.call("POST", "runs/search", payload)
            yield from answer.get("runs", [])
            token = answer.get("next_page_token")
            if not token:
                return

    # -- artifacts ---------------------------------------------------------------------

    def upload(self, path: str, body: bytes | IO[bytes], length: int) -> None:
        """PUT one file at ``path`` below the server's proxied artifact root."""
        status, data = self.request("PUT", ARTIFACTS + quote(path), body,
                                    {"Content-Type": "application/octet-stream"}, length)
        self._check(status, data, f"the upload of {path}")

    def artifact_path(self, uri: str) -> str:
        """The path below the proxied artifact root of an ``mlflow-artifacts:`` URI."""
        if not uri.startswith("mlflow-artifacts:"):
            raise SyncError(f"{self.uri} stores artifacts at {shorten(uri)}, which it does "
                            "not proxy; start the server with --serve-artifacts (the default).")
        rest = uri[len("mlflow-artifacts:"):]
        if rest.startswith("//"):
            rest = rest[2:].split("/", 1)[1] if "/" in rest[2:] else ""
        return rest.strip("/")

    def download(self, path: str) -> bytes:
        status, data = self.request("GET", ARTIFACTS + quote(path))
        if not 200 <= status < 300:
            self._check(status, data, f"the download of {path}")
        return data


def experiment_id(client: Client, name: str) -> tuple[str, bool]:
    """The id of experiment ``name`` on the server, and whether this call made it."""
    found = client.get_or_none("experiments/get-by-name", {"experiment_name": name})
    if found is None:
        try:
            return client.call("POST", "experiments/create", {"name": name})[
                "experiment_id"], True
        except RemoteError as exc:
            if exc.code != "RESOURCE_ALREADY_EXISTS":
                raise
            found = client.call("GET", "experiments/get-by-name", {"experiment_name": name})
    experiment = found["experiment"]
    if experiment.get("lifecycle_stage") == "deleted":
        raise SyncError(f"Experiment {name!r} is deleted on {client.uri}; restore it there "
                        "(mlflow experiments restore) or rename it here.")
    return experiment["experiment_id"], False
