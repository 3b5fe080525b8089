"""The scoring requests' own HTTP/1.1 front: plain ``POST /invocations`` without tornado.

tornado's request machinery (a coroutine per connection, header objects, a handler per
request, timeouts per read) costs more per request than scoring one row of a quick model.
So each accepted connection starts on a small asyncio protocol that reads requests itself.
A request it knows completely (``POST /invocations`` over HTTP/1.1 with a Content-Length
within the body limit, no ``Transfer-Encoding`` or ``Expect``, each header it reads given
once, Host and Origin allowed, a JSON or CSV Content-Type) is scored through the same
:class:`~jupyter_mlops.serving.server.ServingState` as tornado's handler: same scoring,
same journal before the answer, same errors (``app.failure``), same headers. At the first
request it does not take, it hands the connection, with the bytes read so far, to
tornado, which answers that request and the rest as it always did (every other route,
each refusal, a body over the limit, chunked bodies).
"""

from __future__ import annotations

import asyncio
import email.utils
import http.client
import logging
import os
import socket
import time
import uuid
from typing import Any

from ..errors import MLOpsError
from .app import ANSWER_HEADERS, failure
from .formats import dumps, media_type
from .predictions import REQUEST_ID_RE

log = logging.getLogger("jupyter_mlops.serving")
_MAX_HEAD = 16 * 1024
#: The headers a taken request may carry at most once (others are not read).
_READ = (b"host", b"content-length", b"content-type", b"origin", b"x-request-id",
         b"transfer-encoding", b"expect", b"connection")
_IDLE_S = 75.0  # tornado's idle_connection_timeout in this server
_BODY_S = 120.0  # and its body_timeout
_date: list = [0, b""]
_HEADERS = [f"{name}: {value}".encode() for name, value in ANSWER_HEADERS]


def _http_date() -> bytes:
    now = int(time.time())
    if now != _date[0]:
        _date[:] = [now, email.utils.formatdate(now, usegmt=True).encode()]
    return _date[1]


def supported() -> bool:
    """Whether a connection can be handed to this tornado with bytes already read."""
    import tornado.iostream

    stream = tornado.iostream.IOStream(socket.socket())
    try:
        return isinstance(getattr(stream, "_read_buffer", None), bytearray) and \
            isinstance(getattr(stream, "_read_buffer_size", None), int)
    finally:
        stream.close()


class Front:
    """The lean connections of one server, and the hand-off to its tornado ``HTTPServer``."""

    def __init__(self, state: Any, server: Any) -> None:
        self.state = state
        self.server = server
        self.connections: set[Connection] = set()
        self._loop = asyncio.get_running_loop()
        self._sweeper = self._loop.call_later(5.0, self._sweep)

    def adopt(self, sock: socket.socket, address: Any) -> None:
        """Serve a freshly accepted connection."""
        async def connect() -> None:
            try:
                await self._loop.connect_accepted_socket(
                    lambda: Connection(self, address), sock=sock)
            except OSError:
                sock.close()

        self._loop.create_task(connect())

    def hand_off(self, sock: socket.socket, address: Any, pending: bytes) -> None:
        """Give tornado the connection, its read bytes first (what TCPServer does on accept)."""
        import tornado.iostream

        stream = tornado.iostream.IOStream(sock, max_buffer_size=self.server.max_buffer_size,
                                           read_chunk_size=self.server.read_chunk_size)
        if pending:
            stream._read_buffer += pending
            stream._read_buffer_size += len(pending)
        self.server.handle_stream(stream, address)

    def _sweep(self) -> None:
        now = time.monotonic()
        for conn in list(self.connections):
            conn.expire(now)
        self._sweeper = self._loop.call_later(5.0, self._sweep)

    def close(self) -> None:
        self._sweeper.cancel()
        for conn in list(self.connections):
            conn.transport.close()


