"""The sampler thread: every `interval` seconds, system-wide and per-core CPU load, the CPU
load and resident memory of one process, and a reading of each sampled GPU (gpus.py), each
sample tagged with the current phase and counted in its phase's means and peaks (stats.py);
the stored series is halved whenever it reaches its cap, so it spans the whole run.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from ..errors import one_line
from .gpus import SampledGpus
from .stats import Phases

DEFAULT_PHASE = "init"
MAX_SAMPLES = 20000


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
        self._phases = Phases()

        self._gpus = SampledGpus()
        if gpus_off is not None:
            self.gpu_status = f"GPU sampling off: {gpus_off}"
        else:
            self.gpu_status = self._gpus.open(nvml, gpu_indices, gpu_uuids)

        # Prime the CPU counters now, so the first sample's window starts here.
        self._t0 = clock()
        self.started_at = wall_clock()
        self._cpu_t = self._t0
        self._cpu_times = self._read_cpu_times()
        if self._proc is not None:
            self._proc_call(self._proc.cpu_percent, None)

    @property
    def gpus(self) -> list[dict]:
        """What identifies each sampled GPU: NVML index, name, UUID and memory size."""
        return self._gpus.gpus

    @property
    def driver(self) -> str | None:
        """The NVIDIA driver's version, where a GPU is sampled."""
        return self._gpus.driver

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
            "gpus": self._gpus.read(self.pid),
        }
        # The first sample's window runs from the start (t = 0).
        window = max(0.0, t - (self._last_t or 0.0))
        self._last_t = t
        self._phases.add(sample, window)
        self._store(sample)
        return sample

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
            self._phases.rename(old, new)
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
            self._gpus.close()
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
            "proc_gpu_mem_note": self._gpus.proc_gpu_mem_note(self.pid),
            "errors": self._errors,
            "last_error": self._last_error,
            "phases": self._phases.as_dict(),
        }
