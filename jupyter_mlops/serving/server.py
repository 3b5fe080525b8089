"""``serve(uri)``: a model server on its own event loop in a background thread.

The server resolves the URI in the registry, loads and verifies the version, binds its
socket in the caller's thread (so a busy port fails there, with a one-line message), then
runs tornado on a fresh asyncio loop in a daemon thread. The handle it returns has
``.url``, ``.reload()`` and ``.stop()``; in a notebook the kernel keeps running cells while
it serves. Scoring runs in a small thread pool, which also journals each request's records
before its answer leaves (``journal.py``); the predictions log stores them from its own
thread. ``stop()`` stops accepting, lets requests in flight finish, closes the connections
and drains the log. Who is answered at all (Host names, the token of ``/labels`` and
``/reload``) is ``access.py``'s.

An alias is watched: when ``name@champion`` is moved to another version, the server
loads the new one and swaps it in between requests (as ``POST /reload`` does).
"""

from __future__ import annotations

import atexit
import errno
import logging
import os
import socket
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import ValidationError, shorten
from .access import Access
from .deployment import Deployment, Scored, check_routing, load_served
from .fastpath import INLINE_BYTES
from .formats import BadRequest
from .predictions import PredictionLog

log = logging.getLogger("jupyter_mlops.serving")
DEFAULT_PORT = 8080
DEFAULT_MAX_BODY_MB = 20.0
DEFAULT_WATCH_S = 2.0
_running: weakref.WeakSet = weakref.WeakSet()


def _version_label(version: Any) -> str:
    return f"{version.name}/{version.version}"


