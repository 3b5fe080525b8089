"""What a cell costs: the sampler thread, system.* metrics of tracked runs, and the per-cell
peaks of the execution log."""

import json
import sys
import threading
import types

import pytest

import jupyter_mlops as mlops
from jupyter_mlops.tracking import probes, resources
from jupyter_mlops.tracking.probes import ProcProbe, PsutilProbe, RusageProbe, make_probe
from jupyter_mlops.tracking.resources import ResourceSampler
from support import run_cell, stream_text

pytestmark = pytest.mark.timeout(120)

MB = 1e6
ALLOCATE = "data = b'x' * 200_000_000\nsize = len(data)\ndel data\n"
# In this long-lived test process an earlier test may have set a higher all-time peak, so
# the cell's own peak is the sampled one: hold the memory for a few samples.
ALLOCATE_AND_HOLD = ("import time\ndata = b'x' * 200_000_000\nsize = len(data)\n"
                     "time.sleep(0.5)\ndel data\n")


def busy(seconds_of_work: int = 2_000_000) -> int:
    return sum(i * i for i in range(seconds_of_work))


@pytest.mark.parametrize("kind", [ProcProbe, PsutilProbe])
def test_probes_see_a_cells_cpu_and_memory(kind):
    sampler = ResourceSampler(interval=0.05, probe=make_probe([kind])).start()
    busy()
    held = bytearray(b"\x01") * 150_000_000
    while len(sampler.points) < 2:  # the thread looks for work twice a second
        busy(100_000)
    usage = sampler.stop()
    del held
    assert usage.cpu_time_s > 0.05
    assert usage.peak_rss - usage.start_rss >= 140 * MB
    assert sampler.points, "a point every interval, and one at the end"
    keys = set().union(*(values for _, _, values in sampler.points))
    assert {"process_cpu_utilization_percentage", "process_memory_rss_megabytes"} <= keys
    assert {"cpu_utilization_percentage", "system_memory_usage_megabytes",
            "system_memory_usage_percentage"} <= keys
    steps = [step for step, _, _ in sampler.points]
    assert steps == sorted(set(steps))


def test_without_proc_or_psutil_the_peak_comes_from_getrusage():
    sampler = ResourceSampler(interval=0.05, probe=RusageProbe()).start()
    held = b"\x01" * (RusageProbe().resident()[1] + 50_000_000)  # past the all-time peak
    usage = sampler.stop()
    del held
    assert usage.start_rss is None and usage.peak_rss >= 50_000_000
    assert usage.cpu_time_s >= 0
    assert all("process_memory_rss_megabytes" not in v for _, _, v in sampler.points)


def test_points_are_bounded_by_thinning(monkeypatch):
    monkeypatch.setattr(resources, "MAX_POINTS", 8)
    sampler = ResourceSampler(interval=0.01).start()
    done = threading.Event()
    while not done.wait(0.01):
        if sampler.interval >= 0.08:  # thinned at least three times
            done.set()
    sampler.stop()
    steps = [step for step, _, _ in sampler.points]
    assert len(steps) <= 8 + 1  # the bound, and the point taken at the end
    assert steps[0] == 1 and steps == sorted(set(steps))


class StuckProbe:
    """A probe whose reads on the sampling thread hang until released."""

    def __init__(self):
        self.release = threading.Event()
        self.entered = threading.Event()

    def rss(self):
        if threading.current_thread().name == resources.THREAD_NAME:
            self.entered.set()
            self.release.wait(30)
        return 1_000

    def resident(self):
        return 1_000, None

    def cpu_counters(self):
        return None

    def memory(self):
        return None


def test_stop_never_waits_for_the_thread():
    probe = StuckProbe()
    sampler = ResourceSampler(interval=0.01, probe=probe).start()
    assert probe.entered.wait(10)
    usage = sampler.stop()  # returns while the thread is stuck inside the probe
    assert not probe.release.is_set() and usage.peak_rss == 1_000
    probe.release.set()
    other = ResourceSampler(interval=0.01).start()  # the thread goes on sampling others
    while not other.points:
        threading.Event().wait(0.01)
    other.stop()
    assert [step for step, _, _ in sampler.points] == [1]  # the one taken by stop()


