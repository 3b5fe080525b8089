"""Where a cell's resource numbers come from: this process's memory, the machine's CPU and
memory, and GPUs.

``/proc`` on Linux (a read of an open file costs ~3 µs), else ``psutil`` when it can be
imported (portable, ~30-100 µs a read), else ``resource.getrusage`` (the all-time peak
only). GPUs through ``pynvml`` only when it is importable and finds a device; NVML failing
once ends GPU sampling for the process, silently: a machine without a GPU is not an error.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

MB = 1e6  # MLflow's system metrics count megabytes as 10**6 bytes


def _max_rss() -> int | None:
    """The process's all-time peak of resident memory, in bytes (None without getrusage).

    On Linux it also counts the parent's memory at the fork before the process's exec, so
    a kernel started by a big process may never pass it: ``ProcProbe`` reads the peak of
    the process's own memory instead.
    """
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # macOS says bytes, Linux KiB


def _read_holding_the_lock():
    """``read(fd, size)`` from offset 0 that keeps the interpreter lock, else None.

    ``os.pread`` lets other threads run during the call, and a cell's hooks calling it
    then wait to get the lock back: behind the capture thread writing the previous cell's
    row, that is milliseconds on a loaded machine (measured: +1 to +8 ms a trivial cell,
    against +0.08 ms when the lock is kept). ctypes' ``PyDLL`` calls keep it.
    """
    try:
        import ctypes

        pread = ctypes.PyDLL(None, use_errno=True).pread
        pread.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_long]
        pread.restype = ctypes.c_ssize_t
    except (ImportError, OSError, AttributeError):
        return None
    buffers: dict[int, Any] = {}

    def read(fd: int, size: int) -> bytes:
        buffer = buffers.get(size) or buffers.setdefault(size, ctypes.create_string_buffer(size))
        done = pread(fd, buffer, size, 0)
        if done < 0:
            raise OSError(ctypes.get_errno(), "pread failed")
        return buffer.raw[:done]

    return read


class ProcProbe:
    """Linux: ``/proc/self/statm`` and ``/proc/self/status`` kept open, ``/proc/stat`` and
    ``/proc/meminfo``."""

    name = "proc"

    def __init__(self) -> None:
        self._statm = os.open("/proc/self/statm", os.O_RDONLY)
        self._status = os.open("/proc/self/status", os.O_RDONLY)
        self._page = os.sysconf("SC_PAGE_SIZE")
        self._held = _read_holding_the_lock()

    def rss(self) -> int | None:
        return int(os.pread(self._statm, 128, 0).split()[1]) * self._page

    def resident(self) -> tuple[int | None, int | None]:
        """Resident memory now and its high-water mark (VmRSS, VmHWM), in one read that
        keeps the interpreter lock: the cell's hooks call it."""
        if self._held is not None and threading.current_thread() is threading.main_thread():
            status = self._held(self._status, 4096)
        else:
            status = os.pread(self._status, 4096, 0)
        found = []
        for key in (b"VmRSS:", b"VmHWM:"):
            at = status.find(key)
            found.append(None if at < 0 else int(status[at + 6:].split(None, 1)[0]) * 1024)
        return found[0], found[1]

    def cpu_counters(self) -> tuple[float, float] | None:
        """The machine's idle and total CPU time so far (any unit)."""
        with open("/proc/stat", "rb") as handle:
            fields = [int(v) for v in handle.readline().split()[1:]]
        return fields[3] + (fields[4] if len(fields) > 4 else 0), sum(fields[:8])

    def memory(self) -> tuple[int, int] | None:
        """The machine's used and total memory in bytes (used: all but what is available)."""
        info = {}
        with open("/proc/meminfo", "rb") as handle:
            for line in handle:
                key, _, rest = line.partition(b":")
                if key in (b"MemTotal", b"MemAvailable"):
                    info[key] = int(rest.split()[0]) * 1024
                    if len(info) == 2:
                        return info[b"MemTotal"] - info[b"MemAvailable"], info[b"MemTotal"]
        return None