class ServingState:
    """What the handlers share: the current deployment, the pool, the log and counters."""

    def __init__(self, deployment: Deployment, store: Any, *, challenger_uri: str | None,
                 split: float, shadow: bool, max_body_bytes: int, workers: int,
                 log_predictions: bool, access: Access) -> None:
        import concurrent.futures

        self.deployment = deployment
        self.access = access
        self.store = store
        self.champion_uri = deployment.champion.requested
        self.challenger_uri = challenger_uri
        self.split = split
        self.shadow = shadow
        self.max_body_bytes = max_body_bytes
        # Bodies up to this size are read and thrown away so the client gets a clean 413.
        self.discard_limit = max(4 * max_body_bytes, 64 * 1024 * 1024)
        self.executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="jupyter-mlops-score")
        self.log = PredictionLog(store) if log_predictions else None
        self.started = time.time()
        self.requests = 0
        self.errors = 0
        self.in_flight = 0
        self.reloads = 0
        self.worker: dict[str, int] | None = None  # {"index", "of", "pid"} in a pool
        self._reload_lock = threading.Lock()

    # -- scoring -----------------------------------------------------------------------

    async def score(self, body: bytes, content_type: str | None, request_id: str) -> Scored:
        import asyncio

        deployment = self.deployment  # this request finishes on it, whatever reloads meanwhile
        self.in_flight += 1
        self.requests += 1
        try:
            if deployment.inline and len(body) <= INLINE_BYTES:
                # A row or two of a quick model: the hop to a thread would cost more.
                return self._score(deployment, body, content_type, request_id)
            return await asyncio.get_running_loop().run_in_executor(
                self.executor, self._score, deployment, body, content_type, request_id)
        except BaseException:
            self.errors += 1
            raise
        finally:
            self.in_flight -= 1

    def inline(self, body: bytes) -> bool:
        """Whether ``body`` is scored on the event loop (:meth:`score_now`)."""
        return self.deployment.inline and len(body) <= INLINE_BYTES

    def score_now(self, body: bytes, content_type: str | None, request_id: str) -> Scored:
        """:meth:`score` on the event loop, for a body :meth:`inline` allows."""
        deployment = self.deployment
        self.in_flight += 1
        self.requests += 1
        try:
            return self._score(deployment, body, content_type, request_id)
        except BaseException:
            self.errors += 1
            raise
        finally:
            self.in_flight -= 1

    def _score(self, deployment: Deployment, body: bytes, content_type: str | None,
               request_id: str) -> Scored:
        """Score, then journal the records: nothing is answered that is not in the log's
        journal (a journal that cannot be written fails the request instead)."""
        try:
            scored = deployment.score(body, content_type, request_id)
        except RecursionError:
            raise BadRequest("The inputs nest lists or objects too deeply to be scored; send "
                             "rows of plain values.") from None
        if self.log is not None:
            self.log.extend(scored.records)
        return scored

    async def log_labels(self, request_id: Any, labels: Any) -> int:
        import asyncio

        from .predictions import log_labels

        from ..errors import NotFoundError

        loop = asyncio.get_running_loop()
        if self.log is not None:
            # A label may follow its request within milliseconds: store the request first.
            await loop.run_in_executor(self.executor, self.log.flush, 5.0)
        # In a pool, another worker may have answered the request: its writer stores it
        # within a batch interval.
        deadline = time.monotonic() + (3.0 if self.worker else 0.0)
        while True:
            try:
                return await loop.run_in_executor(
                    self.executor, lambda: log_labels(request_id, labels, store=self.store))
            except NotFoundError:
                if time.monotonic() >= deadline:
                    raise
                await asyncio.sleep(0.05)

    # -- reloading ---------------------------------------------------------------------

    def build(self) -> Deployment:
        champion = load_served(self.champion_uri, self.store)
        challenger = (load_served(self.challenger_uri, self.store)
                      if self.challenger_uri else None)
        return Deployment(champion, challenger, self.split or 0.0, self.shadow)

    def reload(self) -> dict[str, Any]:
        """Resolve the URIs again and swap in the new deployment; in-flight requests finish
        on the old one."""
        with self._reload_lock:
            old = self.deployment
            new = self.build()
            self.deployment = new
            self.reloads += 1
        changes = {"champion": {"from": old.champion.label, "to": new.champion.label}}
        if new.challenger is not None:
            changes["challenger"] = {"from": old.challenger.label if old.challenger else None,
                                     "to": new.challenger.label}
        return {"reloaded": True, **changes}

    async def reload_async(self) -> dict[str, Any]:
        import asyncio

        return await asyncio.get_running_loop().run_in_executor(self.executor, self.reload)

    def current_versions(self) -> tuple:
        from ..registry.versions import get_model_version

        versions = [get_model_version(self.champion_uri, store=self.store).version]
        if self.challenger_uri:
            versions.append(get_model_version(self.challenger_uri, store=self.store).version)
        return tuple(versions)

    def served_versions(self) -> tuple:
        return tuple(m.number for m in self.deployment.models)

    def check_aliases(self) -> bool:
        """Reload when an alias (or a bare name's latest version) now points elsewhere."""
        if self.current_versions() != self.served_versions():
            result = self.reload()
            log.info("Aliases moved; now serving %s", result)
            return True
        return False

    # -- reports -----------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        return {"status": "ok", "model": self.deployment.champion.label,
                "uptime_s": round(time.time() - self.started, 3), "requests": self.requests,
                "errors": self.errors, "in_flight": self.in_flight, "reloads": self.reloads,
                "predictions_log": self.log.stats() if self.log is not None else None,
                **({"worker": self.worker} if self.worker else {})}

    def version_info(self) -> dict[str, Any]:
        from .._version import __version__

        deployment = self.deployment
        info = {"name": deployment.champion.name, "version": deployment.champion.number,
                "uri": deployment.champion.version.uri, "requested": self.champion_uri,
                "server": f"jupyter-mlops {__version__}"}
        if deployment.challenger is not None:
            info["challenger"] = {"version": deployment.challenger.number,
                                  "uri": deployment.challenger.version.uri}
        return info


def bind(host: str, port: int) -> list[socket.socket]:
    """The listening sockets of ``host:port``, or a one-line ValidationError."""
    import tornado.netutil

    try:
        return tornado.netutil.bind_sockets(port, address=host or None)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ValidationError(
                f"Port {port} on {host} is already in use; choose another with --port (0 "
                "picks a free one)."
            ) from None
        raise ValidationError(f"Cannot listen on {host}:{port}: {exc.strerror or exc}.") from None


