"""Background utilization sampler in the spirit of `nvidia-smi dmon` and `top`.

A `Sampler` records, every `interval` seconds, system-wide and per-core CPU load, the CPU load
and resident memory of one process, and per-GPU NVML metrics. Every sample is tagged with the
current phase ("fit", "evaluate", ...) so that `summary()` can report per-phase means and peaks.

NVML is optional: without a driver (or without `pynvml`) GPU sampling is switched off and the
reason is kept in `gpu_status`; CPU sampling goes on regardless. A worker samples only the GPU it
trains on, found by UUID from its CUDA_VISIBLE_DEVICES entry (`identify_cell_gpu`). A process
NVML does not list (in containers NVML lists host PIDs) has GPU memory null, never a false 0.
"""

from __future__ import annotations

import contextlib
import glob
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from .devices import visible_entries
from .errors import one_line

DEFAULT_PHASE = "init"
MAX_SAMPLES = 20000

# Metrics aggregated per phase. GPU ones are aggregated over every sampled GPU.
_CPU_METRICS = ("cpu", "proc_cpu", "proc_rss")
_GPU_METRICS = {
    "gpu_sm": "sm",
    "gpu_mem": "mem",
    "gpu_fb_used": "fb_used",
    "gpu_power_w": "power_w",
}
# Byte counts are summarised as integers, everything else to two decimals.
_BYTE_METRICS = frozenset({"proc_rss", "gpu_fb_used", "proc_gpu_mem"})


