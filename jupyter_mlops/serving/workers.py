"""``jupyter-mlops serve --workers N``: N processes answering on one port.

The pool binds the listening socket once, in the caller (a busy port fails there, in one
line), and starts N worker processes that inherit it: fresh interpreters, not forks, so
no thread, lock or OpenMP pool of the parent is copied half-way. Each worker is a whole
:class:`~jupyter_mlops.serving.server.ModelServer`: its own model, scoring threads, store
connection and predictions log. The log's journal file is named after its process
(``journal.py``), so a request's records are journaled by the worker that answered it
before the answer leaves, and stored once by that worker's writer; the store's
insert-once rule holds across processes as it does across restarts.

A worker that dies is started again; the new one adopts the dead one's journal and
stores what it holds, each record once. ``stop()`` (SIGTERM, Ctrl-C) stops each worker
cleanly: it finishes the requests in flight and drains its log. A worker whose pool is
gone (SIGKILL) stops by itself.
"""

from __future__ import annotations

import json
import logging
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

from ..errors import ValidationError, shorten
from .access import TOKEN_ENV, Access
from .deployment import check_routing
from .server import DEFAULT_MAX_BODY_MB, DEFAULT_PORT, DEFAULT_WATCH_S, bind

log = logging.getLogger("jupyter_mlops.serving")
_READY = "JUPYTER-MLOPS-WORKER-READY"
_RESTARTS_PER_MINUTE = 5
# A worker's interpreter starts here (``-m`` would run this module a second time, beside
# the copy the package imports).
_ENTRY = ("import json, sys\nfrom jupyter_mlops.serving.workers import worker_main\n"
          "sys.exit(worker_main(json.loads(sys.argv[1])))")