def _accept_paced(server: Any, sockets: list[socket.socket], front: Any = None, *,
                  paced: bool = True) -> Any:
    """Accept on sockets shared with sibling processes, one connection at a time.

    tornado accepts every pending connection at once, so the first process to wake would
    take a burst of new connections and leave its siblings idle. Here a worker that
    already holds a connection steps back for a moment after each accept, so an idle
    sibling takes the next (``paced``). A connection starts on ``front`` (``front.py``)
    when there is one, else on tornado. Returns the function that stops accepting.
    """
    import asyncio

    loop = asyncio.get_running_loop()
    stopped = threading.Event()

    def resume(sock: socket.socket) -> None:
        if not stopped.is_set():
            loop.add_reader(sock.fileno(), readable, sock)

    def readable(sock: socket.socket) -> None:
        try:
            connection, address = sock.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return  # a sibling took it
        except OSError as exc:
            log.warning("accept() failed: %s", exc)
            return
        if front is not None:
            front.adopt(connection, address)
        else:
            server._handle_connection(connection, address)  # what tornado's accept calls
        held = len(getattr(server, "_connections", ())) + \
            (len(front.connections) if front is not None else 0)
        if paced and held > 1:
            loop.remove_reader(sock.fileno())
            loop.call_later(0.001 * min(held, 5), resume, sock)

    def stop() -> None:
        stopped.set()
        for sock in sockets:
            loop.remove_reader(sock.fileno())

    for sock in sockets:
        sock.setblocking(False)
        resume(sock)
    return stop


def serve_until_stopped(stopped: threading.Event, check: Callable[[], None],
                        stop: Callable[[], None]) -> None:
    """Call ``check`` every half second until ``stopped`` is set or Ctrl-C or SIGTERM comes
    (taken as Ctrl-C on the main thread), then ``stop``: the foreground loop of a server
    and of a pool of worker processes."""
    import signal

    def on_signal(signum, frame):
        raise KeyboardInterrupt

    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, on_signal)
    try:
        while not stopped.wait(0.5):
            check()
    except KeyboardInterrupt:
        pass
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        stop()


