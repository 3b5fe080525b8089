"""Thin handlers: parse the request, run one :mod:`.queries` function in a thread, answer
strict JSON.

Every method, OPTIONS included, is ``@tornado.web.authenticated`` (no user → 403, as for
any jupyter_server API) and ``@authorized`` on the resource ``jupyter_mlops`` (the
server's authorizer may refuse it → 403). Errors are JSON ``{"message", "reason",
"error"}``: validation → 400, not found → 404, a locked store → 503 with ``Retry-After``,
anything else → 500 with neither a traceback nor a path of this machine.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any
from urllib.parse import quote

import tornado.web
from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler

from ..errors import MLOpsError, NotFoundError, StoreLockedError, ValidationError, shorten
from . import queries, renames
from .context import ServerContext

AUTH_RESOURCE = "jupyter_mlops"
CHUNK = 1 << 20
KERNEL_ID_CHARS = frozenset("0123456789abcdef-")
MAX_INT_ARGUMENT = 2**53  # the largest whole number a browser's JSON keeps exact
WHOLE_NUMBER_RE = re.compile(r"[-+]?[0-9]+")


class ApiError(tornado.web.HTTPError):
    """An error whose message is safe to show as is (no traceback, no local path)."""

    def __init__(self, status: int, message: str, kind: str) -> None:
        super().__init__(status)
        self.message = message
        self.kind = kind


def _error_for(exc: MLOpsError, context: ServerContext) -> ApiError:
    message = context.public_message(str(exc))
    if isinstance(exc, ValidationError):
        return ApiError(400, message, "invalid")
    if isinstance(exc, NotFoundError):
        return ApiError(404, message, "not_found")
    if isinstance(exc, StoreLockedError):
        return ApiError(503, message, "store_locked")
    return ApiError(500, message, "store_error")


class MLOpsHandler(APIHandler):
    """Base of every jupyter_mlops handler."""

    auth_resource = AUTH_RESOURCE

    @property
    def mlops(self) -> ServerContext:
        return self.settings["jupyter_mlops"]

    @tornado.web.authenticated
    @authorized
    def options(self, *args: Any, **kwargs: Any) -> None:
        """A CORS preflight answer, for a signed-in user only.

        jupyter_server answers OPTIONS to anyone. The sidebar calls this API from its own
        origin and never sends a preflight, and a browser's preflight carries no
        credentials: an anonymous OPTIONS is refused (403) like every other method.
        """
        super().options(*args, **kwargs)

    async def call(self, function: Any, *args: Any, **kwargs: Any) -> Any:
        """``function(store, *args, **kwargs)`` in the thread pool; errors become ApiError."""
        context = self.mlops

        def work() -> Any:
            return function(context.store(), *args, **kwargs)

        try:
            return await context.run(work)
        except MLOpsError as exc:
            raise _error_for(exc, context) from None

    async def live_kernels(self) -> list[renames.LiveKernel]:
        """The kernels this server runs, with their process and the notebook each serves."""
        from ..store.process import process_start

        kernels = []
        for session in await self.session_manager.list_sessions():
            kernel_id = (session.get("kernel") or {}).get("id")
            pid = self._kernel_pid(kernel_id) if kernel_id else None
            if pid is None:
                continue
            path = session.get("path") if session.get("type", "notebook") == "notebook" else None
            kernels.append(renames.LiveKernel(kernel_id, pid, process_start(pid),
                                              self.mlops.absolute(path) if path else None))
        return kernels

    async def follow_kernels(self) -> list[renames.LiveKernel]:
        """Bring the sessions of running kernels to the notebook each serves now (a
        notebook renamed since its kernel started); returns the live kernels."""
        kernels = await self.live_kernels()
        if kernels:
            try:
                await self.call(renames.follow_kernels, kernels)
            except ApiError as exc:  # a locked store: the next request tries again
                self.log.warning("jupyter_mlops: could not follow renamed notebooks: %s",
                                 exc.message)
        return kernels

    def _kernel_pid(self, kernel_id: str) -> int | None:
        """The process id of a kernel this server runs (None if unknown or remote)."""
        try:
            manager = self.kernel_manager.get_kernel(kernel_id)
        except (KeyError, tornado.web.HTTPError):
            return None
        provisioner = getattr(manager, "provisioner", None)
        pid = getattr(provisioner, "pid", None)
        return pid if isinstance(pid, int) else None

    def send_json(self, data: Any) -> None:
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps(data, allow_nan=False, ensure_ascii=False))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, ApiError):
            if exc.status_code == 503:
                self.set_header("Retry-After", "2")
            self.set_header("Content-Type", "application/json; charset=UTF-8")
            self.finish(json.dumps({"message": exc.message, "reason": None,
                                    "error": exc.kind}, allow_nan=False))
            return
        # jupyter_server's own answer: an HTTPError's message, or "Unhandled error" with
        # an empty traceback for anything unexpected (logged server-side in full).
        super().write_error(status_code, **kwargs)

    # -- request parsing ---------------------------------------------------------------

    def int_argument(self, name: str, default: int) -> int:
        raw = self.get_argument(name, None)
        if raw is None or raw == "":
            return default
        # ASCII digits only: int() would also read '5_0' as 50 and '١٠' as 10.
        if not WHOLE_NUMBER_RE.fullmatch(raw):
            raise ApiError(400, f"{name} must be a whole number; got {shorten(raw)}.",
                           "invalid")
        # Past 2**53 by its length alone: int() never reads thousands of digits.
        value = int(raw, 10) if len(raw) <= 20 else MAX_INT_ARGUMENT + 1
        if abs(value) > MAX_INT_ARGUMENT:
            raise ApiError(400, f"{name} is out of range; got {shorten(raw)}.", "invalid")
        return value

    def json_body(self) -> dict[str, Any]:
        """The request's body as a JSON object, or a 400 that shows the expected shape."""
        try:
            body = json.loads(self.request.body or b"null")
        except (ValueError, RecursionError):  # not JSON, or nested past Python's stack
            body = None
        if not isinstance(body, dict):
            raise ApiError(400, 'The body is a JSON object, such as {"alias": "champion", '
                                '"version": 2}.', "invalid")
        return body

    def list_argument(self, name: str) -> list[str]:
        values = []
        for raw in self.get_arguments(name):
            values.extend(part.strip() for part in raw.split(",") if part.strip())
        return values


