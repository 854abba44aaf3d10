"""Tests for harness.monitor (Sampler, NVML helpers) and harness.dmon (live lines, CLI)."""

import json
import os
import re
import sys
import threading
import time
from collections import namedtuple
from types import SimpleNamespace

import psutil
import pytest

from harness import cli, dmon
from harness.monitor import (
    Sampler,
    gpu_inventory,
    identify_cell_gpu,
    identify_cell_gpus,
    nvml_status,
    resolve_visible_gpu,
)
from harness.protocol import Task
from harness.scenario import Cell
from harness.worker.cell import Worker

GIB = 1 << 30
MIB = 1 << 20
PID = 1234
OTHER_PID = 999

CpuTimes = namedtuple("CpuTimes", "user system idle iowait guest")


class FakeClock:
    """A monotonic clock that only moves when told to."""

    def __init__(self, now=100.0):
        self.now = now

    def __call__(self):
        return self.now


class FakeProcess:
    def __init__(self, owner):
        self._owner = owner

    def _check(self):
        if self._owner.gone:
            raise self._owner.NoSuchProcess("gone")

    def cpu_percent(self, interval=None):
        assert interval is None, "must be non-blocking"
        self._check()
        return self._owner.proc_cpu

    def memory_info(self):
        self._check()
        return SimpleNamespace(rss=self._owner.rss)


class FakePsutil:
    """psutil stand-in: cumulative per-core CPU times that the test advances."""

    class Error(Exception):
        pass

    class NoSuchProcess(Error):
        pass

    def __init__(self, n_cores=2):
        self.times = [[0.0] * 5 for _ in range(n_cores)]
        self.proc_cpu = 0.0
        self.rss = 0
        self.gone = False
        self.pids = {PID, OTHER_PID}

    def cpu_times(self, percpu=False):
        assert percpu
        return [CpuTimes(*core) for core in self.times]

    def advance(self, *busy_fractions, seconds=1.0):
        """Adds `seconds` to every core, the given fraction of it busy (user)."""
        for core, busy in zip(self.times, busy_fractions, strict=True):
            core[0] += busy * seconds
            core[2] += (1 - busy) * seconds

    def Process(self, pid):  # noqa: N802 - mirrors psutil
        if pid not in self.pids:
            raise self.NoSuchProcess(pid)
        return FakeProcess(self)


class FakeNVML:
    """pynvml stand-in with two GPUs whose readings the test can change or break."""

    NVML_TEMPERATURE_GPU = 0
    NVML_CLOCK_SM = 1
    NVML_CLOCK_MEM = 2

    class NVMLError(Exception):
        pass

    def __init__(self, init_error=None):
        self.init_error = init_error
        self.inits = 0
        self.shutdowns = 0
        self.fail = set()  # (function name, gpu index) pairs that raise NVMLError
        self.gpus = [
            {
                "name": "Fake H100",
                "uuid": "GPU-0000",
                "sm": 50,
                "mem": 20,
                "used": 2 * GIB,
                "total": 80 * GIB,
                "power_mw": 100400,
                "temp": 40,
                "sm_clock": 1980,
                "mem_clock": 2619,
                "procs": [(PID, 1 * GIB), (OTHER_PID, 5 * GIB)],
            },
            {
                "name": b"Fake H100",  # older pynvml returns bytes
                "uuid": b"GPU-0001",
                "sm": 10,
                "mem": 5,
                "used": 1 * GIB,
                "total": 80 * GIB,
                "power_mw": 60250,
                "temp": 35,
                "sm_clock": 1410,
                "mem_clock": 2619,
                "procs": [(OTHER_PID, 3 * GIB)],
            },
        ]

    def _gpu(self, name, handle):
        index = handle[1]
        if (name, index) in self.fail:
            raise self.NVMLError("Not Supported")
        return self.gpus[index]

    def nvmlInit(self):  # noqa: N802 - the pynvml names are the API under test
        if self.init_error:
            raise self.NVMLError(self.init_error)
        self.inits += 1

    def nvmlShutdown(self):  # noqa: N802
        self.shutdowns += 1

    def nvmlSystemGetDriverVersion(self):  # noqa: N802
        return b"550.54.15"

    def nvmlDeviceGetCount(self):  # noqa: N802
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index):  # noqa: N802
        if not 0 <= index < len(self.gpus):
            raise self.NVMLError("Invalid Argument")
        return ("handle", index)

    def nvmlDeviceGetHandleByUUID(self, uuid):  # noqa: N802
        for index, gpu in enumerate(self.gpus):
            known = gpu["uuid"]
            if (known.decode() if isinstance(known, bytes) else known) == uuid:
                return ("handle", index)
        raise self.NVMLError("Not Found")

    def nvmlDeviceGetIndex(self, handle):  # noqa: N802
        self._gpu("nvmlDeviceGetIndex", handle)
        return handle[1]

    def nvmlDeviceGetName(self, handle):  # noqa: N802
        return self._gpu("nvmlDeviceGetName", handle)["name"]

    def nvmlDeviceGetUUID(self, handle):  # noqa: N802
        return self._gpu("nvmlDeviceGetUUID", handle)["uuid"]

    def nvmlDeviceGetUtilizationRates(self, handle):  # noqa: N802
        gpu = self._gpu("nvmlDeviceGetUtilizationRates", handle)
        return SimpleNamespace(gpu=gpu["sm"], memory=gpu["mem"])

    def nvmlDeviceGetMemoryInfo(self, handle):  # noqa: N802
        gpu = self._gpu("nvmlDeviceGetMemoryInfo", handle)
        return SimpleNamespace(
            used=gpu["used"], total=gpu["total"], free=gpu["total"] - gpu["used"]
        )

    def nvmlDeviceGetPowerUsage(self, handle):  # noqa: N802
        return self._gpu("nvmlDeviceGetPowerUsage", handle)["power_mw"]

    def nvmlDeviceGetTemperature(self, handle, sensor):  # noqa: N802
        assert sensor == self.NVML_TEMPERATURE_GPU
        return self._gpu("nvmlDeviceGetTemperature", handle)["temp"]

    def nvmlDeviceGetClockInfo(self, handle, clock):  # noqa: N802
        gpu = self._gpu("nvmlDeviceGetClockInfo", handle)
        return {self.NVML_CLOCK_SM: gpu["sm_clock"], self.NVML_CLOCK_MEM: gpu["mem_clock"]}[clock]

    def nvmlDeviceGetComputeRunningProcesses(self, handle):  # noqa: N802
        procs = self._gpu("nvmlDeviceGetComputeRunningProcesses", handle)["procs"]
        return [SimpleNamespace(pid=pid, usedGpuMemory=used) for pid, used in procs]


