"""Helpers shared by the tests (a module of its own: several folders have a conftest.py)."""

from __future__ import annotations

import os
from html.parser import HTMLParser
from pathlib import Path


def run_cell(ip, source: str, cell_id: str | None = None):
    """Run a cell the way a notebook does: stored in history, with a cell id when given."""
    return ip.run_cell(source, store_history=True, cell_id=cell_id)


class Kernel:
    """A real IPython kernel (ipykernel) with a blocking client."""

    def __init__(self, store_path: Path, cwd: Path) -> None:
        from jupyter_client import KernelManager

        env = dict(os.environ, JUPYTER_MLOPS_STORE=str(store_path), PYTHONUNBUFFERED="1")
        env.pop("JPY_SESSION_NAME", None)
        self.manager = KernelManager(kernel_name="python3")
        self.manager.start_kernel(env=env, cwd=str(cwd))
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)

    def execute(self, code: str, cell_id: str | None = None, timeout: float = 60):
        """Run code as a notebook cell; returns (reply content, iopub output messages)."""
        from jupyter_mlops.tracking.runner import collect, execute_request

        return collect(self.client, execute_request(self.client, code, cell_id), timeout)

    def shutdown(self) -> None:
        self.client.stop_channels()
        if self.manager.is_alive():
            # Gracefully, as Jupyter does: the capture's queued rows are written at exit.
            self.manager.shutdown_kernel(now=False)


def stream_text(outputs, name: str = "stdout") -> str:
    return "".join(m["content"]["text"] for m in outputs
                   if m["msg_type"] == "stream" and m["content"]["name"] == name)


HOSTILE = '<img src=x onerror="alert(1)">'


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.text = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def parse(markup: str) -> _Tags:
    parser = _Tags()
    parser.feed(markup)
    return parser


def assert_inert(markup: str, payload: str = HOSTILE):
    """No active HTML came from data in ``markup``, and ``payload`` is shown as text."""
    parser = parse(markup)
    for tag, attrs in parser.tags:
        assert tag not in ("script", "iframe")
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        if tag == "img":
            assert attrs.get("src", "").startswith("data:image/png;base64,")
    assert payload in "".join(parser.text)


def hold_lock(db_path, *, seconds: float | None = None, begin: str = "IMMEDIATE"):
    """Another process inside ``BEGIN <begin>`` on ``db_path`` (IMMEDIATE: the write lock;
    EXCLUSIVE: not even readers get in) for ``seconds``, or until ``release``."""
    import subprocess
    import sys
    import textwrap

    wait = f"time.sleep({seconds})" if seconds is not None else "sys.stdin.readline()"
    script = textwrap.dedent(f"""
        import sqlite3, sys, time
        conn = sqlite3.connect({str(db_path)!r}, isolation_level=None)
        conn.execute("BEGIN {begin}")
        print("locked", flush=True)
        {wait}
        conn.execute("COMMIT")
    """)
    holder = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    return holder


def release(holder) -> None:
    """End a ``hold_lock`` now (or wait for its own end)."""
    if holder.poll() is None:
        holder.stdin.write("\n")
        holder.stdin.flush()
    holder.wait(timeout=30)


def layout_defects(figure) -> list[str]:
    """Texts of a matplotlib figure, as Agg draws it, that stick out of the figure (cut off
    in the PNG) or overlap another text (tick labels run together, a title over a plot)."""
    import warnings

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    canvas = FigureCanvasAgg(figure)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # missing glyphs: boxes are drawn
        canvas.draw()
    renderer = canvas.get_renderer()
    drawn_ticks, every_tick = [], set()
    for ax in figure.axes:
        for axis in (ax.xaxis, ax.yaxis):
            low, high = sorted(axis.get_view_interval())
            slack = 1e-9 * ((high - low) or 1)
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                every_tick.update((tick.label1, tick.label2))
                if low - slack <= tick.get_loc() <= high + slack:  # drawn: inside the view
                    drawn_ticks += [tick.label1, tick.label2]
    on_plots = {text for ax in figure.axes for text in ax.texts}  # counts in a matrix
    texts = [t for t in figure.findobj(Text) if t not in every_tick and t not in on_plots]
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts + drawn_ticks
             if t.get_visible() and t.get_text().strip()]
    frame = figure.bbox
    defects = [f"cut off: {text!r}" for text, box in boxes
               if box.x0 < frame.x0 - 1 or box.x1 > frame.x1 + 1
               or box.y0 < frame.y0 - 1 or box.y1 > frame.y1 + 1]
    for i, (text, box) in enumerate(boxes):
        for other, other_box in boxes[i + 1:]:
            if (min(box.x1, other_box.x1) - max(box.x0, other_box.x0) > 1
                    and min(box.y1, other_box.y1) - max(box.y0, other_box.y0) > 1):
                defects.append(f"overlap: {text!r} / {other!r}")
    return defects


def write_notebook(path, *cells):
    """A notebook of code cells at ``path``: each a source, or a ``(source, tags)`` pair."""
    import nbformat

    made = []
    for cell in cells:
        source, tags = cell if isinstance(cell, tuple) else (cell, [])
        made.append(nbformat.v4.new_code_cell(source))
        if tags:
            made[-1].metadata["tags"] = tags
    nbformat.write(nbformat.v4.new_notebook(cells=made), path)
    return path


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MlflowServer:
    """A real ``mlflow server`` on 127.0.0.1: a SQLite backend and proxied artifacts in
    ``folder``; stopped with ``stop``."""

    def __init__(self, folder: Path, start_timeout: float = 300) -> None:
        import subprocess
        import sys
        import time
        import urllib.request

        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.log = folder / "server.log"
        mlflow = Path(sys.executable).with_name("mlflow")
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [str(mlflow), "server", "--host", "127.0.0.1", "--port", str(self.port),
                 "--workers", "1", "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
                 "--artifacts-destination", str(folder / "artifacts")],
                stdout=log, stderr=subprocess.STDOUT, cwd=folder)
        deadline = time.monotonic() + start_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mlflow server exited: {self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.uri + "/health", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"mlflow server did not start: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except Exception:
                self.process.kill()
                self.process.wait(30)


class FlakyProxy:
    """A real HTTP proxy on 127.0.0.1 in front of ``target`` (host, port) that forwards every
    request until told otherwise: after ``fail_after`` requests it answers ``status`` (a 500,
    a 401) or, with ``hang=True``, holds each request until ``release()`` (at most 60 s).
    ``count`` is the requests seen, ``held`` those held."""

    def __init__(self, target_port: int) -> None:
        import http.client
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        proxy = self
        self.fail_after: int | None = None
        self.status, self.hang = 500, False
        self.count = self.held = 0
        self._released = threading.Event()
        self._lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                with proxy._lock:
                    proxy.count += 1
                    failing = proxy.fail_after is not None and proxy.count > proxy.fail_after
                if failing and proxy.hang:
                    with proxy._lock:
                        proxy.held += 1
                    proxy._released.wait(60)
                    self.close_connection = True
                    return
                if failing:
                    data = b'{"error_code": "INTERNAL_ERROR", "message": "injected"}'
                    self.send_response(proxy.status)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                upstream = http.client.HTTPConnection("127.0.0.1", target_port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                upstream.request(self.command, self.path, body=body, headers=headers)
                answer = upstream.getresponse()
                data = answer.read()
                upstream.close()
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.uri = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def release(self) -> None:
        self.fail_after = None
        self._released.set()

    def close(self) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()