class BrokenProbe(StuckProbe):
    def rss(self):
        if threading.current_thread().name == resources.THREAD_NAME:
            raise OSError("the probe broke")
        return 1_000


def test_a_broken_probe_ends_sampling_not_the_cell():
    sampler = ResourceSampler(interval=0.01, probe=BrokenProbe()).start()
    while sampler.error is None:
        threading.Event().wait(0.01)
    usage = sampler.stop()
    assert isinstance(sampler.error, OSError) and str(sampler.error) == "the probe broke"
    assert usage.peak_rss == 1_000 and usage.cpu_time_s >= 0


@pytest.fixture
def no_gpu_cache():
    probes.forget_gpus()
    yield
    probes.forget_gpus()


def test_without_pynvml_gpus_are_skipped_quietly(no_gpu_cache, capfd):
    assert "pynvml" not in sys.modules
    assert probes.gpu_handles() == []
    sampler = ResourceSampler(interval=0.01).start()
    while len(sampler.points) < 3:
        busy(100_000)
    sampler.stop()
    assert not any(k.startswith("gpu_") for _, _, v in sampler.points for k in v)
    assert capfd.readouterr().err == ""


def _nvml(init_error: bool):
    """A stand-in for NVML's Python binding: no GPU here to give the real one."""

    class NVMLError(Exception):
        pass

    def init():
        if init_error:
            raise NVMLError("NVML Shared Library Not Found")

    return types.SimpleNamespace(
        NVMLError=NVMLError, nvmlInit=init, nvmlDeviceGetCount=lambda: 1,
        nvmlDeviceGetHandleByIndex=lambda i: f"gpu{i}",
        nvmlDeviceGetMemoryInfo=lambda h: types.SimpleNamespace(used=4e9, total=16e9),
        nvmlDeviceGetUtilizationRates=lambda h: types.SimpleNamespace(gpu=87, memory=40))