class RunsHandler(MLOpsHandler):
    """``GET runs?experiment=&status=&q=&filter=&sort=&order=&offset=&limit=&parent=``"""

    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        order = self.get_argument("order", "desc").lower()
        if order not in ("asc", "desc"):
            raise ApiError(400, f"order is asc or desc; got {shorten(order)}.", "invalid")
        page = await self.call(
            queries.list_runs,
            experiments=[e for e in self.get_arguments("experiment") if e],
            statuses=[s.upper() for s in self.list_argument("status")],
            text=self.get_argument("q", "").strip() or None,
            filter_text=self.get_argument("filter", None),
            sort=self.get_argument("sort", "start_time"),
            descending=order == "desc",
            offset=self.int_argument("offset", 0),
            limit=self.int_argument("limit", 100),
            parent=self.get_argument("parent", None) or None,
        )
        self.send_json(page)


class RunHandler(MLOpsHandler):
    """``GET runs/<run_id>``"""

    @tornado.web.authenticated
    @authorized
    async def get(self, run_id: str) -> None:
        kernels = await self.follow_kernels()
        detail = await self.call(queries.run_detail, run_id, self.mlops.relative)
        # The kernel that made the run, while this server runs it: Go to cell falls back
        # to the notebook it serves when the recorded one is gone.
        kernel = await self.call(renames.kernel_of_session, detail["session_id"], kernels)
        detail["kernel_id"] = kernel.kernel_id if kernel else None
        self.send_json(detail)


class CompareHandler(MLOpsHandler):
    """``GET compare?runs=ID,ID&parent=ID&filter=&experiment=&metric=&summary=``"""

    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        self.send_json(await self.call(
            queries.compare, self.list_argument("runs"),
            parent=self.get_argument("parent", None) or None,
            filter_text=self.get_argument("filter", None),
            experiment=self.get_argument("experiment", None) or None,
            metric=self.get_argument("metric", None) or None,
            summary=self.get_argument("summary", "latest"),
        ))


class DataPreviewHandler(MLOpsHandler):
    """``GET runs/<run_id>/data/<fingerprint>``: the first rows of an input, as text."""

    @tornado.web.authenticated
    @authorized
    async def get(self, run_id: str, fingerprint: str) -> None:
        self.send_json(await self.call(queries.data_preview, run_id, fingerprint))


class CardHandler(MLOpsHandler):
    """``GET models/<name>/versions/<version>/card``: the model card as an HTML page."""

    @tornado.web.authenticated
    @authorized
    async def get(self, name: str, version: str) -> None:
        self.send_json(await self.call(queries.model_card_html, name, int(version)))


class ModelsHandler(MLOpsHandler):
    """``GET models``"""

    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        self.send_json(await self.call(queries.list_models))


class SchedulesHandler(MLOpsHandler):
    """``GET schedules``: the triggers, their next due time and last firing."""

    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        self.send_json(await self.call(queries.list_schedules))


class ModelHandler(MLOpsHandler):
    """``GET models/<name>``"""

    @tornado.web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        self.send_json(await self.call(queries.model_detail, name, self.mlops.relative))