@pytest.fixture(autouse=True)
def no_leftover_threads():
    yield
    leftovers = [t for t in threading.enumerate() if t.name == "harness-monitor"]
    assert not leftovers, "a Sampler thread was left running"


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def fake_psutil():
    return FakePsutil()


@pytest.fixture
def fake_nvml():
    return FakeNVML()


def make_sampler(clock, fake_psutil, nvml, **kwargs):
    kwargs.setdefault("pid", PID)
    return Sampler(
        clock=clock, wall_clock=lambda: 1.7e9, nvml=nvml, psutil_module=fake_psutil, **kwargs
    )


# Sampler with fakes ---------------------------------------------------------------------------


def test_sample_contents_exact(clock, fake_psutil, fake_nvml):
    sampler = make_sampler(clock, fake_psutil, fake_nvml)
    sampler.set_phase("fit")
    clock.now += 1.0
    fake_psutil.advance(0.75, 0.25)
    fake_psutil.proc_cpu = 120.0
    fake_psutil.rss = 500 * MIB

    sample = sampler.sample_once()

    assert sample == {
        "t": 1.0,
        "phase": "fit",
        "cpu": 50.0,
        "cpu_per_core": [75.0, 25.0],
        "proc_cpu": 120.0,
        "proc_rss": 500 * MIB,
        "gpus": [
            {
                "index": 0,
                "sm": 50,
                "mem": 20,
                "fb_used": 2 * GIB,
                "fb_total": 80 * GIB,
                "power_w": 100.4,
                "temp_c": 40,
                "sm_clock_mhz": 1980,
                "mem_clock_mhz": 2619,
                "proc_gpu_mem": 1 * GIB,
            },
            {
                "index": 1,
                "sm": 10,
                "mem": 5,
                "fb_used": 1 * GIB,
                "fb_total": 80 * GIB,
                "power_w": 60.25,
                "temp_c": 35,
                "sm_clock_mhz": 1410,
                "mem_clock_mhz": 2619,
                "proc_gpu_mem": 0,
            },
        ],
    }
    json.dumps(sample)
    summary = sampler.stop()
    assert summary["gpu_status"] == "ok"
    assert summary["driver"] == "550.54.15"
    assert summary["gpus"] == [
        {"index": 0, "name": "Fake H100", "uuid": "GPU-0000", "fb_total": 80 * GIB},
        {"index": 1, "name": "Fake H100", "uuid": "GPU-0001", "fb_total": 80 * GIB},
    ]
    assert summary["proc_gpu_mem_note"] is None  # PID is on GPU 0's list: GPU 1's 0 is true
    assert summary["started_at"] == 1.7e9
    assert fake_nvml.inits == fake_nvml.shutdowns == 1


def test_cpu_percent_counts_like_psutil(clock, fake_psutil, fake_nvml):
    """iowait is idle time and guest time is already inside user time."""
    sampler = make_sampler(clock, fake_psutil, fake_nvml)
    clock.now += 1.0
    # core 0: user 0.5 (0.25 of it guest), iowait 0.25, idle 0.25 -> 50 % busy
    for field, value in ((0, 0.5), (4, 0.25), (3, 0.25), (2, 0.25)):
        fake_psutil.times[0][field] += value
    fake_psutil.advance(0.0, 1.0, seconds=0.0)  # no time passes on core 1
    sample = sampler.sample_once()
    assert sample["cpu_per_core"] == [50.0, None]
    assert sample["cpu"] == 50.0


def test_cpu_window_too_short_gives_none_and_carries_over(clock, fake_psutil, fake_nvml):
    sampler = make_sampler(clock, fake_psutil, fake_nvml, interval=1.0)
    fake_psutil.advance(1.0, 1.0)
    fake_psutil.proc_cpu = 99.0
    fake_psutil.rss = 7
    clock.now += 0.05  # shorter than min_window_s (0.1 s at a 1 s interval)
    early = sampler.sample_once()
    assert (early["cpu"], early["cpu_per_core"], early["proc_cpu"]) == (None, None, None)
    assert early["proc_rss"] == 7
    assert len(early["gpus"]) == 2
    # The skipped busy time is counted in the next window rather than lost.
    clock.now += 0.95
    fake_psutil.advance(0.0, 0.0)
    assert sampler.sample_once()["cpu_per_core"] == [50.0, 50.0]
    sampler.stop()