class WorkerPool:
    """N model-server processes sharing one port; ``start()``, ``wait()``, ``stop()``.

    Takes the arguments of :func:`~jupyter_mlops.serving.serve`, with ``workers`` the number
    of processes and ``threads`` the scoring threads of each.

    Examples
    --------
    >>> pool = WorkerPool("churn@champion", workers=2, port=8000).start()   # doctest: +SKIP
    >>> pool.url                                                            # doctest: +SKIP
    'http://127.0.0.1:8000'
    >>> pool.stop()                                                         # doctest: +SKIP
    """

    def __init__(self, uri: str, *, workers: int = 2, challenger: str | None = None,
                 split: float | None = None, shadow: bool = False, host: str = "127.0.0.1",
                 port: int = DEFAULT_PORT, max_body_mb: float = DEFAULT_MAX_BODY_MB,
                 threads: int | None = None, watch_interval: float | None = DEFAULT_WATCH_S,
                 log_predictions: bool = True, store: Any = None, token: str | None = None,
                 allowed_hosts: Sequence[str] = ()) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 64:
            raise ValidationError(f"--workers is a number of processes from 1 to 64; got "
                                  f"{shorten(workers)}.")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValidationError(f"A port is a number from 0 to 65535 (0 picks a free one); "
                                  f"got {shorten(port)}.")
        check_routing(challenger is not None, split, shadow)
        self.access = Access.create(token, allowed_hosts, host)
        self.uri = uri
        self.workers = workers
        self.host = host
        self.port = port
        self.served = ""
        self._config = {"uri": uri, "challenger": challenger, "split": split, "shadow": shadow,
                        "host": host, "max_body_mb": max_body_mb, "threads": threads,
                        "watch_interval": watch_interval, "log_predictions": log_predictions,
                        "allowed_hosts": list(allowed_hosts), "of": workers}
        self._store_arg = store
        self._sockets: list[socket.socket] = []
        self._procs: list[subprocess.Popen | None] = [None] * workers
        self._restarts: list[float] = []
        self._stopping = threading.Event()

    @property
    def url(self) -> str:
        host = self.host if self.host not in ("", "0.0.0.0", "::") else "127.0.0.1"
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    @property
    def token(self) -> str:
        return self.access.token

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.access.token}"}

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs if p is not None and p.poll() is None]

    def start(self, timeout: float = 120.0) -> WorkerPool:
        """Check the URI, bind the port, start the workers and wait until each serves."""
        from ..registry.versions import get_model_version
        from ..store.current import get_store

        store = self._store_arg or get_store()
        version = get_model_version(self.uri, store=store)  # a wrong name fails here
        self.served = f"{version.name}/{version.version}"
        self._config["store"] = str(store.path)
        self._sockets = bind(self.host, self.port)
        self.port = self._sockets[0].getsockname()[1]
        self._config["fds"] = [sock.fileno() for sock in self._sockets]
        try:
            for index in range(self.workers):
                self._procs[index] = self._spawn(index)
            deadline = time.monotonic() + timeout
            for index, proc in enumerate(self._procs):
                self._wait_ready(index, proc, deadline)
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self, index: int) -> subprocess.Popen:
        env = {**os.environ, TOKEN_ENV: self.access.token}
        config = json.dumps({**self._config, "index": index, "pool": os.getpid()},
                            allow_nan=False)
        # Its own session: Ctrl-C in a terminal reaches the pool, which stops each worker once.
        return subprocess.Popen([sys.executable, "-c", _ENTRY, config],
                                pass_fds=self._config["fds"], env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, start_new_session=True)

    def _wait_ready(self, index: int, proc: subprocess.Popen, deadline: float) -> None:
        line = b""
        # A selector, not select.select: a process with over 1,024 open files is fine too.
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if selector.select(0.2):
                    line = proc.stdout.readline()
                    if line.strip() == _READY.encode() or not line:
                        break
                elif proc.poll() is not None:
                    break
        if line.strip() == _READY.encode():
            proc.stdout.close()
            return
        code = proc.poll()
        raise ValidationError(
            f"Worker {index} of {self.workers} did not start "
            + (f"(it exited with code {code}; its error is above)." if code is not None
               else "in time.")
        )

    def check(self) -> None:
        """Start again any worker that died (not more than a few times a minute)."""
        for index, proc in enumerate(self._procs):
            if self._stopping.is_set() or proc is None or proc.poll() is None:
                continue
            now = time.monotonic()
            self._restarts = [t for t in self._restarts if now - t < 60] + [now]
            if len(self._restarts) > _RESTARTS_PER_MINUTE:
                raise ValidationError(f"Workers exited {len(self._restarts)} times in a minute "
                                      "(the last with code "
                                      f"{proc.returncode}); the server log says why.")
            log.warning("Worker %d (pid %d) exited with code %s; starting it again.", index,
                        proc.pid, proc.returncode)
            self._procs[index] = new = self._spawn(index)
            self._wait_ready(index, new, time.monotonic() + 120)

    def wait(self) -> None:
        """Serve until SIGTERM or Ctrl-C, restarting workers that die; then stop."""
        from .server import serve_until_stopped

        serve_until_stopped(self._stopping, self.check, self.stop)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop every worker cleanly (requests in flight finish, logs drain)."""
        self._stopping.set()
        procs = [p for p in self._procs if p is not None]
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("Worker %d did not stop in %g s; killed (its journal keeps what it "
                          "did not store).", proc.pid, timeout)
                proc.kill()
                proc.wait(10)
            if proc.stdout is not None:
                proc.stdout.close()
        for sock in self._sockets:
            sock.close()
        self._sockets = []

    def __enter__(self) -> WorkerPool:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<WorkerPool {self.uri} x{self.workers} at {self.url}>"


def _watch_pool(pool_pid: int) -> None:
    """Stop this worker when its pool is gone (killed without a chance to stop it)."""
    while True:
        time.sleep(1.0)
        if os.getppid() != pool_pid:
            os.kill(os.getpid(), signal.SIGTERM)
            return


def worker_main(config: dict[str, Any]) -> int:
    """A worker process: serve on the inherited sockets until SIGTERM; 2 with one line
    when the model cannot be served."""
    from ..errors import MLOpsError

    try:
        return _serve_worker(config)
    except MLOpsError as exc:
        print(f"jupyter-mlops serve: worker {config['index']}: {exc}", file=sys.stderr)
        return 2


def _serve_worker(config: dict[str, Any]) -> int:
    from ..store import Store
    from .fastpath import silence_feature_name_warning
    from .server import ModelServer

    logging.basicConfig(level=logging.WARNING,
                        format=f"[worker {config['index']}] %(levelname)s %(message)s")
    silence_feature_name_warning()
    sockets = [socket.socket(fileno=fd) for fd in config["fds"]]
    server = ModelServer(config["uri"], challenger=config["challenger"], split=config["split"],
                         shadow=config["shadow"], host=config["host"],
                         max_body_mb=config["max_body_mb"], workers=config["threads"],
                         watch_interval=config["watch_interval"],
                         log_predictions=config["log_predictions"],
                         store=Store(config["store"]), allowed_hosts=config["allowed_hosts"])
    server._given_sockets = sockets
    server._worker = {"index": config["index"], "of": config["of"], "pid": os.getpid()}
    server.start()
    threading.Thread(target=_watch_pool, args=(config["pool"],), daemon=True).start()
    print(_READY, flush=True)
    # The pool reads no more of this pipe: whatever is printed from now on goes to stderr,
    # so a full pipe can never block a worker.
    os.dup2(2, 1)
    server.wait()
    return 0