class ModelServer:
    """A running (or stopped) model server; ``serve`` starts one.

    Attributes
    ----------
    url : str
        ``http://HOST:PORT``; POST to ``url + "/invocations"``.
    token : str
        What ``POST /labels`` and ``POST /reload`` need in ``Authorization: token TOKEN``;
        ``headers`` is that header, ready to send.
    """

    def __init__(self, uri: str, *, challenger: str | None = None, split: float | None = None,
                 shadow: bool = False, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
                 max_body_mb: float = DEFAULT_MAX_BODY_MB, workers: int | None = None,
                 watch_interval: float | None = DEFAULT_WATCH_S, log_predictions: bool = True,
                 store: Any = None, token: str | None = None,
                 allowed_hosts: Sequence[str] = ()) -> None:
        check_routing(challenger is not None, split, shadow)
        self.access = Access.create(token, allowed_hosts, host)
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValidationError(f"A port is a number from 0 to 65535 (0 picks a free one); "
                                  f"got {shorten(port)}.")
        if not isinstance(max_body_mb, (int, float)) or max_body_mb <= 0:
            raise ValidationError(f"max_body_mb must be a positive number of MiB; got "
                                  f"{shorten(max_body_mb)}.")
        self.uri = uri
        self.challenger_uri = challenger
        self.split = split
        self.shadow = shadow
        self.host = host
        self.port = port
        self.max_body_bytes = int(max_body_mb * 1024 * 1024)
        self.workers = workers or min(4, (os.cpu_count() or 1) + 1)
        self.watch_interval = watch_interval
        self.log_predictions = log_predictions
        self._store_arg = store
        self.state: ServingState | None = None
        self._thread: threading.Thread | None = None
        self._loop: Any = None  # the server thread's asyncio loop
        self._stop_event: Any = None  # an asyncio.Event, set by stop()
        self._ready = threading.Event()
        self._stopped = threading.Event()
        self._failure: BaseException | None = None
        self._sockets: list[socket.socket] = []
        # Set by a worker process of a pool (workers.py): the listening sockets it shares
        # with its siblings, and which of them it is.
        self._given_sockets: list[socket.socket] = []
        self._worker: dict[str, int] | None = None

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        host = self.host if self.host not in ("", "0.0.0.0", "::") else "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def token(self) -> str:
        return self.access.token

    @property
    def headers(self) -> dict[str, str]:
        """The header that ``POST /labels`` and ``POST /reload`` need."""
        return {"Authorization": f"token {self.access.token}"}

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and \
            not self._stopped.is_set()

    def start(self, timeout: float = 30.0) -> ModelServer:
        """Load the model(s), bind the port and start serving in a background thread."""
        if self._thread is not None:
            raise ValidationError(f"This server was already started ({self.url}); start a "
                                  "new one with serve().")
        from ..store import Store
        from ..store.current import get_store

        base = self._store_arg or get_store()
        # Its own connection: the log writer never queues behind the kernel's own writes.
        store = Store(base.path)
        try:
            deployment = Deployment(load_served(self.uri, store),
                                    load_served(self.challenger_uri, store)
                                    if self.challenger_uri else None,
                                    self.split or 0.0, self.shadow)
            self._sockets = self._given_sockets or bind(self.host, self.port)
            self.port = self._sockets[0].getsockname()[1]
            self.state = ServingState(deployment, store, challenger_uri=self.challenger_uri,
                                      split=self.split or 0.0, shadow=self.shadow,
                                      max_body_bytes=self.max_body_bytes, workers=self.workers,
                                      log_predictions=self.log_predictions, access=self.access)
            self.state.worker = self._worker
        except BaseException:
            for sock in self._sockets:
                sock.close()
            self._sockets = []
            store.close()
            raise
        self._thread = threading.Thread(target=self._run, name=f"jupyter-mlops-serve-{self.port}",
                                        daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout) or self._failure is not None:
            self.stop()
            raise ValidationError(f"The server did not start: {self._failure or 'timed out'}.")
        _running.add(self)
        return self

    def _run(self) -> None:
        import asyncio

        try:
            asyncio.run(self._main())
        except BaseException as exc:  # noqa: BLE001 - reported to start() or the log
            self._failure = exc
            self._ready.set()
            log.error("The model server at %s stopped on an error: %s", self.url, exc)
        finally:
            self._stopped.set()

    async def _main(self) -> None:
        import asyncio

        import tornado.httpserver

        from .app import make_app

        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        state = self.state
        server = tornado.httpserver.HTTPServer(
            make_app(state), max_body_size=state.discard_limit, idle_connection_timeout=75,
            body_timeout=120, xheaders=False)
        from . import front as lean

        stop_accepting = front = None
        if lean.supported():
            front = lean.Front(state, server)
            stop_accepting = _accept_paced(server, self._sockets, front,
                                           paced=self._worker is not None)
        elif self._worker is None:
            server.add_sockets(self._sockets)
        else:
            stop_accepting = _accept_paced(server, self._sockets)
        watcher = None
        if self.watch_interval:
            watcher = asyncio.ensure_future(self._watch(self.watch_interval))
        self._ready.set()
        await self._stop_event.wait()
        if stop_accepting is not None:
            stop_accepting()
        server.stop()
        deadline = time.monotonic() + self._grace
        while state.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        if watcher is not None:
            watcher.cancel()
        if front is not None:
            front.close()
        try:
            await asyncio.wait_for(server.close_all_connections(), timeout=2.0)
        except asyncio.TimeoutError:
            pass

    _grace = 10.0

    async def _watch(self, interval: float) -> None:
        import asyncio

        loop = asyncio.get_running_loop()
        last_problem = None
        while True:
            await asyncio.sleep(interval)
            try:
                await loop.run_in_executor(self.state.executor, self.state.check_aliases)
                last_problem = None
            except Exception as exc:  # noqa: BLE001 - a bad moment must not stop serving
                if str(exc) != last_problem:  # once, not every interval
                    log.warning("Checking the aliases of %s failed (still serving %s): %s",
                                self.uri, self.state.deployment.champion.label, exc)
                last_problem = str(exc)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting, finish requests in flight (up to ``timeout`` s), drain the log."""
        if self._thread is not None and self._loop is not None and self._stop_event is not None:
            self._grace = timeout
            try:
                self._loop.call_soon_threadsafe(self._stop_event.set)
            except RuntimeError:
                pass  # the loop has already closed
            self._thread.join(timeout + 5)
        for sock in self._sockets:
            sock.close()
        self._sockets = []
        state = self.state
        if state is not None:
            state.executor.shutdown(wait=True)
            if state.log is not None:
                state.log.close()
            state.store.close()
        self._stopped.set()
        _running.discard(self)

    def wait(self) -> None:
        """Block until the server stops (Ctrl-C or SIGTERM stops it)."""
        serve_until_stopped(self._stopped, lambda: None, self.stop)

    def reload(self) -> dict[str, Any]:
        """Resolve the URIs again now and swap the model(s) in; returns what changed."""
        if self.state is None:
            raise ValidationError("The server has not been started.")
        return self.state.reload()

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every prediction served so far is in the store."""
        return self.state is None or self.state.log is None or self.state.log.flush(timeout)

    @property
    def deployment(self) -> Deployment | None:
        return self.state.deployment if self.state is not None else None

    def __enter__(self) -> ModelServer:
        return self if self._thread is not None else self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        if self.state is None:
            return f"<ModelServer {self.uri} (not started)>"
        deployment = self.state.deployment
        served = _version_label(deployment.champion.version)
        if deployment.challenger is not None:
            mode = "shadow" if self.shadow else f"split {self.split:g}"
            served += f" + challenger {_version_label(deployment.challenger.version)} ({mode})"
        status = "running" if self.running else "stopped"
        return f"<ModelServer {self.uri} -> {served} at {self.url}, {status}>"


