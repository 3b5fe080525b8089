"""The HTTP side of serving: a tornado application over a :class:`ServingState`.

Thin handlers: they read the request, hand the work to the state (scoring runs in a thread
pool, so the event loop keeps answering ``/ping`` while a large batch is scored) and map
errors to statuses: a refused input → 400 (415 for a body that is neither JSON nor CSV),
a body over the limit → 413, an unknown model → 404, a locked store (or a predictions
journal that cannot be written, so the request is not answered) → 503 with Retry-After,
anything else → 500 without a traceback. Before any of it, ``access.py`` decides whether
the request is answered at all (Host, Origin, token, content type): 403 or 415 if not.

Endpoints: ``POST /invocations`` (MLflow's scoring protocol), ``GET /ping``, ``GET /health``,
``GET /version``, ``GET /metadata``, ``POST /reload`` and ``POST /labels``.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import tornado.web

from ..errors import (
    AccessDeniedError,
    JournalError,
    MLOpsError,
    NotFoundError,
    StoreFullError,
    StoreLockedError,
    ValidationError,
)
from .access import check_state_change_type
from .formats import BadRequest, dumps, load_json
from .predictions import REQUEST_ID_RE

log = logging.getLogger("jupyter_mlops.serving")


#: The headers of every answer, tornado's and the lean front's (``front.py``).
ANSWER_HEADERS = (("Content-Type", "application/json"), ("Server", "jupyter-mlops"),
                  ("X-Content-Type-Options", "nosniff"))


def failure(exc: BaseException, method: str, path: str) -> tuple[int, dict, list]:
    """The status, JSON payload and extra headers that answer a request failed by ``exc``
    (logged here when it is the server's fault)."""
    status, code = 500, "INTERNAL_ERROR"
    message = "Internal error while serving this request; the server log has the details."
    headers = []
    if isinstance(exc, AccessDeniedError):
        status, code, message = 403, "FORBIDDEN", str(exc)
    elif isinstance(exc, BadRequest):
        status, code, message = exc.status, "BAD_REQUEST", str(exc)
    elif isinstance(exc, ValidationError):
        status, code, message = 400, "BAD_REQUEST", str(exc)
    elif isinstance(exc, NotFoundError):
        status, code, message = 404, "NOT_FOUND", str(exc)
    elif isinstance(exc, StoreLockedError):
        status, code = 503, "STORE_LOCKED"
        message = "The store is locked by another process; retry shortly."
        headers.append(("Retry-After", "1"))
    elif isinstance(exc, (JournalError, StoreFullError)):
        status, code = 503, "NOT_LOGGED"
        message = ("The request could not be logged (the disk is full or the predictions "
                   "journal cannot be written), so it was not answered; retry later.")
        headers.append(("Retry-After", "5"))
        log.error("%s %s failed: %s", method, path, exc)
    elif isinstance(exc, MLOpsError):
        status, code = 500, "STORE_ERROR"
        message = f"{type(exc).__name__}: the store could not be used; see the server log."
        log.error("%s %s failed: %s", method, path, exc)
    else:
        log.error("%s %s failed", method, path, exc_info=(type(exc), exc, exc.__traceback__))
    return status, {"error_code": code, "message": message}, headers


class BaseHandler(tornado.web.RequestHandler):
    #: Changes the server's state: needs the token and a JSON (or no) body.
    changes_state = False

    @property
    def state(self):
        return self.application.settings["state"]

    def set_default_headers(self) -> None:
        for name, value in ANSWER_HEADERS:
            self.set_header(name, value)

    def prepare(self) -> None:
        self.allowed()

    def allowed(self) -> bool:
        """Whether this request is answered at all; when not, the refusal is sent."""
        access = self.state.access
        headers = self.request.headers
        try:
            access.check_host(self.request.host)
            if self.request.method == "POST":
                access.check_origin(headers.get("Origin"))
            if self.changes_state:
                access.check_token(headers.get("Authorization"), self.request.path)
                check_state_change_type(headers.get("Content-Type"), self.request.path,
                                        body=bool(self.request.body))
        except (AccessDeniedError, BadRequest) as exc:
            self.set_header("Connection", "close")  # the body, if any, is not read
            self.fail(exc)
            return False
        return True

    def send(self, payload: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(payload if isinstance(payload, (str, bytes)) else dumps(payload))

    def fail(self, exc: BaseException) -> None:
        status, payload, headers = failure(exc, self.request.method, self.request.path)
        for name, value in headers:
            self.set_header(name, value)
        self.send(payload, status)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        # tornado's own errors (405, malformed HTTP): JSON, never a traceback page.
        self.finish(dumps({"error_code": "HTTP_ERROR", "message": self._reason}))

    def json_body(self) -> Any:
        return load_json(self.request.body or b"{}")


@tornado.web.stream_request_body
class InvocationsHandler(BaseHandler):
    """``POST /invocations``: score the body; its size is checked as it streams in."""

    def prepare(self) -> None:
        self._chunks: list[bytes] = []
        self._size = 0
        self._too_large = False
        self._refused = not self.allowed()
        if self._refused:
            return
        limit = self.state.max_body_bytes
        length = self.request.headers.get("Content-Length")
        if length is not None and length.isdigit() and int(length) > limit:
            self._too_large = True
            if int(length) > self.state.discard_limit:
                # Far too large to read and throw away: answer now and close.
                self.set_header("Connection", "close")
                self._refuse()
                return
        self.request.connection.set_max_body_size(self.state.discard_limit)

    def data_received(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if self._too_large or self._refused:
            return
        if self._size > self.state.max_body_bytes:
            self._too_large = True
            self._chunks = []
            return
        self._chunks.append(chunk)

    def _refuse(self) -> None:
        limit = self.state.max_body_bytes
        self.send({"error_code": "REQUEST_TOO_LARGE",
                   "message": f"The body is larger than the limit of {limit:,} bytes; send "
                              "fewer rows per request (or start the server with a larger "
                              "--max-body-mb)."}, 413)

    async def post(self) -> None:
        if self._too_large:
            self._refuse()
            return
        request_id = self.request.headers.get("X-Request-Id")
        if request_id is None or not REQUEST_ID_RE.match(request_id):
            request_id = uuid.uuid4().hex
        self.set_header("X-Request-Id", request_id)
        body = b"".join(self._chunks)
        self._chunks = []
        try:
            scored = await self.state.score(body, self.request.headers.get("Content-Type"),
                                            request_id)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a status
            self.fail(exc)
            return
        # The records are in the predictions journal already (ServingState._score).
        self.set_header("X-Model-Version", scored.answered_by.label)
        self.send(scored.body)


class PingHandler(BaseHandler):
    def get(self) -> None:
        self.send("\n")


class HealthHandler(BaseHandler):
    def get(self) -> None:
        self.send(self.state.health())


class VersionHandler(BaseHandler):
    def get(self) -> None:
        self.send(self.state.version_info())


class MetadataHandler(BaseHandler):
    def get(self) -> None:
        self.send(self.state.deployment.metadata())


class ReloadHandler(BaseHandler):
    """``POST /reload`` (with the token): resolve the URIs again and swap the models in."""

    changes_state = True

    async def post(self) -> None:
        try:
            self.send(await self.state.reload_async())
        except Exception as exc:  # noqa: BLE001
            self.fail(exc)


class LabelsHandler(BaseHandler):
    """``POST /labels`` with ``{"request_id": ..., "labels": [...]}`` (and the token): true
    values arrive."""

    changes_state = True

    async def post(self) -> None:
        try:
            payload = self.json_body()
            if not isinstance(payload, dict) or "request_id" not in payload or \
                    "labels" not in payload:
                raise BadRequest('Send {"request_id": "...", "labels": [one per row]}.')
            count = await self.state.log_labels(payload["request_id"], payload["labels"])
            self.send({"request_id": payload["request_id"], "labelled_rows": count})
        except Exception as exc:  # noqa: BLE001
            self.fail(exc)


def make_app(state: Any) -> tornado.web.Application:
    def log_function(handler: tornado.web.RequestHandler) -> None:
        if handler.get_status() >= 500:
            log.warning("%d %s", handler.get_status(), handler._request_summary())

    return tornado.web.Application(
        [
            (r"/invocations", InvocationsHandler),
            (r"/ping", PingHandler),
            (r"/health", HealthHandler),
            (r"/version", VersionHandler),
            (r"/metadata", MetadataHandler),
            (r"/reload", ReloadHandler),
            (r"/labels", LabelsHandler),
        ],
        state=state,
        log_function=log_function,
        compress_response=False,
    )