def _text(value: Any) -> str:
    """Decodes the bytes that older pynvml releases return for strings."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def nvml_status(nvml: Any = None) -> tuple[Any | None, str]:
    """Imports (if needed) and initialises NVML without ever raising.

    Args:
        nvml: A module-like object with the pynvml API; None imports `pynvml`.

    Returns:
        `(nvml, "ok")` when `nvmlInit` succeeded (the caller then owns one `nvmlShutdown`),
        otherwise `(None, reason)` with a one-line reason.
    """
    if nvml is None:
        try:
            import pynvml as nvml
        except ImportError as exc:
            return None, f"NVML unavailable: pynvml not importable ({one_line(exc)})"
    try:
        nvml.nvmlInit()
    # Broad on purpose: besides NVMLError, a broken driver install can surface as OSError and
    # friends, and a missing GPU must never take the caller down.
    except Exception as exc:
        return None, f"NVML unavailable: {one_line(exc)}"
    return nvml, "ok"


# The device node the NVIDIA driver makes for each GPU (nvidiactl and nvidia-uvm name none).
NVIDIA_DEVICE_NODES = "/dev/nvidia[0-9]*"


def gpu_presence(
    nvml: Any = None, node_glob: Callable[[str], list[str]] = glob.glob
) -> tuple[bool, str]:
    """Whether this machine has an NVIDIA GPU at all, whatever a backend makes of it. Never
    raises.

    A GPU cell whose backend sees no GPU is skipped only where this finds none: NVML counts
    no GPU and the driver made no /dev/nvidiaN node (NVML may be what broke). Anywhere else
    the GPU is there but unusable, and the cell fails.

    Args:
        nvml: A module-like object with the pynvml API; None imports `pynvml`.
        node_glob: Lists the paths a pattern matches (tests pass a fake).

    Returns:
        (present, what shows it, or what was looked at) on one line, e.g.
        (True, "NVML sees 1 GPU") or (False, "NVML unavailable: ...; no /dev/nvidia[0-9]*
        device node").
    """
    mod, status = nvml_status(nvml)
    count = 0
    if mod is not None:
        try:
            count = int(mod.nvmlDeviceGetCount())
            status = f"NVML sees {count} GPU{'' if count == 1 else 's'}"
        except Exception as exc:  # as in nvml_status: NVML trouble must never raise
            status = f"NVML device count failed: {one_line(exc)}"
        finally:
            _shutdown(mod)
    if count > 0:
        return True, status
    try:
        nodes = sorted(node_glob(NVIDIA_DEVICE_NODES))
    except OSError:
        nodes = []
    if nodes:
        return True, f"{nodes[0]} exists ({status})"
    return False, f"{status}; no {NVIDIA_DEVICE_NODES} device node"


def _shutdown(nvml: Any) -> None:
    """Releases one nvmlInit; failures here are irrelevant to the caller."""
    # Broad for the same reason as in nvml_status: NVML trouble must never raise.
    with contextlib.suppress(Exception):
        nvml.nvmlShutdown()


def gpu_inventory(nvml: Any = None) -> dict:
    """Lists the GPUs NVML reports, for `harness env` and the environment fingerprint.

    Args:
        nvml: A module-like object with the pynvml API; None imports `pynvml`.

    Returns:
        `{"status": "ok" | reason, "driver": str | None,
        "gpus": [{"index", "name", "fb_total", "uuid"}]}`. Never raises.
    """
    mod, status = nvml_status(nvml)
    result: dict = {"status": status, "driver": None, "gpus": []}
    if mod is None:
        return result
    error = getattr(mod, "NVMLError", Exception)
    try:
        result["driver"] = _try(error, lambda: _text(mod.nvmlSystemGetDriverVersion()))
        try:
            count = mod.nvmlDeviceGetCount()
        except error as exc:
            result["status"] = f"NVML device count failed: {one_line(exc)}"
            return result
        for index in range(count):
            try:
                handle = mod.nvmlDeviceGetHandleByIndex(index)
            except error as exc:
                result["status"] = f"NVML GPU {index} unavailable: {one_line(exc)}"
                continue
            result["gpus"].append(_describe_gpu(mod, error, index, handle))
    finally:
        _shutdown(mod)
    return result


def resolve_visible_gpu(entry: str, nvml: Any = None) -> dict:
    """Finds the GPU that one CUDA_VISIBLE_DEVICES entry names, as NVML sees it. Never raises.

    An index entry is taken as an NVML index: workers run with CUDA_DEVICE_ORDER=PCI_BUS_ID,
    NVML's order. A "GPU-..." or "MIG-..." entry is a UUID, or a unique prefix of one (CUDA
    accepts both).

    Args:
        entry: One entry of CUDA_VISIBLE_DEVICES, e.g. "2" or "GPU-5e1d...".
        nvml: A module-like object with the pynvml API; None imports `pynvml`.

    Returns:
        `{"cuda_visible_devices": entry, "uuid", "name", "nvml_index"}` (None where unknown),
        with a one-line "reason" added when NVML cannot say which GPU it is (uuid None).
    """
    info: dict = {"cuda_visible_devices": entry, "uuid": None, "name": None, "nvml_index": None}
    mod, status = nvml_status(nvml)
    if mod is None:
        info["reason"] = status
        return info
    error = getattr(mod, "NVMLError", Exception)
    try:
        handle, index = _handle_for_entry(mod, error, entry)
        gpu = _describe_gpu(mod, error, index, handle)
    except (error, LookupError) as exc:
        info["reason"] = f"CUDA_VISIBLE_DEVICES entry {entry!r}: {one_line(exc)}"
        return info
    finally:
        _shutdown(mod)
    info.update(uuid=gpu["uuid"], name=gpu["name"], nvml_index=gpu["index"])
    if info["uuid"] is None:
        info["reason"] = f"NVML gives no UUID for the GPU of CUDA_VISIBLE_DEVICES entry {entry!r}"
    return info


def identify_cell_gpus(
    count: int, environ: Mapping[str, str] | None = None, nvml: Any = None
) -> list[dict]:
    """The GPUs a data-parallel worker trains on: the first ``count`` entries of its
    CUDA_VISIBLE_DEVICES (all GPUs by index where it is unset), each as
    `identify_cell_gpu` identifies one; an entry missing gives uuid None and the reason."""
    environ = os.environ if environ is None else environ
    entries = visible_entries(environ.get("CUDA_VISIBLE_DEVICES"))
    out = []
    for i in range(count):
        if entries is not None and i >= len(entries):
            out.append(
                {"cuda_visible_devices": None, "uuid": None, "name": None, "nvml_index": None,
                 "reason": f"CUDA_VISIBLE_DEVICES gives {len(entries)} GPU(s), not {count}"}
            )  # fmt: skip
            continue
        one = dict(environ)
        one["CUDA_VISIBLE_DEVICES"] = str(i) if entries is None else entries[i]
        out.append(identify_cell_gpu(one, nvml))
    return out


def identify_cell_gpu(environ: Mapping[str, str] | None = None, nvml: Any = None) -> dict:
    """Identifies the GPU a worker trains on: the first its CUDA_VISIBLE_DEVICES gives.

    Args:
        environ: The worker's environment; None reads `os.environ`.
        nvml: A module-like object with the pynvml API; None imports `pynvml`.

    Returns:
        What `resolve_visible_gpu` returns; with no GPU visible, uuid None and the reason.
    """
    environ = os.environ if environ is None else environ
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    entries = visible_entries(visible)
    if entries == []:
        return {
            "cuda_visible_devices": visible,
            "uuid": None,
            "name": None,
            "nvml_index": None,
            "reason": f"CUDA_VISIBLE_DEVICES={visible!r} hides every GPU",
        }
    # Unset, every GPU is visible and the backends train on their device 0.
    entry = "0" if entries is None else entries[0]
    info = resolve_visible_gpu(entry, nvml)
    if entry.isdigit() and environ.get("CUDA_DEVICE_ORDER") != "PCI_BUS_ID":
        # CUDA's default order puts the fastest GPU first; NVML counts by PCI bus.
        info["note"] = "CUDA_DEVICE_ORDER is not PCI_BUS_ID: CUDA's index may differ from NVML's"
    return info


def _handle_for_entry(mod: Any, error: Any, entry: str) -> tuple[Any, int | None]:
    """The NVML handle and index of a CUDA_VISIBLE_DEVICES entry.

    Raises:
        LookupError: The entry names no single GPU that NVML knows.
        NVMLError: NVML failed (as `error`).
    """
    if entry.isdigit():
        index = int(entry)
        return mod.nvmlDeviceGetHandleByIndex(index), index
    if not entry.startswith(("GPU-", "MIG-")):
        raise LookupError("neither a GPU index nor a GPU UUID")
    try:
        handle = mod.nvmlDeviceGetHandleByUUID(entry)
    except error:
        handle = _handle_by_uuid_prefix(mod, error, entry)
    return handle, _try(error, mod.nvmlDeviceGetIndex, handle)


def _handle_by_uuid_prefix(mod: Any, error: Any, prefix: str) -> Any:
    """The handle of the one GPU whose UUID starts with `prefix` (CUDA accepts prefixes)."""
    found = []
    for index in range(mod.nvmlDeviceGetCount()):
        handle = mod.nvmlDeviceGetHandleByIndex(index)
        uuid = _try(error, lambda h=handle: _text(mod.nvmlDeviceGetUUID(h)))
        if uuid is not None and uuid.startswith(prefix):
            found.append(handle)
    if len(found) != 1:
        what = "no GPU" if not found else f"{len(found)} GPUs"
        raise LookupError(f"NVML has {what} with a UUID starting {prefix}")
    return found[0]


def _describe_gpu(mod: Any, error: Any, index: int | None, handle: Any) -> dict:
    """What identifies one GPU: NVML index, name, UUID and memory size (None where unknown)."""
    memory = _try(error, mod.nvmlDeviceGetMemoryInfo, handle)
    return {
        "index": index,
        "name": _try(error, lambda: _text(mod.nvmlDeviceGetName(handle))),
        "uuid": _try(error, lambda: _text(mod.nvmlDeviceGetUUID(handle))),
        "fb_total": None if memory is None else int(memory.total),
    }


def _try(error: type[BaseException] | tuple, fn: Any, *args: Any) -> Any:
    """Calls `fn(*args)`, turning the given NVML error into None (one missing field)."""
    try:
        return fn(*args)
    except error:
        return None


def _busy_total(times: Any) -> tuple[float, float]:
    """Busy and total seconds of one psutil cpu_times entry, counted as psutil does."""
    fields = times._asdict()
    # Guest time is already included in user/nice on Linux, and iowait is idle time.
    total = sum(fields.values()) - fields.get("guest", 0.0) - fields.get("guest_nice", 0.0)
    busy = total - fields.get("idle", 0.0) - fields.get("iowait", 0.0)
    return busy, total


def _percent(busy: float, total: float) -> float | None:
    if total <= 0:
        return None
    return round(min(100.0, max(0.0, 100.0 * busy / total)), 1)


class _Stat:
    """Running mean and peak, so phase summaries survive the cap on stored samples."""

    __slots__ = ("total", "count", "peak")

    def __init__(self) -> None:
        self.total = 0.0
        self.count = 0
        self.peak: float | None = None

    def add(self, value: float | None) -> None:
        if value is None:
            return
        self.total += value
        self.count += 1
        if self.peak is None or value > self.peak:
            self.peak = value

    def merge(self, other: _Stat) -> None:
        self.total += other.total
        self.count += other.count
        if other.peak is not None and (self.peak is None or other.peak > self.peak):
            self.peak = other.peak

    def as_dict(self, integer: bool) -> dict:
        if not self.count:
            return {"mean": None, "peak": None}
        mean = self.total / self.count
        return {"mean": int(round(mean)) if integer else round(mean, 2), "peak": self.peak}


class Sampler:
    """Samples CPU, process and GPU utilization in a daemon thread.

    Usage::

        with Sampler(interval=1.0) as sampler:
            sampler.set_phase("fit")
            ...
        report = sampler.summary()

    While running, `set_phase` first closes the old phase with a sample, so every sample's
    window lies in a single phase and phases shorter than `interval` are still measured.
    CPU percentages cover the window since the previous CPU reading; a window shorter than
    `min_window_s` is too coarse for the kernel's 10 ms tick, so its CPU fields are None and
    the time is carried into the next sample instead.
    """

    def __init__(
        self,
        interval: float = 1.0,
        pid: int | None = None,
        *,
        clock: Any = time.monotonic,
        wall_clock: Any = time.time,
        nvml: Any = None,
        psutil_module: Any = None,
        gpu_indices: list[int] | None = None,
        gpu_uuids: list[str] | None = None,
        gpus_off: str | None = None,
        track_process: bool = True,
        max_samples: int = MAX_SAMPLES,
    ) -> None:
        """Initialises the sampler; nothing is sampled until `start` or `sample_once`.

        Args:
            interval: Seconds between samples (`nvidia-smi dmon` uses 1).
            pid: Process whose CPU, RSS and GPU memory are attributed; default this one.
            clock: Monotonic clock for `t` and window lengths (tests pass a fake).
            wall_clock: Clock for the summary's `started_at` epoch seconds.
            nvml: A module-like object with the pynvml API; None imports `pynvml`.
            psutil_module: Stand-in for `psutil` (tests); None imports it.
            gpu_indices: NVML indices to sample; None means all. NVML indices ignore
                CUDA_VISIBLE_DEVICES, so the caller maps them.
            gpu_uuids: UUIDs of the GPUs to sample instead (see `resolve_visible_gpu`): a
                UUID names the same GPU whatever the numbering.
            gpus_off: Why no GPU is sampled (e.g. "CPU cell"); NVML is then not opened.
            track_process: False samples only the machine: the process fields are None.
            max_samples: Cap on stored samples; beyond it every other one is dropped.

        Raises:
            ValueError: `interval` is not positive, `max_samples` is below 2, or GPUs are
                selected both by index and by UUID.
            ProcessLookupError: No process has the given `pid`.
        """
        if gpu_indices is not None and gpu_uuids is not None:
            raise ValueError("select GPUs by gpu_indices or by gpu_uuids, not both")
        if interval <= 0:
            raise ValueError(f"interval must be positive, got {interval}")
        if max_samples < 2:
            raise ValueError(f"max_samples must be at least 2, got {max_samples}")
        if psutil_module is None:
            import psutil as psutil_module
        self.interval = float(interval)
        self.min_window_s = max(0.01, 0.1 * self.interval)
        self._clock = clock
        self._wall_clock = wall_clock
        self._psutil = psutil_module
        self._psutil_error = getattr(psutil_module, "Error", Exception)
        self._max_samples = max_samples

        self.pid = (os.getpid() if pid is None else pid) if track_process else None
        self._proc = None
        if self.pid is not None:
            try:
                self._proc = psutil_module.Process(self.pid)
            except (self._psutil_error, ValueError) as exc:
                raise ProcessLookupError(f"no process with pid {self.pid}") from exc

        self._lock = threading.Lock()
        self._stop_event = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._phase = DEFAULT_PHASE
        self._samples: list[dict] = []
        self._stride = 1
        self._n = 0
        self._errors = 0
        self._last_error: str | None = None
        self._last_t: float | None = None
        self._phases: dict[str, dict] = {}
        # Samples whose GPU process lists did / did not name `pid` (see _sample_gpus).
        self._proc_listed = 0
        self._proc_unlisted = 0

        self._nvml = None
        self._nvml_error: Any = ()
        self._handles: list[tuple[int, Any]] = []
        self.gpus: list[dict] = []
        self.driver: str | None = None
        if gpus_off is not None:
            self.gpu_status = f"GPU sampling off: {gpus_off}"
        else:
            self.gpu_status = self._open_nvml(nvml, gpu_indices, gpu_uuids)

        # Prime the CPU counters now, so the first sample's window starts here.
        self._t0 = clock()
        self.started_at = wall_clock()
        self._cpu_t = self._t0
        self._cpu_times = self._read_cpu_times()
        if self._proc is not None:
            self._proc_call(self._proc.cpu_percent, None)

    # NVML setup -----------------------------------------------------------------------------

    def _open_nvml(
        self, nvml: Any, gpu_indices: list[int] | None, gpu_uuids: list[str] | None
    ) -> str:
        """Initialises NVML and caches the handles; returns the GPU status line."""
        if gpu_indices is not None and not list(gpu_indices):
            return "GPU sampling off: no GPU indices selected"
        if gpu_uuids is not None and not list(gpu_uuids):
            return "GPU sampling off: no GPU UUIDs selected"
        mod, status = nvml_status(nvml)
        if mod is None:
            return status
        error = getattr(mod, "NVMLError", Exception)
        if gpu_uuids is not None:
            wanted = [(uuid, mod.nvmlDeviceGetHandleByUUID, uuid) for uuid in gpu_uuids]
        else:
            if gpu_indices is None:
                try:
                    gpu_indices = list(range(mod.nvmlDeviceGetCount()))
                except error as exc:
                    _shutdown(mod)
                    return f"NVML device count failed: {one_line(exc)}"
            wanted = [(index, mod.nvmlDeviceGetHandleByIndex, index) for index in gpu_indices]
        missing = []
        for label, open_handle, key in wanted:
            try:
                handle = open_handle(key)
            except error as exc:
                missing.append(f"{label} ({one_line(exc)})")
                continue
            index = key if isinstance(key, int) else _try(error, mod.nvmlDeviceGetIndex, handle)
            self._handles.append((index, handle))
            self.gpus.append(_describe_gpu(mod, error, index, handle))
        if not self._handles:
            _shutdown(mod)
            if missing:
                return f"NVML GPU unavailable: {', '.join(missing)}"
            return "NVML reports no GPUs"
        self._nvml = mod
        self._nvml_error = error
        self.driver = _try(error, lambda: _text(mod.nvmlSystemGetDriverVersion()))
        # The GPUs that did open are still sampled, but the status must not claim all is well.
        return f"NVML GPU unavailable: {', '.join(missing)}" if missing else "ok"

    def _close_nvml(self) -> None:
        if self._nvml is not None:
            _shutdown(self._nvml)
        self._nvml = None
        self._handles = []

    # Sampling -------------------------------------------------------------------------------

    def _proc_call(self, fn: Any, *args: Any) -> Any:
        """Calls a psutil.Process method, giving None once the process is gone or hidden."""
        try:
            return fn(*args)
        except self._psutil_error:
            return None

    def _read_cpu_times(self) -> list:
        return list(self._psutil.cpu_times(percpu=True))

    def _sample_cpu(self, now: float) -> tuple[float | None, list | None, float | None]:
        """System, per-core and process CPU percent over the window since the last reading."""
        if now - self._cpu_t < self.min_window_s:
            return None, None, None
        times = self._read_cpu_times()
        per_core = []
        busy_sum = total_sum = 0.0
        for before, after in zip(self._cpu_times, times, strict=False):
            busy0, total0 = _busy_total(before)
            busy1, total1 = _busy_total(after)
            busy, total = busy1 - busy0, total1 - total0
            per_core.append(_percent(busy, total))
            busy_sum += busy
            total_sum += total
        self._cpu_times = times
        self._cpu_t = now
        proc_cpu = None
        if self._proc is not None:
            value = self._proc_call(self._proc.cpu_percent, None)
            proc_cpu = None if value is None else round(value, 1)
        return _percent(busy_sum, total_sum), per_core, proc_cpu

    def _sample_gpus(self) -> list[dict]:
        """One reading per sampled GPU, with `pid`'s memory on each where NVML tells it."""
        readings = [self._sample_gpu(index, handle) for index, handle in self._handles]
        if self.pid is None or not readings:
            return readings
        error = self._nvml_error
        lists = [
            _try(error, self._nvml.nvmlDeviceGetComputeRunningProcesses, handle)
            for _, handle in self._handles
        ]
        if all(procs is None for procs in lists):
            return readings  # NVML cannot list processes here: proc_gpu_mem stays None
        # NVML lists host PIDs, so inside a container's PID namespace `pid` is on no list and
        # a 0 would be false. Once it is on one GPU's list the PIDs agree, and its absence from
        # another GPU's list is a true 0.
        listed = any(p.pid == self.pid for procs in lists if procs for p in procs)
        if not listed:
            self._proc_unlisted += 1
            return readings
        self._proc_listed += 1
        for reading, procs in zip(readings, lists, strict=True):
            if procs is not None:
                used = [p.usedGpuMemory for p in procs if p.pid == self.pid]
                # usedGpuMemory is None where NVML cannot tell (e.g. Windows WDDM, MIG).
                reading["proc_gpu_mem"] = None if None in used else int(sum(used))
        return readings

    def _proc_gpu_mem_note(self) -> str | None:
        """Why proc_gpu_mem is null in some samples, or None when it never was for that."""
        if not self._proc_unlisted:
            return None
        if not self._proc_listed:
            return (
                f"process {self.pid} was never in NVML's process list of the sampled GPUs "
                "(inside a container NVML lists host PIDs): its GPU memory is unknown, not 0"
            )
        return (
            f"process {self.pid} was missing from NVML's process list of the sampled GPUs in "
            f"{self._proc_unlisted} of {self._proc_unlisted + self._proc_listed} samples "
            "(e.g. before it opened the GPU): there its GPU memory is null"
        )

    def _sample_gpu(self, index: int | None, handle: Any) -> dict:
        mod, error = self._nvml, self._nvml_error
        util = _try(error, mod.nvmlDeviceGetUtilizationRates, handle)
        memory = _try(error, mod.nvmlDeviceGetMemoryInfo, handle)
        power = _try(error, mod.nvmlDeviceGetPowerUsage, handle)
        return {
            "index": index,
            "sm": None if util is None else util.gpu,
            "mem": None if util is None else util.memory,
            "fb_used": None if memory is None else int(memory.used),
            "fb_total": None if memory is None else int(memory.total),
            "power_w": None if power is None else round(power / 1000.0, 3),
            "temp_c": _try(error, mod.nvmlDeviceGetTemperature, handle, mod.NVML_TEMPERATURE_GPU),
            "sm_clock_mhz": _try(error, mod.nvmlDeviceGetClockInfo, handle, mod.NVML_CLOCK_SM),
            "mem_clock_mhz": _try(error, mod.nvmlDeviceGetClockInfo, handle, mod.NVML_CLOCK_MEM),
            "proc_gpu_mem": None,  # set by _sample_gpus
        }

    def _sample_locked(self) -> dict:
        """Takes, stores and aggregates one sample; the caller holds the lock."""
        now = self._clock()
        cpu, per_core, proc_cpu = self._sample_cpu(now)
        rss = None
        if self._proc is not None:
            memory = self._proc_call(self._proc.memory_info)
            rss = None if memory is None else int(memory.rss)
        t = round(now - self._t0, 3)
        sample = {
            "t": t,
            "phase": self._phase,
            "cpu": cpu,
            "cpu_per_core": per_core,
            "proc_cpu": proc_cpu,
            "proc_rss": rss,
            "gpus": self._sample_gpus(),
        }
        # The first sample's window runs from the start (t = 0).
        window = max(0.0, t - (self._last_t or 0.0))
        self._last_t = t
        self._aggregate(sample, window)
        self._store(sample)
        return sample

    def _aggregate(self, sample: dict, window: float) -> None:
        phase = self._phases.get(sample["phase"])
        if phase is None:
            phase = {"seconds": 0.0, "n": 0, "stats": {}}
            self._phases[sample["phase"]] = phase
        phase["seconds"] += window
        phase["n"] += 1
        stats = phase["stats"]
        for key in _CPU_METRICS:
            stats.setdefault(key, _Stat()).add(sample[key])
        gpus = sample["gpus"]
        if not gpus:
            return
        for key, field in _GPU_METRICS.items():
            stat = stats.setdefault(key, _Stat())
            for gpu in gpus:
                stat.add(gpu[field])
        # A process's GPU memory is summed over GPUs: its footprint, not a per-device figure.
        used = [gpu["proc_gpu_mem"] for gpu in gpus if gpu["proc_gpu_mem"] is not None]
        if used:
            stats.setdefault("proc_gpu_mem", _Stat()).add(sum(used))

    def _store(self, sample: dict) -> None:
        # Halving the stored series keeps it spanning the whole run (unlike a ring buffer,
        # which would forget the early phases) at a bounded size.
        if self._n % self._stride == 0:
            if len(self._samples) >= self._max_samples:
                self._samples = self._samples[::2]
                self._stride *= 2
            if self._n % self._stride == 0:
                self._samples.append(sample)
        self._n += 1

    def _maybe_sample_locked(self) -> None:
        """Samples unless the previous sample is too recent to say anything new."""
        if self._last_t is None or self._clock() - self._t0 - self._last_t >= self.min_window_s:
            self._sample_locked()

    def sample_once(self) -> dict:
        """Takes one sample now and returns it.

        Raises:
            RuntimeError: The sampler was stopped.
        """
        with self._lock:
            if self._closed:
                raise RuntimeError("Sampler is stopped")
            return self._sample_locked()

    def set_interval(self, interval: float) -> None:
        """Samples every ``interval`` seconds from the next tick on (a cell sets it once it
        knows how long its measured fits last, so that they hold enough samples)."""
        if interval <= 0:
            raise ValueError(f"interval must be positive, got {interval}")
        with self._lock:
            self.interval = float(interval)
            self.min_window_s = max(0.01, 0.1 * self.interval)

    def set_phase(self, name: str) -> None:
        """Tags the following samples with `name`; safe to call from any thread."""
        with self._lock:
            if name == self._phase:
                return
            if self._thread is not None and not self._closed:
                self._maybe_sample_locked()
            self._phase = name

    def rename_phase(self, old: str, new: str) -> None:
        """Moves everything sampled so far under ``old`` to ``new`` (merged with what ``new``
        already holds), the current window included: a cell whose first fit turned out to be
        a calibration, too short to keep, keeps it out of the measured fits' figures."""
        with self._lock:
            if self._thread is not None and not self._closed and self._phase == old:
                self._maybe_sample_locked()
            if self._phase == old:
                self._phase = new
            moved = self._phases.pop(old, None)
            if moved is not None:
                into = self._phases.setdefault(new, {"seconds": 0.0, "n": 0, "stats": {}})
                into["seconds"] += moved["seconds"]
                into["n"] += moved["n"]
                for key, stat in moved["stats"].items():
                    into["stats"].setdefault(key, _Stat()).merge(stat)
            for sample in self._samples:
                if sample["phase"] == old:
                    sample["phase"] = new

    @property
    def phase(self) -> str:
        return self._phase

    # Thread ---------------------------------------------------------------------------------

    def _run(self) -> None:
        deadline = time.monotonic()
        while True:
            deadline += self.interval
            delay = deadline - time.monotonic()
            if delay < 0:
                # Fell behind (suspended, overloaded): skip the missed ticks, do not burst.
                deadline = time.monotonic()
                delay = 0.0
            if self._stop_event.wait(delay):
                return
            try:
                self.sample_once()
            # The thread must outlive any one bad sample; the error is kept for the summary.
            except Exception as exc:
                with self._lock:
                    self._errors += 1
                    self._last_error = one_line(exc)

    def start(self) -> Sampler:
        """Takes a first sample now and samples every `interval` in a daemon thread.

        Raises:
            RuntimeError: The sampler was already stopped.
        """
        with self._lock:
            if self._closed:
                raise RuntimeError("Sampler is stopped and cannot be restarted")
            if self._thread is not None:
                return self
            if self._last_t is None:
                self._t0 = self._clock()
                self.started_at = self._wall_clock()
            self._sample_locked()
            self._thread = threading.Thread(target=self._run, name="harness-monitor", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> dict:
        """Stops the thread, takes a final sample, releases NVML and returns `summary()`."""
        with self._lock:
            if self._closed:
                return self._summary_locked()
            thread = self._thread
        self._stop_event.set()
        if thread is not None:
            thread.join()
        with self._lock:
            try:
                self._maybe_sample_locked()
            # A failing last sample must not keep NVML open or lose the summary.
            except Exception as exc:
                self._errors += 1
                self._last_error = one_line(exc)
            self._closed = True
            self._close_nvml()
            return self._summary_locked()

    def __enter__(self) -> Sampler:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # Summary --------------------------------------------------------------------------------

    def summary(self) -> dict:
        """Returns the samples taken so far and per-phase means and peaks (JSON-ready)."""
        with self._lock:
            return self._summary_locked()

    def _summary_locked(self) -> dict:
        phases = {}
        for name, phase in self._phases.items():
            entry: dict = {"seconds": round(phase["seconds"], 3), "n": phase["n"]}
            for key, stat in phase["stats"].items():
                entry[key] = stat.as_dict(integer=key in _BYTE_METRICS)
            phases[name] = entry
        return {
            "interval_s": self.interval,
            "pid": self.pid,
            "started_at": self.started_at,
            "samples": list(self._samples),
            "n_samples": self._n,
            "n_stored": len(self._samples),
            "capped": self._stride > 1,
            "sample_stride": self._stride,
            "gpu_status": self.gpu_status,
            "gpus": [dict(gpu) for gpu in self.gpus],
            "driver": self.driver,
            "proc_gpu_mem_note": self._proc_gpu_mem_note(),
            "errors": self._errors,
            "last_error": self._last_error,
            "phases": phases,
        }
