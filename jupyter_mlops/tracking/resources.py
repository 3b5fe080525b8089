"""What a cell costs while it runs: CPU, resident memory and, when NVML is there, GPUs.

A ``ResourceSampler`` is sampled by the process's one daemon thread from the start of a
cell to its end (between cells the thread only looks, twice a second, for a cell to
sample). It only reads and appends to memory: every write happens later, with the cell's
capture row (its CPU time and memory peak) and, for a tracked cell, in the run's one
closing transaction (the ``system.*`` metric histories). Nothing it does can fail the
cell: a probe that raises ends the sampling, and ``stop`` never waits for the thread.

Every ``INTERVAL_S`` it takes a point (process and system CPU %, resident and system
memory, GPU utilisation and memory); in between, every ``PEAK_INTERVAL_S``, only the
resident memory, for the peak. Points are bounded: past ``MAX_POINTS`` every other one is
dropped and the interval doubles, so a cell of hours keeps a curve of its whole length.
The peak is exact whenever the cell raises the process's all-time peak (the operating
system's own high-water mark: ``VmHWM``, else ``ru_maxrss``); otherwise it is the highest
value sampled, so a spike shorter than ``PEAK_INTERVAL_S`` below an earlier peak is missed.

Where the numbers come from is ``probes``.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Any

from . import storage
from ..entities import SYSTEM_METRIC_PREFIX
from .probes import MB, forget_gpus, gpu_handles, gpu_values, process_probe

INTERVAL_S = 1.0
PEAK_INTERVAL_S = 0.1
IDLE_POLL_S = 0.5  # between cells: how soon a cell's first sample may come
MAX_POINTS = 1000
PREFIX = SYSTEM_METRIC_PREFIX


@dataclass(frozen=True)
class CellUsage:
    """What a cell used: process CPU seconds and resident bytes at its start and peak."""

    cpu_time_s: float | None
    start_rss: int | None
    peak_rss: int | None

    def as_row(self) -> tuple[float | None, int | None, int | None]:
        return self.cpu_time_s, self.start_rss, self.peak_rss


def _cpu_seconds() -> float:
    # Every thread of the process, at the clock's own resolution (os.times counts ticks
    # of 10 ms).
    return time.process_time()


# -- the sampler -------------------------------------------------------------------------

THREAD_NAME = "jupyter_mlops-resources"


class _SamplingThread:
    """The process's one sampling thread: ticking while a cell runs, polling slowly between.

    One thread for the kernel's life rather than one per cell, and never woken by the
    cell: starting a thread waits until the operating system first runs it, and a thread
    woken at a cell's start takes the interpreter lock from it at once; on a loaded
    machine either costs milliseconds of every cell. Added and removed without a lock
    (appending to and removing from a list are atomic under the interpreter lock), so a
    cell never waits for this thread.
    """

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.active: list[ResourceSampler] = []
        self.thread = threading.Thread(target=self._loop, name=THREAD_NAME, daemon=True)
        self.thread.start()

    def add(self, sampler: ResourceSampler) -> None:
        self.active.append(sampler)

    def remove(self, sampler: ResourceSampler) -> None:
        try:
            self.active.remove(sampler)
        except ValueError:
            pass  # the thread removed it already

    def _loop(self) -> None:
        while True:
            samplers = list(self.active)
            time.sleep(min([s.tick for s in samplers], default=IDLE_POLL_S))
            for sampler in list(self.active):
                if not sampler.sample():
                    self.remove(sampler)


_thread: _SamplingThread | None = None
_thread_lock = threading.Lock()


def sampling_thread() -> _SamplingThread:
    """The sampling thread, started on first use (again in a forked child, which has none)."""
    global _thread
    with _thread_lock:
        if _thread is None or _thread.pid != os.getpid() or not _thread.thread.is_alive():
            _thread = _SamplingThread()
        return _thread


class ResourceSampler:
    """Samples this process from ``start()`` to ``stop()`` on the sampling thread.

    Examples
    --------
    >>> sampler = ResourceSampler().start()
    >>> sum(range(10**6))
    499999500000
    >>> usage = sampler.stop()
    >>> usage.cpu_time_s >= 0
    True
    """

    def __init__(self, interval: float | None = None, probe: Any = None) -> None:
        self.interval = INTERVAL_S if interval is None else interval
        self.tick = min(PEAK_INTERVAL_S, self.interval, IDLE_POLL_S)
        self._base = self.interval
        self._probe = probe
        self._stopped = False
        self._points: list[tuple[int, float, dict[str, float]]] = []  # the thread's
        self._final: list[tuple[int, float, dict[str, float]]] | None = None  # stop()'s
        self.error: Exception | None = None  # what ended the sampling early
        self.usage: CellUsage | None = None
        self._peak: int | None = None
        self._step = 0
        self._counters: tuple[float, float] | None = None

    def start(self) -> ResourceSampler:
        if self._probe is None:
            self._probe = process_probe()
        self._clock = time.perf_counter()
        self._next_point = self._clock + self.interval
        self._cpu = _cpu_seconds()
        self._start_rss, self._max_rss = self._probe.resident()
        self._peak = self._start_rss
        self._last = (self._clock, self._cpu)
        sampling_thread().add(self)
        return self

    def stop(self) -> CellUsage:
        """End the sampling (without waiting for the thread) and say what the cell used.

        The points are the ones taken until now: one the thread may be appending at this
        moment is left out (``points`` is a copy made here).
        """
        if self.usage is not None:
            return self.usage
        self._stopped = True
        if _thread is not None:
            _thread.remove(self)
        points = list(self._points)
        max_rss = None
        try:
            now, cpu = time.perf_counter(), _cpu_seconds()
            rss, max_rss = self._probe.resident()
            self._see(rss)
            values = self._process_values(now, cpu, rss)
            if values:
                points.append(((points[-1][0] if points else 0) + 1, time.time(), values))
        except Exception as exc:  # noqa: BLE001 - reported, never raised into the cell
            self.error = self.error or exc
            cpu = _cpu_seconds()
        peak = self._peak
        if max_rss is not None and self._max_rss is not None and max_rss > self._max_rss:
            peak = max_rss  # the cell set the process's all-time peak: the exact value
        self._final = points
        self.usage = CellUsage(cpu - self._cpu, self._start_rss, peak)
        return self.usage

    @property
    def points(self) -> list[tuple[int, float, dict[str, float]]]:
        """``(step, timestamp, {key: value})`` per point: so far, or all once stopped."""
        return self._final if self._final is not None else list(self._points)

    def _see(self, rss: int | None) -> None:
        if rss is not None and (self._peak is None or rss > self._peak):
            self._peak = rss

    def _process_values(self, now: float, cpu: float, rss: int | None) -> dict[str, float]:
        values: dict[str, float] = {}
        wall = now - self._last[0]
        if wall > 0:
            values["process_cpu_utilization_percentage"] = 100.0 * (cpu - self._last[1]) / wall
        if rss is not None:
            values["process_memory_rss_megabytes"] = rss / MB
        self._last = (now, cpu)
        return values

    def _system_values(self) -> dict[str, float]:
        """MLflow's machine-wide CPU and memory figures."""
        values: dict[str, float] = {}
        counters = self._probe.cpu_counters()
        if counters is not None and self._counters is not None:
            (idle0, total0), (idle1, total1) = self._counters, counters
            if total1 > total0:
                busy = (total1 - total0) - (idle1 - idle0)
                values["cpu_utilization_percentage"] = 100.0 * busy / (total1 - total0)
        self._counters = counters
        memory = self._probe.memory()
        if memory is not None:
            used, total = memory
            values["system_memory_usage_megabytes"] = used / MB
            values["system_memory_usage_percentage"] = 100.0 * used / total
        return values

    def sample(self) -> bool:
        """One tick, on the sampling thread: the memory, and a point when one is due.
        False once this sampler is done (stopped, or its probe failed)."""
        if self._stopped:
            return False
        try:
            if self._counters is None:
                self._counters = self._probe.cpu_counters()  # the machine's baseline
            rss = self._probe.rss()
            now = time.perf_counter()
            self._see(rss)
            if now < self._next_point:
                return not self._stopped
            values = self._system_values()
            handles = gpu_handles()
            if handles:
                try:
                    values.update(gpu_values(handles))
                except Exception:  # noqa: BLE001 - NVML stopped answering: no more GPUs
                    forget_gpus(found=[])
            if self._stopped:
                return False
            self._step += round(self.interval / self._base)
            values.update(self._process_values(now, _cpu_seconds(), rss))
            self._points.append((self._step, time.time(), values))
            if len(self._points) >= MAX_POINTS:
                del self._points[1::2]  # the first is kept
                self.interval *= 2
            self._next_point = now + self.interval
            return True
        except Exception as exc:  # noqa: BLE001 - the cell goes on; the run says why
            self.error = exc
            return False