def test_phase_summary_maths(clock, fake_psutil, fake_nvml):
    sampler = make_sampler(clock, fake_psutil, fake_nvml)
    gpu0, gpu1 = fake_nvml.gpus
    readings = [
        # phase, seconds, cpu busy, proc_cpu, rss, (sm0, sm1), (fb0, fb1) GiB, (mW0, mW1)
        ("setup", 1.0, 0.2, 50.0, 100, (0, 0), (1, 1), (50000, 50000)),
        ("setup", 1.0, 0.4, 150.0, 300, (10, 0), (1, 1), (70000, 50000)),
        ("fit", 2.0, 0.9, 180.0, 400, (90, 30), (4, 2), (250000, 150000)),
        ("fit", 1.0, 0.7, 220.0, 600, (70, 10), (6, 2), (300000, 100000)),
    ]
    for phase, seconds, busy, proc_cpu, rss, sms, fbs, powers in readings:
        sampler.set_phase(phase)
        clock.now += seconds
        fake_psutil.advance(busy, busy, seconds=seconds)
        fake_psutil.proc_cpu = proc_cpu
        fake_psutil.rss = rss
        for gpu, sm, fb, power in zip((gpu0, gpu1), sms, fbs, powers, strict=True):
            gpu.update(sm=sm, mem=sm // 2, used=fb * GIB, power_mw=power)
        sampler.sample_once()

    summary = sampler.stop()
    assert [s["phase"] for s in summary["samples"]] == ["setup", "setup", "fit", "fit"]
    assert [s["t"] for s in summary["samples"]] == [1.0, 2.0, 4.0, 5.0]
    assert summary["n_samples"] == 4
    assert summary["capped"] is False
    setup, fit = summary["phases"]["setup"], summary["phases"]["fit"]
    assert list(summary["phases"]) == ["setup", "fit"]
    assert (setup["seconds"], setup["n"]) == (2.0, 2)
    assert (fit["seconds"], fit["n"]) == (3.0, 2)
    assert setup["cpu"] == {"mean": 30.0, "peak": 40.0}
    assert setup["proc_cpu"] == {"mean": 100.0, "peak": 150.0}
    assert setup["proc_rss"] == {"mean": 200, "peak": 300}
    assert setup["gpu_sm"] == {"mean": 2.5, "peak": 10}
    assert fit["cpu"] == {"mean": 80.0, "peak": 90.0}
    assert fit["proc_cpu"] == {"mean": 200.0, "peak": 220.0}
    assert fit["proc_rss"] == {"mean": 500, "peak": 600}
    assert fit["gpu_sm"] == {"mean": 50.0, "peak": 90}
    assert fit["gpu_mem"] == {"mean": 25.0, "peak": 45}
    assert fit["gpu_fb_used"] == {"mean": int(3.5 * GIB), "peak": 6 * GIB}
    assert fit["gpu_power_w"] == {"mean": 200.0, "peak": 300.0}
    # PID owns 1 GiB on GPU 0 and nothing on GPU 1 throughout.
    assert fit["proc_gpu_mem"] == {"mean": GIB, "peak": GIB}
    json.dumps(summary)


def test_failing_single_field_gives_none(clock, fake_psutil, fake_nvml):
    fake_nvml.fail |= {("nvmlDeviceGetPowerUsage", 1), ("nvmlDeviceGetUtilizationRates", 0)}
    sampler = make_sampler(clock, fake_psutil, fake_nvml)
    clock.now += 1.0
    gpu0, gpu1 = sampler.sample_once()["gpus"]
    assert (gpu0["sm"], gpu0["mem"], gpu0["power_w"]) == (None, None, 100.4)
    assert (gpu1["sm"], gpu1["mem"], gpu1["power_w"]) == (10, 5, None)
    assert gpu0["temp_c"] == 40
    summary = sampler.stop()
    # Means skip the missing readings instead of counting them as zero.
    assert summary["phases"]["init"]["gpu_sm"] == {"mean": 10.0, "peak": 10}
    assert summary["phases"]["init"]["gpu_power_w"] == {"mean": 100.4, "peak": 100.4}


def test_nvml_init_failure_keeps_cpu_sampling(clock, fake_psutil):
    nvml = FakeNVML(init_error="Driver Not Loaded")
    sampler = make_sampler(clock, fake_psutil, nvml)
    assert sampler.gpu_status == "NVML unavailable: Driver Not Loaded"
    clock.now += 1.0
    fake_psutil.advance(0.5, 0.5)
    fake_psutil.proc_cpu = 42.0
    sample = sampler.sample_once()
    assert (sample["cpu"], sample["proc_cpu"], sample["gpus"]) == (50.0, 42.0, [])
    summary = sampler.stop()
    assert (summary["gpus"], summary["driver"]) == ([], None)
    assert summary["gpu_status"] == "NVML unavailable: Driver Not Loaded"
    assert set(summary["phases"]["init"]) == {"seconds", "n", "cpu", "proc_cpu", "proc_rss"}
    assert nvml.shutdowns == 0


def test_pid_attribution_of_gpu_memory(clock, fake_psutil, fake_nvml):
    sampler = make_sampler(clock, fake_psutil, fake_nvml, pid=OTHER_PID)
    gpus = sampler.sample_once()["gpus"]
    assert [g["proc_gpu_mem"] for g in gpus] == [5 * GIB, 3 * GIB]
    summary = sampler.stop()
    assert summary["phases"]["init"]["proc_gpu_mem"] == {"mean": 8 * GIB, "peak": 8 * GIB}
    assert summary["pid"] == OTHER_PID

    fake_nvml.gpus[0]["procs"] = [(PID, None)]  # NVML cannot tell (e.g. WDDM)
    sampler = make_sampler(clock, fake_psutil, fake_nvml)
    assert [g["proc_gpu_mem"] for g in sampler.sample_once()["gpus"]] == [None, 0]
    sampler.stop()


def test_machine_only_sampling_has_no_process_fields(clock, fake_psutil, fake_nvml):
    sampler = make_sampler(clock, fake_psutil, fake_nvml, track_process=False)
    clock.now += 1.0
    sample = sampler.sample_once()
    assert (sample["proc_cpu"], sample["proc_rss"]) == (None, None)
    assert [g["proc_gpu_mem"] for g in sample["gpus"]] == [None, None]
    assert sampler.stop()["pid"] is None


def test_process_gone_mid_run_gives_none(clock, fake_psutil, fake_nvml):
    sampler = make_sampler(clock, fake_psutil, fake_nvml)
    fake_psutil.gone = True
    clock.now += 1.0
    fake_psutil.advance(0.5, 0.5)
    sample = sampler.sample_once()
    assert (sample["proc_cpu"], sample["proc_rss"]) == (None, None)
    assert sample["cpu"] is not None
    sampler.stop()


def test_unknown_pid_raises_process_lookup_error(clock, fake_psutil, fake_nvml):
    with pytest.raises(ProcessLookupError, match="no process with pid 4242"):
        make_sampler(clock, fake_psutil, fake_nvml, pid=4242)
    assert fake_nvml.inits == 0  # nothing to release when construction fails


def test_gpu_indices_select_devices(clock, fake_psutil, fake_nvml):
    sampler = make_sampler(clock, fake_psutil, fake_nvml, gpu_indices=[1])
    assert [g["index"] for g in sampler.sample_once()["gpus"]] == [1]
    assert sampler.stop()["gpu_status"] == "ok"

    sampler = make_sampler(clock, fake_psutil, fake_nvml, gpu_indices=[5])
    assert sampler.gpu_status == "NVML GPU unavailable: 5 (Invalid Argument)"
    assert sampler.sample_once()["gpus"] == []
    sampler.stop()

    sampler = make_sampler(clock, fake_psutil, fake_nvml, gpu_indices=[])
    assert sampler.gpu_status.startswith("GPU sampling off")
    sampler.stop()
    assert fake_nvml.inits == fake_nvml.shutdowns == 2


def test_gpu_uuids_select_devices(clock, fake_psutil, fake_nvml):
    sampler = make_sampler(clock, fake_psutil, fake_nvml, gpu_uuids=["GPU-0001"])
    assert [g["index"] for g in sampler.sample_once()["gpus"]] == [1]
    assert sampler.gpus == [
        {"index": 1, "name": "Fake H100", "uuid": "GPU-0001", "fb_total": 80 * GIB}
    ]
    assert sampler.stop()["gpu_status"] == "ok"

    fake_nvml.fail.add(("nvmlDeviceGetIndex", 0))  # e.g. a MIG device: no index to show
    sampler = make_sampler(clock, fake_psutil, fake_nvml, gpu_uuids=["GPU-0000", "GPU-0009"])
    assert sampler.gpu_status == "NVML GPU unavailable: GPU-0009 (Not Found)"
    assert [(g["index"], g["uuid"]) for g in sampler.gpus] == [(None, "GPU-0000")]
    assert [g["sm"] for g in sampler.sample_once()["gpus"]] == [50]
    sampler.stop()

    sampler = make_sampler(clock, fake_psutil, fake_nvml, gpu_uuids=[])
    assert sampler.gpu_status == "GPU sampling off: no GPU UUIDs selected"
    sampler.stop()
    with pytest.raises(ValueError, match="not both"):
        make_sampler(clock, fake_psutil, fake_nvml, gpu_indices=[0], gpu_uuids=["GPU-0000"])
    assert fake_nvml.inits == fake_nvml.shutdowns == 2


def test_gpus_off_never_opens_nvml(clock, fake_psutil, fake_nvml):
    sampler = make_sampler(clock, fake_psutil, fake_nvml, gpus_off="CPU cell")
    clock.now += 1.0
    assert sampler.sample_once()["gpus"] == []
    summary = sampler.stop()
    assert (summary["gpu_status"], summary["gpus"], summary["driver"]) == (
        "GPU sampling off: CPU cell",
        [],
        None,
    )
    assert fake_nvml.inits == 0


def test_gpu_memory_of_an_unlisted_process_is_unknown_not_zero(clock, fake_psutil, fake_nvml):
    """Inside a container NVML lists host PIDs, so the sampled PID is on no list: its GPU
    memory is null, with the reason in the summary, never a false 0."""
    for gpu in fake_nvml.gpus:
        gpu["procs"] = [(OTHER_PID, 3 * GIB)]
    sampler = make_sampler(clock, fake_psutil, fake_nvml)
    clock.now += 1.0
    assert [g["proc_gpu_mem"] for g in sampler.sample_once()["gpus"]] == [None, None]
    summary = sampler.stop()
    assert "proc_gpu_mem" not in summary["phases"]["init"]
    assert summary["proc_gpu_mem_note"] == (
        f"process {PID} was never in NVML's process list of the sampled GPUs (inside a "
        "container NVML lists host PIDs): its GPU memory is unknown, not 0"
    )


def test_gpu_memory_before_the_process_opens_the_gpu_is_null(clock, fake_psutil, fake_nvml):
    fake_nvml.gpus[0]["procs"] = []  # not yet on the GPU
    sampler = make_sampler(clock, fake_psutil, fake_nvml)
    clock.now += 1.0
    assert [g["proc_gpu_mem"] for g in sampler.sample_once()["gpus"]] == [None, None]
    fake_nvml.gpus[0]["procs"] = [(PID, GIB)]
    clock.now += 1.0
    # Listed on GPU 0, the PIDs agree: its absence from GPU 1's list is a true 0.
    assert [g["proc_gpu_mem"] for g in sampler.sample_once()["gpus"]] == [GIB, 0]
    summary = sampler.stop()
    assert summary["phases"]["init"]["proc_gpu_mem"] == {"mean": GIB, "peak": GIB}
    assert summary["proc_gpu_mem_note"] == (
        f"process {PID} was missing from NVML's process list of the sampled GPUs in 1 of 2 "
        "samples (e.g. before it opened the GPU): there its GPU memory is null"
    )

    fake_nvml.fail |= {("nvmlDeviceGetComputeRunningProcesses", i) for i in (0, 1)}
    sampler = make_sampler(clock, fake_psutil, fake_nvml)
    assert [g["proc_gpu_mem"] for g in sampler.sample_once()["gpus"]] == [None, None]
    assert sampler.stop()["proc_gpu_mem_note"] is None  # NVML cannot list: not a PID mismatch


def test_stored_samples_are_capped_but_phases_are_not(clock, fake_psutil, fake_nvml):
    sampler = make_sampler(clock, fake_psutil, fake_nvml, max_samples=4)
    for _ in range(10):
        clock.now += 1.0
        sampler.sample_once()
    summary = sampler.stop()
    assert [s["t"] for s in summary["samples"]] == [1.0, 5.0, 9.0]
    assert (summary["n_samples"], summary["n_stored"]) == (10, 3)
    assert (summary["capped"], summary["sample_stride"]) == (True, 4)
    assert summary["phases"]["init"]["n"] == 10
    assert summary["phases"]["init"]["seconds"] == 10.0


def test_running_sampler_closes_phases_with_a_sample(clock, fake_psutil, fake_nvml):
    """start() samples at once, set_phase() samples the old phase, stop() samples last."""
    sampler = make_sampler(clock, fake_psutil, fake_nvml, interval=10.0)  # thread never fires
    clock.now += 5.0
    sampler.start()  # t = 0 again: start resets the origin
    clock.now += 2.0
    fake_psutil.advance(0.5, 0.5, seconds=2.0)
    sampler.set_phase("fit")
    clock.now += 0.5  # below min_window_s (1 s): no extra sample on this switch
    sampler.set_phase("evaluate")
    clock.now += 3.5
    summary = sampler.stop()

    samples = summary["samples"]
    assert [(s["t"], s["phase"]) for s in samples] == [
        (0.0, "init"),
        (2.0, "init"),
        (6.0, "evaluate"),
    ]
    # The switch sample measures the 2 s of "init"; the first one saw no CPU time pass.
    assert (samples[0]["cpu"], samples[1]["cpu"]) == (None, 50.0)
    assert summary["phases"]["init"]["seconds"] == 2.0
    assert summary["phases"]["evaluate"]["seconds"] == 4.0
    assert "fit" not in summary["phases"]
    assert not sampler._thread.is_alive()
    assert fake_nvml.shutdowns == 1
    assert sampler.stop() == summary  # idempotent
    with pytest.raises(RuntimeError):
        sampler.start()
    with pytest.raises(RuntimeError):
        sampler.sample_once()


def test_a_discarded_fit_moves_to_calibrate(clock, fake_psutil, fake_nvml):
    """A first fit found too short is renamed with its window: the kept fits' figures hold
    only the kept fits, the calibrations add up under their own name."""
    sampler = make_sampler(clock, fake_psutil, fake_nvml, interval=10.0)
    sampler.start()
    for cpu in (0.9, 0.3):  # a calibration fit (90% CPU), then the kept one (30%)
        sampler.set_phase("fit")
        clock.now += 2.0
        fake_psutil.advance(cpu, cpu, seconds=2.0)
        if cpu == 0.9:
            sampler.rename_phase("fit", "calibrate")
            assert sampler.phase == "calibrate"
    sampler.set_phase("evaluate")
    phases = sampler.stop()["phases"]
    assert (phases["calibrate"]["seconds"], phases["calibrate"]["cpu"]["peak"]) == (2.0, 90.0)
    assert (phases["fit"]["seconds"], phases["fit"]["cpu"]["peak"]) == (2.0, 30.0)
    samples = sampler.summary()["samples"]
    assert [s["phase"] for s in samples] == ["init", "calibrate", "fit"]


def test_thread_survives_a_failing_sample(fake_psutil, fake_nvml):
    sampler = Sampler(interval=0.01, pid=PID, nvml=fake_nvml, psutil_module=fake_psutil)
    with sampler:
        fake_psutil.cpu_times = None  # the next CPU reading raises TypeError
        deadline = time.monotonic() + 2.0
        while sampler.summary()["errors"] < 2 and time.monotonic() < deadline:
            time.sleep(0.005)
    summary = sampler.summary()
    assert summary["errors"] >= 2
    assert "not callable" in summary["last_error"]


def test_invalid_arguments(fake_psutil, fake_nvml):
    with pytest.raises(ValueError):
        Sampler(interval=0, nvml=fake_nvml, psutil_module=fake_psutil)
    with pytest.raises(ValueError):
        Sampler(max_samples=1, nvml=fake_nvml, psutil_module=fake_psutil)


# NVML helpers -------------------------------------------------------------------------------


def test_gpu_inventory_with_fake(fake_nvml):
    fake_nvml.fail.add(("nvmlDeviceGetUUID", 1))
    assert gpu_inventory(fake_nvml) == {
        "status": "ok",
        "driver": "550.54.15",
        "gpus": [
            {"index": 0, "name": "Fake H100", "fb_total": 80 * GIB, "uuid": "GPU-0000"},
            {"index": 1, "name": "Fake H100", "fb_total": 80 * GIB, "uuid": None},
        ],
    }
    assert fake_nvml.inits == fake_nvml.shutdowns == 1


def test_resolve_visible_gpu(fake_nvml):
    gpu1 = {"uuid": "GPU-0001", "name": "Fake H100", "nvml_index": 1}
    assert resolve_visible_gpu("1", fake_nvml) == {"cuda_visible_devices": "1", **gpu1}
    assert resolve_visible_gpu("GPU-0001", fake_nvml) == {
        "cuda_visible_devices": "GPU-0001",
        **gpu1,
    }
    # CUDA also accepts a unique prefix of a UUID.
    fake_nvml.gpus[1]["uuid"] = "GPU-1234-abcd"
    assert resolve_visible_gpu("GPU-12", fake_nvml)["uuid"] == "GPU-1234-abcd"
    unknown = {"uuid": None, "name": None, "nvml_index": None}
    for entry, reason in (
        ("GPU-", "NVML has 2 GPUs with a UUID starting GPU-"),
        ("GPU-9", "NVML has no GPU with a UUID starting GPU-9"),
        ("5", "Invalid Argument"),
        ("bogus", "neither a GPU index nor a GPU UUID"),
    ):
        assert resolve_visible_gpu(entry, fake_nvml) == {
            "cuda_visible_devices": entry,
            **unknown,
            "reason": f"CUDA_VISIBLE_DEVICES entry {entry!r}: {reason}",
        }
    fake_nvml.fail.add(("nvmlDeviceGetUUID", 0))
    assert resolve_visible_gpu("0", fake_nvml) == {
        "cuda_visible_devices": "0",
        "uuid": None,
        "name": "Fake H100",
        "nvml_index": 0,
        "reason": "NVML gives no UUID for the GPU of CUDA_VISIBLE_DEVICES entry '0'",
    }
    assert fake_nvml.inits == fake_nvml.shutdowns == 8
    assert resolve_visible_gpu("0", FakeNVML(init_error="Driver Not Loaded")) == {
        "cuda_visible_devices": "0",
        **unknown,
        "reason": "NVML unavailable: Driver Not Loaded",
    }


def test_identify_cell_gpus_of_a_data_parallel_worker(fake_nvml):
    environ = {"CUDA_VISIBLE_DEVICES": "1,0", "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
    assert [g["uuid"] for g in identify_cell_gpus(2, environ, fake_nvml)] == [
        "GPU-0001",
        "GPU-0000",
    ]
    assert [g["uuid"] for g in identify_cell_gpus(2, {}, fake_nvml)] == ["GPU-0000", "GPU-0001"]
    short = identify_cell_gpus(2, {"CUDA_VISIBLE_DEVICES": "1"}, fake_nvml)
    assert short[0]["uuid"] == "GPU-0001"
    assert (
        short[1]["uuid"] is None
        and short[1]["reason"] == "CUDA_VISIBLE_DEVICES gives 1 GPU(s), not 2"
    )


def test_identify_cell_gpu(fake_nvml):
    gpu0 = {"uuid": "GPU-0000", "name": "Fake H100", "nvml_index": 0}
    environ = {"CUDA_VISIBLE_DEVICES": "1", "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
    assert identify_cell_gpu(environ, fake_nvml)["uuid"] == "GPU-0001"
    # The backends train on the first GPU they are given.
    environ = {"CUDA_VISIBLE_DEVICES": "GPU-0000,GPU-0001"}
    assert identify_cell_gpu(environ, fake_nvml) == {"cuda_visible_devices": "GPU-0000", **gpu0}
    assert identify_cell_gpu({}, fake_nvml) == {
        "cuda_visible_devices": "0",
        **gpu0,
        "note": "CUDA_DEVICE_ORDER is not PCI_BUS_ID: CUDA's index may differ from NVML's",
    }
    for hidden in ("", "-1"):
        assert identify_cell_gpu({"CUDA_VISIBLE_DEVICES": hidden}, fake_nvml) == {
            "cuda_visible_devices": hidden,
            "uuid": None,
            "name": None,
            "nvml_index": None,
            "reason": f"CUDA_VISIBLE_DEVICES={hidden!r} hides every GPU",
        }


# The worker's sampler -------------------------------------------------------------------------


@pytest.fixture
def fake_driver(monkeypatch):
    """A machine with an NVIDIA driver: `import pynvml` gives a FakeNVML."""
    nvml = FakeNVML()
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    return nvml


def started_worker(tmp_path, device):
    """A worker for a one-cell task whose sampler ran (no backend is imported)."""
    cell = Cell(scenario="s", id="default", device=device, sample_interval=60.0)
    task = {"cell": cell.to_json(), "backend": "torch", "scenario": {"name": "s"}}
    worker = Worker(Task.from_json(task), tmp_path / "result.json", None, False)
    worker._start_sampler()
    worker._stop_sampler()
    return worker


@pytest.mark.parametrize("entry", ["1", "GPU-0001"])
def test_worker_samples_only_the_gpu_it_trains_on(tmp_path, monkeypatch, fake_driver, entry):
    # What device_env gives the worker of gpu:1 on a runner given GPUs "0,1".
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", entry)
    monkeypatch.setenv("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    result = started_worker(tmp_path, "gpu:1").result
    assert result["device"] == {
        "requested": "gpu:1",
        "gpu": {
            "cuda_visible_devices": entry,
            "uuid": "GPU-0001",
            "name": "Fake H100",
            "nvml_index": 1,
        },
    }
    monitor = result["monitor"]
    assert monitor["gpu_status"] == "ok"
    assert [g["uuid"] for g in monitor["gpus"]] == ["GPU-0001"]
    assert monitor["samples"] and all(
        [g["index"] for g in sample["gpus"]] == [1] for sample in monitor["samples"]
    )
    assert fake_driver.inits == fake_driver.shutdowns == 2


def test_worker_of_an_unknown_gpu_samples_none(tmp_path, monkeypatch, fake_driver):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-9999")
    result = started_worker(tmp_path, "gpu").result
    reason = "CUDA_VISIBLE_DEVICES entry 'GPU-9999': NVML has no GPU with a UUID starting GPU-9999"
    assert result["device"]["gpu"]["reason"] == reason
    assert result["monitor"]["gpu_status"] == f"GPU sampling off: {reason}"
    assert result["monitor"]["gpus"] == []


def test_worker_of_a_cpu_cell_samples_no_gpu(tmp_path, monkeypatch, fake_driver):
    """Other processes' GPU load would be counted as the cell's; and so a CPU cell's
    monitor reads the same with a driver and without."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    result = started_worker(tmp_path, "cpu").result
    assert "device" not in result  # the device phase records it
    monitor = result["monitor"]
    assert (monitor["gpu_status"], monitor["gpus"]) == ("GPU sampling off: CPU cell", [])
    assert monitor["n_samples"] >= 1 and monitor["proc_gpu_mem_note"] is None
    assert fake_driver.inits == 0


# NVML helpers -------------------------------------------------------------------------------


@pytest.fixture(params=["this machine", "fake driver"])
def nvml_here(request, monkeypatch):
    """NVML as this machine has it, then as a machine with a driver has it (a fake): the tests
    of real sampling must hold on both. Returns what `nvml_status()` says in this process."""
    if request.param == "fake driver":
        monkeypatch.setitem(sys.modules, "pynvml", FakeNVML())
    module, status = nvml_status()
    if module is not None:
        module.nvmlShutdown()
    return status


def test_nvml_helpers_never_raise_with_or_without_a_driver(nvml_here):
    inventory = gpu_inventory()
    if nvml_here == "ok":
        assert inventory["status"] == "ok" and inventory["driver"]
        assert all(set(g) == {"index", "name", "uuid", "fb_total"} for g in inventory["gpus"])
    else:
        assert nvml_here.startswith("NVML unavailable: ")
        assert inventory == {"status": nvml_here, "driver": None, "gpus": []}
    assert nvml_status(FakeNVML(init_error="boom")) == (None, "NVML unavailable: boom")


# Real psutil, real pynvml -------------------------------------------------------------------


def test_real_sampler_sees_cpu_burn(nvml_here):
    with Sampler(interval=0.05) as sampler:
        sampler.set_phase("burn")
        end = time.monotonic() + 0.5
        x = 0
        while time.monotonic() < end:
            x += 1
    summary = sampler.summary()
    assert summary["n_samples"] >= 5
    burn = summary["phases"]["burn"]
    assert burn["proc_cpu"]["peak"] > 20
    assert burn["proc_rss"]["peak"] > 0
    assert burn["n"] >= 5
    # "ok" where a driver answers, the reason where none does.
    assert summary["gpu_status"] == nvml_here
    assert len(summary["gpus"]) == len(gpu_inventory()["gpus"])
    assert summary["pid"] == os.getpid()
    measured = [s for s in summary["samples"] if s["cpu"] is not None]
    assert measured and all(len(s["cpu_per_core"]) == psutil.cpu_count() for s in measured)
    json.dumps(summary)


def test_real_sample_is_cheap():
    """Well under 1 % of a core at 1 s means a sample must cost far less than 10 ms."""
    # 10 ms windows are long enough to read the CPU; a worker samples at most one GPU.
    sampler = Sampler(interval=0.1, gpu_indices=[0])
    samples, cpu_seconds = [], 0.0
    for _ in range(20):
        time.sleep(0.015)
        begin = time.process_time()
        samples.append(sampler.sample_once())
        cpu_seconds += time.process_time() - begin
    sampler.stop()
    assert all(s["proc_cpu"] is not None for s in samples)
    assert any(s["cpu"] is not None for s in samples)
    assert cpu_seconds / 20 < 0.003, f"{cpu_seconds / 20 * 1000:.2f} ms per sample"


# dmon ---------------------------------------------------------------------------------------

HEADER = [
    "# gpu   pwr  gtemp    sm   mem    fb  mclk  pclk   cpu   pcpu    rss",
    "# Idx     W      C     %     %    MB   MHz   MHz     %      %     MB",
]


def test_dmon_header_golden():
    assert dmon.format_header(2) == HEADER
    assert dmon.format_header(0) == HEADER


def test_dmon_lines_with_gpus_golden(clock, fake_psutil, fake_nvml):
    fake_nvml.fail.add(("nvmlDeviceGetTemperature", 1))
    sampler = make_sampler(clock, fake_psutil, fake_nvml)
    clock.now += 1.0
    fake_psutil.advance(0.75, 0.25)
    fake_psutil.proc_cpu = 123.4
    fake_psutil.rss = 512 * MIB + 1
    lines = dmon.format_line(sampler.sample_once())
    sampler.stop()
    assert lines == [
        "    0   100     40    50    20  2048  2619  1980    50    123    512",
        "    1    60      -    10     5  1024  2619  1410    50    123    512",
    ]
    assert all(len(line) == len(HEADER[0]) for line in lines)


def test_dmon_line_without_gpu_golden():
    sample = {"cpu": 12.3, "cpu_per_core": [12.3], "proc_cpu": None, "proc_rss": None, "gpus": []}
    assert dmon.format_line(sample) == [
        "    -     -      -     -     -     -     -     -    12      -      -"
    ]
    wide = {"cpu": 100.0, "proc_cpu": 6400.0, "proc_rss": 123456789 * MIB, "gpus": []}
    # Over-wide values still keep a space between columns.
    assert dmon.format_line(wide)[0].endswith("   100   6400 123456789")


DATA_LINE = re.compile(r"^ {4}-( +-){7} +(\d+|-) +- +-$")  # no GPU
GPU_LINE = re.compile(r"^ +\d+( +(\d+|-)){7} +(\d+|-) +- +-$")


def lines_per_sample():
    """dmon prints a line per GPU NVML lists here, or one line when it lists none."""
    return max(1, len(gpu_inventory()["gpus"]))


def test_dmon_main_prints_header_and_lines(capsys, nvml_here):
    assert cli.main(["monitor", "--count", "2", "--interval", "0.05"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[:2] == HEADER
    assert len(lines) == 2 + 2 * lines_per_sample()
    pattern = GPU_LINE if nvml_here == "ok" else DATA_LINE
    assert all(pattern.match(line) for line in lines[2:]), lines
    assert re.search(r"\d+ +- +-$", lines[-1]), "a 50 ms window should measure the CPU"
    assert err == ""


def test_dmon_main_with_pid_and_header_repeat(capsys, nvml_here):
    assert (
        cli.main(["monitor", "--pid", str(os.getpid()), "--count", "21", "--interval", "0.001"])
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    per = lines_per_sample()
    # The header comes again once HEADER_EVERY (20) data lines have been printed since.
    block = -(-dmon.HEADER_EVERY // per) * per
    repeats = (21 * per - 1) // block
    assert len(lines) == 2 + 21 * per + 2 * repeats
    assert repeats >= 1 and lines[2 + block : 4 + block] == HEADER
    assert re.search(r" \d+$", lines[-1]), "rss of this process must be shown"


@pytest.mark.parametrize("pid", ["2147483647", "-5"])
def test_dmon_main_bad_pid(capsys, pid):
    assert cli.main(["monitor", "--pid", pid, "--count", "1"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"harness monitor: no process with pid {pid}\n"


def test_dmon_main_ctrl_c_exits_zero(capsys, monkeypatch, nvml_here):
    class Interrupted(Sampler):
        calls = 0

        def sample_once(self):
            Interrupted.calls += 1
            if Interrupted.calls == 2:
                raise KeyboardInterrupt
            return super().sample_once()

    monkeypatch.setattr(dmon, "Sampler", Interrupted)
    assert cli.main(["monitor", "--interval", "0.01"]) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 2 + lines_per_sample()
    assert err == ""


def test_monitor_options_parse_as_a_subcommand():
    args = cli.build_parser().parse_args(
        ["monitor", "--pid", "7", "--interval", "2", "--count", "3"]
    )
    assert (args.command, args.pid, args.interval, args.count) == ("monitor", 7, 2.0, 3)
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["monitor", "--interval", "0"])