class PsutilProbe:
    """Any platform psutil supports."""

    name = "psutil"

    def __init__(self) -> None:
        import psutil

        self._psutil = psutil
        self._process = psutil.Process()

    def rss(self) -> int | None:
        return int(self._process.memory_info().rss)

    def resident(self) -> tuple[int | None, int | None]:
        info = self._process.memory_info()
        peak = getattr(info, "peak_wset", None)  # Windows only
        return int(info.rss), int(peak) if peak is not None else _max_rss()

    def cpu_counters(self) -> tuple[float, float] | None:
        # Counters, not psutil.cpu_percent(None): that would reset the baseline of the
        # user's own calls to it.
        times = self._psutil.cpu_times()
        return times.idle + getattr(times, "iowait", 0.0), sum(times)

    def memory(self) -> tuple[int, int] | None:
        memory = self._psutil.virtual_memory()
        return memory.total - memory.available, memory.total


class RusageProbe:
    """The last resort: no resident memory now, only the all-time peak and CPU time."""

    name = "rusage"

    def rss(self) -> int | None:
        return None

    def resident(self) -> tuple[int | None, int | None]:
        return None, _max_rss()

    def cpu_counters(self) -> tuple[float, float] | None:
        return None

    def memory(self) -> tuple[int, int] | None:
        return None


PROBES = (ProcProbe, PsutilProbe, RusageProbe)
_probe: tuple[int, Any] | None = None  # (pid, probe): one per process, made on first use


def make_probe(kinds=PROBES):
    """The first probe that works here."""
    for kind in kinds:
        try:
            probe = kind()
            probe.rss()
            probe.resident()
            probe.cpu_counters()
            probe.memory()
            return probe
        except Exception:  # noqa: BLE001 - no /proc, no psutil, ...: try the next
            continue
    return RusageProbe()


def process_probe():
    """This process's probe (a forked child makes its own: /proc/self was the parent's)."""
    global _probe
    if _probe is None or _probe[0] != os.getpid():
        _probe = (os.getpid(), make_probe())
    return _probe[1]


# -- GPUs ------------------------------------------------------------------------------

_gpus: list[Any] | None = None  # NVML device handles, found once per process
_gpu_lock = threading.Lock()


def gpu_handles() -> list[Any]:
    """NVML handles of this machine's GPUs; empty without pynvml, a driver or a device."""
    global _gpus
    with _gpu_lock:
        if _gpus is None:
            _gpus = []
            nvml = sys.modules.get("pynvml")
            try:
                if nvml is None:
                    import importlib.util

                    if importlib.util.find_spec("pynvml") is None:
                        return _gpus
                    import pynvml as nvml
                nvml.nvmlInit()
                _gpus = [nvml.nvmlDeviceGetHandleByIndex(i)
                         for i in range(nvml.nvmlDeviceGetCount())]
            except Exception:  # noqa: BLE001 - NVMLError, a broken install: no GPUs
                _gpus = []
        return _gpus


def gpu_values(handles: list[Any]) -> dict[str, float]:
    """MLflow's GPU metrics for each device."""
    nvml = sys.modules["pynvml"]
    found: dict[str, float] = {}
    for i, handle in enumerate(handles):
        memory = nvml.nvmlDeviceGetMemoryInfo(handle)
        found[f"gpu_{i}_memory_usage_megabytes"] = memory.used / MB
        found[f"gpu_{i}_memory_usage_percentage"] = 100.0 * memory.used / memory.total
        found[f"gpu_{i}_utilization_percentage"] = float(
            nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
    return found


def forget_gpus(found: list[Any] | None = None) -> None:
    """Look for GPUs again at the next sampling (``found=[]``: stop looking)."""
    global _gpus
    with _gpu_lock:
        _gpus = found
