"""Shared pieces of the benchmarks: timing, peak memory, worker processes, the ratio table.

A benchmark script runs each measurement in a fresh interpreter when start-up matters
(``run_worker`` / ``run_code``), collects :class:`Row` objects and prints them with
:func:`print_table`; ``--json PATH`` goes through :func:`write_json`. Nothing here asserts on
time: a missed target is reported, never raised.

Examples
--------
>>> rows = [Row("cold import", "s", ours=0.06, anchor=0.75, target=">= 5x", better="lower",
...             min_ratio=5)]
>>> print_table(rows, anchor_name="MLflow")   # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RESULT_MARKER = "BENCH-RESULT "
READY_MARKER = "BENCH-READY"
# The head of code run by ``run_code``: ``emit(result)`` prints what the caller parses.
EMIT = f"""
import json, statistics, sys, time
def emit(result):
    sys.stdout.write({RESULT_MARKER!r} + json.dumps(result) + "\\n"); sys.stdout.flush()
"""

# Timing an anchor must not hide its work in a background queue, phone home, or write into
# the user's IPython profile.
QUIET_ENV = {
    "MLFLOW_ENABLE_ASYNC_LOGGING": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "MPLBACKEND": "Agg",
}


# -- numbers -----------------------------------------------------------------------------

def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100), nearest-rank, of ``values``."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def time_each(fn: Callable[[int], Any], n: int, warmup: int = 0) -> list[float]:
    """Seconds taken by each of ``n`` calls ``fn(i)``, after ``warmup`` untimed calls."""
    for i in range(warmup):
        fn(-1 - i)
    times = []
    clock = time.perf_counter
    for i in range(n):
        start = clock()
        fn(i)
        times.append(clock() - start)
    return times


def summary(times: Sequence[float]) -> dict[str, float]:
    """Median, p95, p99, worst and total of a list of durations (seconds)."""
    return {
        "n": len(times),
        "median": median(times),
        "p95": percentile(times, 95),
        "p99": percentile(times, 99),
        "max": max(times) if times else math.nan,
        "total": sum(times),
    }


# -- memory ------------------------------------------------------------------------------

def peak_rss_mib() -> float:
    """This process's peak resident memory so far, in MiB."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def rss_mib() -> float:
    """This process's resident memory now, in MiB (the peak where /proc is missing)."""
    try:
        with open("/proc/self/statm") as handle:
            pages = int(handle.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)
    except (OSError, ValueError):
        return peak_rss_mib()


# -- worker processes --------------------------------------------------------------------

def bench_env(tmp: str | os.PathLike[str], **extra: str) -> dict[str, str]:
    """The environment for worker processes: quiet anchors and an IPython dir in ``tmp``."""
    env = dict(os.environ)
    env.update(QUIET_ENV)
    env["IPYTHONDIR"] = str(Path(tmp) / "ipython")
    env.update(extra)
    return env


def project_env(tmp: str | os.PathLike[str]) -> dict[str, str]:
    """``bench_env`` for code importing this checkout's jupyter_mlops, with a signing key of
    its own in ``tmp``."""
    root = Path(__file__).resolve().parents[1]
    return bench_env(tmp, PYTHONPATH=str(root), JUPYTER_MLOPS_KEY_FILE=str(Path(tmp) / "key"))


def emit(result: Any) -> None:
    """Hand a worker's result to its parent (the last marked line of stdout wins)."""
    sys.stdout.write(RESULT_MARKER + json.dumps(result) + "\n")
    sys.stdout.flush()


def parse_result(stdout: str) -> Any:
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_MARKER):
            return json.loads(line[len(RESULT_MARKER):])
    raise RuntimeError("the worker printed no result line")


class WorkerError(RuntimeError):
    pass


def _run(argv: list[str], env: dict[str, str], cwd: str | os.PathLike[str] | None,
         timeout: float) -> Any:
    proc = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise WorkerError(f"worker exited with {proc.returncode}:\n{tail}")
    try:
        return parse_result(proc.stdout)
    except (RuntimeError, ValueError) as exc:
        raise WorkerError(f"{exc}; stderr:\n{proc.stderr[-2000:]}") from None


def run_code(code: str, *, env: dict[str, str], cwd: str | os.PathLike[str] | None = None,
             timeout: float = 600) -> Any:
    """Run ``python -c code`` in a fresh interpreter; ``code`` calls ``emit``-style printing.

    Use it when even importing this module would disturb the measurement (import time):
    the code must print ``RESULT_MARKER + json`` itself.
    """
    return _run([sys.executable, "-c", code], env, cwd, timeout)


def run_worker(script: str | os.PathLike[str], name: str, params: dict[str, Any], *,
               env: dict[str, str], cwd: str | os.PathLike[str] | None = None,
               timeout: float = 1800) -> Any:
    """Run ``python script --worker NAME --params JSON`` in a fresh interpreter."""
    argv = [sys.executable, str(script), "--worker", name, "--params", json.dumps(params)]
    return _run(argv, env, cwd, timeout)