def serve(uri: str, *, challenger: str | None = None, split: float | None = None,
          shadow: bool = False, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
          max_body_mb: float = DEFAULT_MAX_BODY_MB, workers: int | None = None,
          watch_interval: float | None = DEFAULT_WATCH_S, log_predictions: bool = True,
          store: Any = None, token: str | None = None,
          allowed_hosts: Sequence[str] = ()) -> ModelServer:
    """Serve a registered version over HTTP in the background; returns the running server.

    ``POST {url}/invocations`` takes MLflow's scoring formats (``dataframe_split``,
    ``dataframe_records``, ``instances``, ``inputs``; JSON or CSV) and answers
    ``{"predictions": [...]}``. With ``challenger``, ``split`` is the share of requests the
    challenger answers, or ``shadow=True`` has it score every request while the champion
    answers; every version's outputs go to the predictions log, journaled before the answer
    leaves. ``port=0`` picks a free port. The server answers only loopback Host names, the
    address it listens on and ``allowed_hosts`` (``"*"``: any); ``POST /labels`` and
    ``POST /reload`` need ``token`` (default: ``$JUPYTER_MLOPS_SERVE_TOKEN``, else a new
    one), in ``server.token`` and ``server.headers``.

    Examples
    --------
    >>> server = serve("churn@champion", port=0)                     # doctest: +SKIP
    >>> requests.post(server.url + "/invocations",
    ...               json={"dataframe_records": rows}).json()      # doctest: +SKIP
    {'predictions': [0, 1]}
    >>> requests.post(server.url + "/labels", headers=server.headers,
    ...               json={"request_id": rid, "labels": [1, 0]})   # doctest: +SKIP
    >>> server.stop()                                               # doctest: +SKIP
    """
    return ModelServer(uri, challenger=challenger, split=split, shadow=shadow, host=host,
                       port=port, max_body_mb=max_body_mb, workers=workers,
                       watch_interval=watch_interval, log_predictions=log_predictions,
                       store=store, token=token, allowed_hosts=allowed_hosts).start()


def running_servers() -> list[ModelServer]:
    """The servers started in this process that are still running."""
    return [s for s in list(_running) if s.running]


def stop_all() -> None:
    for server in list(_running):
        server.stop()


atexit.register(stop_all)