def metric_rows(sampler: ResourceSampler) -> list[tuple[float, list[tuple[str, float, int]]]]:
    """``(timestamp, [(key, value, step), ...])`` per point, the cell's peak and CPU time
    (step 0) riding with the last: what a tracked cell's run records."""
    usage = sampler.stop()
    rows = [(ts, [(PREFIX + key, float(value), step) for key, value in values.items()])
            for step, ts, values in sampler.points]
    totals = []
    if usage.peak_rss is not None:
        totals.append((PREFIX + "process_memory_peak_megabytes", usage.peak_rss / MB, 0))
    if usage.cpu_time_s is not None:
        totals.append((PREFIX + "process_cpu_time_seconds", float(usage.cpu_time_s), 0))
    if rows:
        rows[-1][1].extend(totals)
    elif totals:
        rows.append((time.time(), totals))
    return rows


def log_resources(store, run_id: str, sampler: ResourceSampler) -> int:
    """Write a sampler's points as the run's ``system.*`` metrics (inside the caller's
    transaction); keys the cell logged itself are left alone. Returns the values written."""
    rows = metric_rows(sampler)
    explicit = {k for (k,) in store.query(
        "SELECT key FROM latest_metrics WHERE run_id = ? AND key LIKE 'system.%'", (run_id,))}
    written = 0
    for timestamp, values in rows:
        values = [v for v in values if v[0] not in explicit]
        if values:
            storage.log_metrics(store, run_id, values, timestamp)
            written += len(values)
    return written