def test_nvml_without_a_device_is_skipped_and_a_device_is_sampled(no_gpu_cache, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", _nvml(init_error=True))
    assert probes.gpu_handles() == []
    probes.forget_gpus()
    monkeypatch.setitem(sys.modules, "pynvml", _nvml(init_error=False))
    sampler = ResourceSampler(interval=0.01).start()
    while len(sampler.points) < 3:
        threading.Event().wait(0.01)
    sampler.stop()
    values = [v for _, _, v in sampler.points if "gpu_0_utilization_percentage" in v]
    assert values, "MLflow's GPU metrics in the points"
    assert values[0]["gpu_0_utilization_percentage"] == 87.0
    assert values[0]["gpu_0_memory_usage_megabytes"] == 4000.0
    assert values[0]["gpu_0_memory_usage_percentage"] == 25.0


def test_a_tracked_cell_records_system_metrics(shell, monkeypatch):
    monkeypatch.setattr(resources, "INTERVAL_S", 0.05)
    run_cell(shell, "import jupyter_mlops as mlops")
    result = run_cell(shell, "%%track -n busy\n" + ALLOCATE_AND_HOLD
                      + "total = sum(i * i for i in range(3_000_000))\n"
                        "mlops.log_metric('system.process_cpu_time_seconds', -1.0)")
    assert result.success
    run = mlops.get_run(mlops.search_runs()["run_id"][0])
    assert "size" in run.metrics and not any(k.startswith("system.") for k in run.metrics)
    system = run.system_metrics
    assert system["system.process_cpu_time_seconds"] == -1.0  # the cell's own log wins
    assert system["system.process_memory_peak_megabytes"] >= 200
    history = run.metric_history("system.process_memory_rss_megabytes")
    assert len(history) >= 2 and [m.step for m in history] == sorted({m.step for m in history})
    (cell,) = [c for c in run.cells if c.run_id == run.run_id]
    assert cell.peak_rss / MB == pytest.approx(system["system.process_memory_peak_megabytes"])
    assert "System metrics" in run._repr_html_()
    frame = mlops.search_runs()
    assert "metrics.system.process_memory_peak_megabytes" in frame.columns
    listing = shell.run_line_magic("mlops", "runs")
    assert "system.process_memory_peak_megabytes" not in listing._repr_html_()


def test_a_failing_tracked_cell_keeps_what_it_used(shell):
    result = run_cell(shell, "%%track -n broken\n" + ALLOCATE_AND_HOLD
                      + "raise ValueError('late')")
    assert not result.success
    run = mlops.get_run(mlops.search_runs()["run_id"][0])
    assert run.status == "FAILED"
    assert run.system_metrics["system.process_memory_peak_megabytes"] >= 200


def test_history_shows_which_cell_took_the_memory(shell):
    run_cell(shell, "a = 1")
    run_cell(shell, ALLOCATE_AND_HOLD)
    run_cell(shell, "b = 2")
    frame = shell.run_line_magic("mlops", "history")
    small, big, after = frame["peak_rss_added_mb"]
    assert big >= 190 and small < 50 and after < 50
    assert frame["cpu_time_s"].notna().all()
    assert "peak_rss_added_mb" in frame._repr_html_()


@pytest.mark.kernel
@pytest.mark.timeout(180)
def test_history_in_a_real_kernel_names_the_memory_hungry_cell(kernel):
    reply, _ = kernel.execute("%load_ext jupyter_mlops")
    assert reply["status"] == "ok"
    for cell_id, code in (("before", "x = sum(range(1000))"), ("hungry", ALLOCATE),
                          ("after", "y = x + 1")):
        reply, outputs = kernel.execute(code, cell_id=cell_id)
        assert reply["status"] == "ok" and stream_text(outputs, "stderr") == ""
    reply, outputs = kernel.execute(
        "h = %mlops history\n"
        "print(h[['cell_id', 'peak_rss_mb', 'peak_rss_added_mb']].to_json(orient='records'))\n"
        "html = h._repr_html_()")
    assert reply["status"] == "ok", reply
    rows = {r["cell_id"]: r for r in json.loads(stream_text(outputs))}
    hungry = rows["hungry"]
    assert hungry["peak_rss_mb"] > rows["before"]["peak_rss_mb"] + 150
    assert hungry["peak_rss_mb"] > rows["after"]["peak_rss_mb"] + 150
    assert hungry["peak_rss_added_mb"] >= 190


def test_a_sampler_that_cannot_start_leaves_the_cell_alone(shell, monkeypatch, capfd):
    def broken():
        raise OSError("no /proc here")

    monkeypatch.setattr(resources, "process_probe", broken)
    result = run_cell(shell, "%%track -n plain\nvalue = 41 + 1")
    assert result.success and shell.user_ns["value"] == 42
    run = mlops.get_run(mlops.search_runs()["run_id"][0])
    assert run.status == "FINISHED" and run.metrics == {"value": 42.0}
    assert run.system_metrics == {}
    (cell,) = run.cells
    assert cell.status == "ok" and cell.cpu_time_s is None and cell.peak_rss is None
    assert capfd.readouterr().err == ""


def test_a_probe_failing_mid_cell_is_one_warning(shell, monkeypatch, capfd):
    monkeypatch.setattr(resources, "process_probe", BrokenProbe)
    monkeypatch.setattr(resources, "INTERVAL_S", 0.01)
    result = run_cell(shell, "%%track -n unlucky\nimport time\ntime.sleep(0.7)\n"
                             "done = len('x')")
    assert result.success
    run = mlops.get_run(mlops.search_runs()["run_id"][0])
    assert run.status == "FINISHED" and run.metrics == {"done": 1.0}
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and "sampling stopped early (OSError: the probe broke)" in err
    assert "The cell itself ran normally" in err


def test_a_cell_whose_end_never_came_stops_sampling_at_the_next(store):
    from jupyter_mlops.tracking.capture import CellCapture

    capture = CellCapture()
    lost = capture.begin(store, "x = 1", "x = 1\n", 1, None)  # no end: a skipped hook
    assert lost.resources in resources.sampling_thread().active
    record = capture.begin(store, "y = 2", "y = 2\n", 2, None)
    assert lost.resources.usage is not None
    assert lost.resources not in resources.sampling_thread().active
    capture.end(record, 2, None)
    assert record.resources not in resources.sampling_thread().active
    capture.writer.flush()