def start_worker(script: str | os.PathLike[str], name: str, params: dict[str, Any], *,
                 env: dict[str, str], cwd: str | os.PathLike[str] | None = None,
                 stdin: int | None = None) -> subprocess.Popen:
    """Start a worker without waiting: for workers that must run at the same time, or
    that the parent steers (``stdin=subprocess.PIPE``)."""
    argv = [sys.executable, str(script), "--worker", name, "--params", json.dumps(params)]
    return subprocess.Popen(argv, env=env, cwd=cwd, stdin=stdin, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_ready(procs: Sequence[subprocess.Popen], timeout: float = 300) -> None:
    """Block until every worker has printed ``READY_MARKER`` (after its imports and setup)."""
    deadline = time.monotonic() + timeout
    for proc in procs:
        while True:
            if time.monotonic() > deadline:
                raise WorkerError("a worker did not get ready in time")
            line = proc.stdout.readline()
            if not line:
                raise WorkerError(
                    f"a worker ended before it was ready:\n{proc.stderr.read()[-2000:]}")
            if line.strip() == READY_MARKER:
                break


def ready_then_wait(go_file: str | os.PathLike[str], timeout: float = 600) -> None:
    """In a worker: say it is ready, then wait for the parent to create ``go_file``."""
    sys.stdout.write(READY_MARKER + "\n")
    sys.stdout.flush()
    deadline = time.monotonic() + timeout
    while not os.path.exists(go_file):
        if time.monotonic() > deadline:
            raise TimeoutError("the go signal never came")
        time.sleep(0.001)


def finish_workers(procs: Sequence[subprocess.Popen], timeout: float = 1800) -> list[Any]:
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=timeout)
        if proc.returncode != 0:
            raise WorkerError(f"worker exited with {proc.returncode}:\n{err[-2000:]}")
        results.append(parse_result(out))
    return results


def scratch_dir(prefix: str = "bench-") -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix=prefix)


# -- the table ---------------------------------------------------------------------------

@dataclass
class Row:
    """One line of the comparison.

    ``better`` says which way is good ("lower" for times and memory, "higher" for
    throughput, "none" for counts that get no ratio); the ratio is always "how many times
    better ours is". A target is either a
    minimum ratio (``min_ratio``) or an absolute bound on our figure (``max_ours`` /
    ``min_ours`` / ``equals``); ``judged=False`` shows it without a verdict (e.g. in a
    reduced run whose sizes are not the ones the target is about).
    """

    workload: str
    unit: str
    ours: Any
    anchor: Any = None
    target: str = ""
    better: str = "lower"
    min_ratio: float | None = None
    max_ours: float | None = None
    min_ours: float | None = None
    equals: Any = None
    judged: bool = True
    note: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.better not in ("lower", "higher"):
            return None
        if not _is_number(self.ours) or not _is_number(self.anchor):
            return None
        if self.better == "lower":
            return self.anchor / self.ours if self.ours > 0 else math.inf
        return self.ours / self.anchor if self.anchor > 0 else math.inf

    @property
    def met(self) -> bool | None:
        if not self.judged:
            return None
        if self.min_ratio is not None:
            return None if self.ratio is None else self.ratio >= self.min_ratio
        if self.max_ours is not None:
            return _is_number(self.ours) and self.ours < self.max_ours
        if self.min_ours is not None:
            return _is_number(self.ours) and self.ours >= self.min_ours
        if self.equals is not None:
            return self.ours == self.equals
        return None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ratio"] = self.ratio
        data["met"] = self.met
        return data


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def format_value(value: Any, unit: str) -> str:
    if value is None:
        return "—"
    if not _is_number(value):
        return str(value)
    if unit == "s":
        if abs(value) < 1e-3:
            return f"{value * 1e6:.3g} µs"
        if abs(value) < 1:
            return f"{value * 1e3:.3g} ms"
        return f"{value:.3g} s"
    if unit == "ms":
        return f"{value:.3g} ms"
    if unit in ("runs/s", "rows/s"):
        return f"{value:,.0f} {unit}"
    if unit == "MiB":
        return f"{value:,.0f} MiB"
    if isinstance(value, float):
        return f"{value:.3g} {unit}".strip()
    return f"{value} {unit}".strip()


def format_ratio(ratio: float | None) -> str:
    if ratio is None:
        return "—"
    if math.isinf(ratio):
        return "∞"
    return f"{ratio:.3g}×" if ratio < 100 else f"{ratio:,.0f}×"


def print_table(rows: Sequence[Row], *, anchor_name: str, file=None) -> None:
    """Print ``rows`` as an aligned Markdown table: ours, anchor, ratio, target, met."""
    file = file or sys.stdout
    header = ["workload", "jupyter_mlops", anchor_name, "ratio", "target", "met?"]
    lines = []
    for row in rows:
        met = row.met
        verdict = {True: "yes", False: "NO", None: ""}[met]
        if not row.judged and row.target:
            verdict = "not judged"
        lines.append([row.workload, format_value(row.ours, row.unit),
                      format_value(row.anchor, row.unit), format_ratio(row.ratio),
                      row.target, verdict])
    widths = [max(len(str(r[i])) for r in [header, *lines]) for i in range(len(header))]

    def show(cells: list[str]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"

    print(show(header), file=file)
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|", file=file)
    for line in lines:
        print(show(line), file=file)
    notes = [(row.workload, row.note) for row in rows if row.note]
    if notes:
        print(file=file)
        for workload, note in notes:
            print(f"- {workload}: {note}", file=file)


def environment(**versions: str) -> dict[str, Any]:
    """What the figures depend on, without paths or host names."""
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "system": platform.system(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        **versions,
    }


def write_json(path: str | os.PathLike[str], rows: Sequence[Row], **extra: Any) -> None:
    payload = {"rows": [row.as_dict() for row in rows], **extra}
    Path(path).write_text(json.dumps(payload, indent=2, default=str, allow_nan=True) + "\n")
