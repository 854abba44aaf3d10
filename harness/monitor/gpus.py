"""The GPUs a `Sampler` reads: NVML opened once with a handle per GPU, one reading of each
per sample, and the sampled process's memory on each where NVML lists it (a process NVML does
not list, as in containers where it lists host PIDs, has GPU memory null, never a false 0)."""

from __future__ import annotations

from typing import Any

from ..errors import one_line
from .nvml import decode, describe_gpu, nvml_status, or_none, shutdown


class SampledGpus:
    """NVML's handles of the sampled GPUs, what identifies each, and the driver version."""

    def __init__(self) -> None:
        self._nvml: Any = None
        self._error: Any = ()
        self._handles: list[tuple[int | None, Any]] = []
        self.gpus: list[dict] = []
        self.driver: str | None = None
        # Samples whose GPU process lists did / did not name the process (see `read`).
        self._listed = 0
        self._unlisted = 0

    def open(self, nvml: Any, gpu_indices: list[int] | None, gpu_uuids: list[str] | None) -> str:
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
                    shutdown(mod)
                    return f"NVML device count failed: {one_line(exc)}"
            wanted = [(index, mod.nvmlDeviceGetHandleByIndex, index) for index in gpu_indices]
        missing = []
        for label, open_handle, key in wanted:
            try:
                handle = open_handle(key)
            except error as exc:
                missing.append(f"{label} ({one_line(exc)})")
                continue
            index = key if isinstance(key, int) else or_none(error, mod.nvmlDeviceGetIndex, handle)
            self._handles.append((index, handle))
            self.gpus.append(describe_gpu(mod, error, index, handle))
        if not self._handles:
            shutdown(mod)
            if missing:
                return f"NVML GPU unavailable: {', '.join(missing)}"
            return "NVML reports no GPUs"
        self._nvml = mod
        self._error = error
        self.driver = or_none(error, lambda: decode(mod.nvmlSystemGetDriverVersion()))
        # The GPUs that did open are still sampled, but the status must not claim all is well.
        return f"NVML GPU unavailable: {', '.join(missing)}" if missing else "ok"

    def close(self) -> None:
        if self._nvml is not None:
            shutdown(self._nvml)
        self._nvml = None
        self._handles = []

    def read(self, pid: int | None) -> list[dict]:
        """One reading per sampled GPU, with `pid`'s memory on each where NVML tells it."""
        readings = [self._read_one(index, handle) for index, handle in self._handles]
        if pid is None or not readings:
            return readings
        lists = [
            or_none(self._error, self._nvml.nvmlDeviceGetComputeRunningProcesses, handle)
            for _, handle in self._handles
        ]
        if all(procs is None for procs in lists):
            return readings  # NVML cannot list processes here: proc_gpu_mem stays None
        # NVML lists host PIDs, so inside a container's PID namespace `pid` is on no list and
        # a 0 would be false. Once it is on one GPU's list the PIDs agree, and its absence from
        # another GPU's list is a true 0.
        listed = any(p.pid == pid for procs in lists if procs for p in procs)
        if not listed:
            self._unlisted += 1
            return readings
        self._listed += 1
        for reading, procs in zip(readings, lists, strict=True):
            if procs is not None:
                used = [p.usedGpuMemory for p in procs if p.pid == pid]
                # usedGpuMemory is None where NVML cannot tell (e.g. Windows WDDM, MIG).
                reading["proc_gpu_mem"] = None if None in used else int(sum(used))
        return readings

    def proc_gpu_mem_note(self, pid: int | None) -> str | None:
        """Why proc_gpu_mem is null in some samples, or None when it never was for that."""
        if not self._unlisted:
            return None
        if not self._listed:
            return (
                f"process {pid} was never in NVML's process list of the sampled GPUs "
                "(inside a container NVML lists host PIDs): its GPU memory is unknown, not 0"
            )
        return (
            f"process {pid} was missing from NVML's process list of the sampled GPUs in "
            f"{self._unlisted} of {self._unlisted + self._listed} samples "
            "(e.g. before it opened the GPU): there its GPU memory is null"
        )

    def _read_one(self, index: int | None, handle: Any) -> dict:
        mod, error = self._nvml, self._error
        util = or_none(error, mod.nvmlDeviceGetUtilizationRates, handle)
        memory = or_none(error, mod.nvmlDeviceGetMemoryInfo, handle)
        power = or_none(error, mod.nvmlDeviceGetPowerUsage, handle)
        return {
            "index": index,
            "sm": None if util is None else util.gpu,
            "mem": None if util is None else util.memory,
            "fb_used": None if memory is None else int(memory.used),
            "fb_total": None if memory is None else int(memory.total),
            "power_w": None if power is None else round(power / 1000.0, 3),
            "temp_c": or_none(
                error, mod.nvmlDeviceGetTemperature, handle, mod.NVML_TEMPERATURE_GPU
            ),
            "sm_clock_mhz": or_none(error, mod.nvmlDeviceGetClockInfo, handle, mod.NVML_CLOCK_SM),
            "mem_clock_mhz": or_none(error, mod.nvmlDeviceGetClockInfo, handle, mod.NVML_CLOCK_MEM),
            "proc_gpu_mem": None,  # set by `read`
        }
