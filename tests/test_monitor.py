"""Tests for harness.monitor (Sampler, NVML helpers) and harness.dmon (live lines, CLI)."""

import json
import os
import re
import threading
import time
from collections import namedtuple
from types import SimpleNamespace

import psutil
import pytest

from harness import dmon
from harness.monitor import Sampler, gpu_inventory, nvml_status

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
        {"index": 0, "name": "Fake H100", "fb_total": 80 * GIB},
        {"index": 1, "name": "Fake H100", "fb_total": 80 * GIB},
    ]
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


def test_nvml_helpers_never_raise_without_a_driver():
    module, status = nvml_status()
    if module is not None:  # pragma: no cover - only on a machine with a driver
        module.nvmlShutdown()
        pytest.skip("an NVIDIA driver is present")
    assert status.startswith("NVML unavailable: ")
    inventory = gpu_inventory()
    assert inventory == {"status": status, "driver": None, "gpus": []}
    assert nvml_status(FakeNVML(init_error="boom")) == (None, "NVML unavailable: boom")


# Real psutil, real pynvml -------------------------------------------------------------------


def test_real_sampler_sees_cpu_burn():
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
    assert "NVML" in summary["gpu_status"] and summary["gpu_status"] != "ok"
    assert summary["pid"] == os.getpid()
    measured = [s for s in summary["samples"] if s["cpu"] is not None]
    assert measured and all(len(s["cpu_per_core"]) == psutil.cpu_count() for s in measured)
    json.dumps(summary)


def test_real_sample_is_cheap():
    """Well under 1 % of a core at 1 s means a sample must cost far less than 10 ms."""
    sampler = Sampler(interval=0.1)  # 10 ms windows are long enough to read the CPU
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


DATA_LINE = re.compile(r"^ {4}-( +-){7} +(\d+|-) +- +-$")


def test_dmon_main_prints_header_and_lines(capsys):
    assert dmon.main(["--count", "2", "--interval", "0.05"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[:2] == HEADER
    assert len(lines) == 4
    assert all(DATA_LINE.match(line) for line in lines[2:]), lines
    assert re.search(r"\d+ +- +-$", lines[-1]), "a 50 ms window should measure the CPU"
    assert err == ""


def test_dmon_main_with_pid_and_header_repeat(capsys):
    assert dmon.main(["--pid", str(os.getpid()), "--count", "21", "--interval", "0.001"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 + 20 + 2 + 1
    assert lines[22:24] == HEADER
    assert re.search(r" \d+$", lines[-1]), "rss of this process must be shown"


@pytest.mark.parametrize("pid", ["2147483647", "-5"])
def test_dmon_main_bad_pid(capsys, pid):
    assert dmon.main(["--pid", pid, "--count", "1"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"harness monitor: no process with pid {pid}\n"


def test_dmon_main_ctrl_c_exits_zero(capsys, monkeypatch):
    class Interrupted(Sampler):
        calls = 0

        def sample_once(self):
            Interrupted.calls += 1
            if Interrupted.calls == 2:
                raise KeyboardInterrupt
            return super().sample_once()

    monkeypatch.setattr(dmon, "Sampler", Interrupted)
    assert dmon.main(["--interval", "0.01"]) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 3
    assert err == ""


def test_dmon_parser_mounts_as_subcommand():
    import argparse

    root = argparse.ArgumentParser(prog="harness")
    sub = root.add_subparsers(dest="command")
    dmon.build_parser(sub.add_parser("monitor"))
    args = root.parse_args(["monitor", "--pid", "7", "--interval", "2", "--count", "3"])
    assert (args.command, args.pid, args.interval, args.count) == ("monitor", 7, 2.0, 3)
    with pytest.raises(SystemExit):
        dmon.build_parser().parse_args(["--interval", "0"])