class Connection(asyncio.Protocol):
    """One client connection while its requests are ones the front takes."""

    def __init__(self, front: Front, address: Any) -> None:
        self.front = front
        self.address = address
        self.transport: Any = None
        self.buffer = bytearray()
        self.busy = False  # a request is being scored in a thread
        self.head: tuple | None = None  # the read head of a request whose body is coming
        self.gone = False
        self.last = time.monotonic()
        self.started: float | None = None  # when the partial request in the buffer began

    # -- asyncio callbacks -------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.front.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.gone = True
        self.front.connections.discard(self)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self.last = time.monotonic()
        if self.started is None:
            self.started = self.last
        if not self.busy:
            self._serve()

    def expire(self, now: float) -> None:
        if self.busy or self.gone:
            return
        if (not self.buffer and now - self.last > _IDLE_S) or \
                (self.buffer and self.started is not None and now - self.started > _BODY_S):
            self.transport.close()

    # -- requests ----------------------------------------------------------------------

    def _serve(self) -> None:
        """Answer every whole request in the buffer, in order."""
        while self.buffer and not self.gone and not self.busy:
            end = self.buffer.find(b"\r\n\r\n", 0, _MAX_HEAD)
            if end < 0:
                if len(self.buffer) >= _MAX_HEAD:
                    self._hand_off()
                return
            request = self.head or self._parse(bytes(self.buffer[:end]))
            if request is None:
                self._hand_off()
                return
            length, content_type, request_id, close = request
            total = end + 4 + length
            if len(self.buffer) < total:
                self.head = request  # the rest of the body is on its way
                return
            self.head = None
            body = bytes(self.buffer[end + 4:total])
            del self.buffer[:total]
            self.started = time.monotonic() if self.buffer else None
            state = self.front.state
            if state.inline(body):
                try:
                    scored = state.score_now(body, content_type, request_id)
                except Exception as exc:  # noqa: BLE001 - every failure becomes a status
                    self._fail(exc, request_id, close)
                else:
                    self._answer(scored, request_id, close)
                continue
            self.busy = True
            self.transport.pause_reading()
            asyncio.ensure_future(self._score_later(body, content_type, request_id, close))

    async def _score_later(self, body: bytes, content_type: str, request_id: str,
                           close: bool) -> None:
        try:
            scored = await self.front.state.score(body, content_type, request_id)
        except Exception as exc:  # noqa: BLE001
            self._fail(exc, request_id, close)
        else:
            self._answer(scored, request_id, close)
        self.busy = False
        if not self.gone:
            self.transport.resume_reading()
            self._serve()

    def _parse(self, head: bytes) -> tuple[int, str, str, bool] | None:
        """The request's Content-Length, Content-Type, request id and whether the client
        closes after it; None when tornado is to answer it."""
        if not head.isascii() or head.count(b"\n") != head.count(b"\r\n") or \
                head.count(b"\r") != head.count(b"\r\n") or b"\0" in head:
            return None  # a bare CR or LF, or a NUL: a proxy may read these lines otherwise
        lines = head.split(b"\r\n")
        if lines[0] != b"POST /invocations HTTP/1.1":
            return None
        seen: dict[bytes, str] = {}
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            if not colon or not name or name != name.strip() or line[:1] in b" \t":
                return None
            name = name.lower()
            if name in _READ:
                if name in seen:
                    return None
                seen[name] = value.strip().decode("ascii")
        length = seen.get(b"content-length")
        if b"transfer-encoding" in seen or b"expect" in seen or length is None or \
                not length.isdigit() or int(length) > self.front.state.max_body_bytes:
            return None
        host, content_type = seen.get(b"host"), seen.get(b"content-type")
        if not host or not content_type:
            return None
        access = self.front.state.access
        try:
            access.check_host(host)
            access.check_origin(seen.get(b"origin"))
            media_type(content_type)
        except MLOpsError:
            return None  # tornado refuses it, in its words
        request_id = seen.get(b"x-request-id")
        if request_id is None or not REQUEST_ID_RE.match(request_id):
            request_id = uuid.uuid4().hex
        connection = seen.get(b"connection", "").lower()
        return int(length), content_type, request_id, "close" in connection

    def _answer(self, scored: Any, request_id: str, close: bool) -> None:
        self._send(200, scored.body.encode(), [(b"X-Request-Id", request_id.encode()),
                                               (b"X-Model-Version", scored.answered_by.label
                                                .encode())], close)

    def _fail(self, exc: BaseException, request_id: str, close: bool) -> None:
        status, payload, headers = failure(exc, "POST", "/invocations")
        if status >= 500:
            log.warning("%d POST /invocations (%s)", status, self.address[0])
        self._send(status, dumps(payload).encode(),
                   [(b"X-Request-Id", request_id.encode())]
                   + [(k.encode(), v.encode()) for k, v in headers], close)

    def _send(self, status: int, body: bytes, headers: list, close: bool) -> None:
        if self.gone:
            return
        reason = http.client.responses.get(status, "Unknown").encode()
        lines = [b"HTTP/1.1 %d %s" % (status, reason), *_HEADERS, b"Date: " + _http_date()]
        lines += [name + b": " + value for name, value in headers]
        if close:
            lines.append(b"Connection: close")
        lines.append(b"Content-Length: %d" % len(body))
        self.transport.write(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        self.last = time.monotonic()
        if close:
            self.gone = True
            self.transport.close()

    def _hand_off(self) -> None:
        """tornado answers from here on: the unread request goes with the connection."""
        if self.transport.get_write_buffer_size():
            # An answer still leaving: tornado's must not overtake it.
            self.busy = True
            asyncio.get_running_loop().call_later(0.001, self._retry_hand_off)
            return
        pending = bytes(self.buffer)
        self.buffer = bytearray()
        sock = self.transport.get_extra_info("socket")
        try:
            copy = socket.socket(fileno=os.dup(sock.fileno()))
        except OSError:
            self.transport.abort()
            return
        self.gone = True
        self.front.connections.discard(self)
        self.transport.abort()  # closes asyncio's descriptor; the copy keeps the connection
        self.front.hand_off(copy, self.address, pending)

    def _retry_hand_off(self) -> None:
        self.busy = False
        if not self.gone:
            self._hand_off()