class AliasesHandler(MLOpsHandler):
    """``POST models/<name>/aliases`` with ``{"alias": "champion", "version": 2}``: point
    the alias at that version (set or move), signed by the registry as ``set_alias`` signs
    it. A write: jupyter_server checks the XSRF token of a cookie-authenticated call."""

    @tornado.web.authenticated
    @authorized
    async def post(self, name: str) -> None:
        body = self.json_body()
        self.send_json(await self.call(queries.set_alias, name, body.get("alias"),
                                       body.get("version")))


class AliasHandler(MLOpsHandler):
    """``DELETE models/<name>/aliases/<alias>``: remove the alias; the version stays."""

    @tornado.web.authenticated
    @authorized
    async def delete(self, name: str, alias: str) -> None:
        self.send_json(await self.call(queries.delete_alias, name, alias))


class SessionsHandler(MLOpsHandler):
    """``GET sessions?notebook=<path from the server root>&kernel=<kernel id>``"""

    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        notebook = self.get_argument("notebook", None)
        kernel = self.get_argument("kernel", None)
        pid = None
        if kernel:
            if len(kernel) > 64 or not set(kernel.lower()) <= KERNEL_ID_CHARS:
                raise ApiError(400, f"Not a kernel id: {shorten(kernel)}.", "invalid")
            pid = self._kernel_pid(kernel)
        await self.follow_kernels()
        self.send_json(await self.call(
            queries.list_sessions, self.mlops.relative,
            notebook=self.mlops.absolute(notebook) if notebook else None, pid=pid,
            offset=self.int_argument("offset", 0), limit=self.int_argument("limit", 50),
        ))


class CellsHandler(MLOpsHandler):
    """``GET cells?session=<session id>&limit=``"""

    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        session = self.get_argument("session", "")
        if not session:
            raise ApiError(400, "cells needs ?session=<session id>; list them with "
                                "sessions.", "invalid")
        await self.follow_kernels()
        self.send_json(await self.call(queries.session_cells, session, self.mlops.relative,
                                       limit=self.int_argument("limit", 500)))


class ArtifactHandler(MLOpsHandler):
    """``GET artifacts/<sha256>``: the bytes, with their media type, as an attachment.

    The response can never run script in the Jupyter origin: ``nosniff``, a sandboxing
    Content-Security-Policy and ``Content-Disposition: attachment``. The file is opened
    once, without following links, and its sha256 checked before the first byte is sent;
    what is sent is hashed again and its last chunk held back until it proves right, so a
    file changed in place on the way ends as a cut-short download, never a whole one.
    """

    @tornado.web.authenticated
    @authorized
    async def get(self, sha256: str) -> None:
        # Cookie-authenticated GETs must carry the XSRF token too: an <img> on another
        # site cannot pull artifacts with the user's cookie.
        self.check_xsrf_cookie()
        artifact, info = await self.call(queries.open_artifact, sha256)
        try:
            self.set_header("Content-Type", info["media_type"])
            self.set_header("X-Content-Type-Options", "nosniff")
            self.set_header("Content-Security-Policy", "sandbox; default-src 'none'")
            self.set_header("Content-Disposition",
                            f"attachment; filename*=UTF-8''{quote(info['name'], safe='')}")
            self.set_header("Cache-Control", "private, max-age=31536000, immutable")
            self.set_header("Content-Length", str(info["bytes"]))
            held = b""
            while chunk := await self.mlops.run(artifact.read, CHUNK):
                if held:
                    self.write(held)
                    await self.flush()
                held = chunk
            if not artifact.intact():
                raise ApiError(500, f"Artifact {sha256[:12]} changed on disk while it was "
                                    "sent; the download was cut short. Log it again from "
                                    "its source.", "integrity")
            self.write(held)
        finally:
            artifact.close()
        # APIHandler.finish labels a response JSON unless told otherwise.
        self.finish(set_content_type=info["media_type"])


class VersionHandler(MLOpsHandler):
    """``GET version``: the server side's version and whether the store exists yet."""

    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        status = await self.call(queries.store_status, self.mlops.relative,
                                 self.mlops.store_path)
        # ?kernel_store=PATH: the store a kernel says it writes to (the sidebar asks the
        # kernel); is it this one? The answer names it as the browser already knows it.
        kernel_store = self.get_argument("kernel_store", None)
        if kernel_store:
            status["kernel_store"] = {
                "same": await self.mlops.run(same_folder, kernel_store, self.mlops.store_path),
                "path": kernel_store,
            }
        self.send_json(status)


def same_folder(a: str, b: Any) -> bool:
    """Whether two paths name one folder (through links; by name when missing)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(os.path.expanduser(a)) == os.path.realpath(b)


class MissingHandler(MLOpsHandler):
    """Anything else under the API prefix: a JSON 404, after authentication."""

    @tornado.web.authenticated
    @authorized
    async def get(self, path: str) -> None:
        raise ApiError(404, f"No such jupyter_mlops endpoint: {shorten(path)}.", "not_found")
