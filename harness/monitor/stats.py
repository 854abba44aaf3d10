"""Aggregation per phase: the seconds and samples of each phase and the running mean and peak
of every metric, so that phase summaries survive the cap on stored samples."""

from __future__ import annotations

# Metrics aggregated per phase. GPU ones are aggregated over every sampled GPU.
CPU_METRICS = ("cpu", "proc_cpu", "proc_rss")
GPU_METRICS = {
    "gpu_sm": "sm",
    "gpu_mem": "mem",
    "gpu_fb_used": "fb_used",
    "gpu_power_w": "power_w",
}
# Byte counts are summarised as integers, everything else to two decimals.
BYTE_METRICS = frozenset({"proc_rss", "gpu_fb_used", "proc_gpu_mem"})


class Stat:
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

    def merge(self, other: Stat) -> None:
        self.total += other.total
        self.count += other.count
        if other.peak is not None and (self.peak is None or other.peak > self.peak):
            self.peak = other.peak

    def as_dict(self, integer: bool) -> dict:
        if not self.count:
            return {"mean": None, "peak": None}
        mean = self.total / self.count
        return {"mean": int(round(mean)) if integer else round(mean, 2), "peak": self.peak}


class Phases:
    """Per phase, in the order phases first came: its seconds, its number of samples and a
    `Stat` of every metric (GPU metrics over every sampled GPU; a process's GPU memory summed
    over the GPUs, its footprint)."""

    def __init__(self) -> None:
        self._phases: dict[str, dict] = {}

    def _phase(self, name: str) -> dict:
        return self._phases.setdefault(name, {"seconds": 0.0, "n": 0, "stats": {}})

    def add(self, sample: dict, window: float) -> None:
        """Counts one sample, whose window lasted ``window`` seconds, in its phase."""
        phase = self._phase(sample["phase"])
        phase["seconds"] += window
        phase["n"] += 1
        stats = phase["stats"]
        for key in CPU_METRICS:
            stats.setdefault(key, Stat()).add(sample[key])
        gpus = sample["gpus"]
        if not gpus:
            return
        for key, field in GPU_METRICS.items():
            stat = stats.setdefault(key, Stat())
            for gpu in gpus:
                stat.add(gpu[field])
        # A process's GPU memory is summed over GPUs: its footprint, not a per-device figure.
        used = [gpu["proc_gpu_mem"] for gpu in gpus if gpu["proc_gpu_mem"] is not None]
        if used:
            stats.setdefault("proc_gpu_mem", Stat()).add(sum(used))

    def rename(self, old: str, new: str) -> None:
        """Moves what phase ``old`` holds into phase ``new`` (merged with what it holds)."""
        moved = self._phases.pop(old, None)
        if moved is None:
            return
        into = self._phase(new)
        into["seconds"] += moved["seconds"]
        into["n"] += moved["n"]
        for key, stat in moved["stats"].items():
            into["stats"].setdefault(key, Stat()).merge(stat)

    def as_dict(self) -> dict:
        """Each phase's seconds, samples, and mean and peak of every metric (JSON-ready)."""
        phases = {}
        for name, phase in self._phases.items():
            entry: dict = {"seconds": round(phase["seconds"], 3), "n": phase["n"]}
            for key, stat in phase["stats"].items():
                entry[key] = stat.as_dict(integer=key in BYTE_METRICS)
            phases[name] = entry
        return phases
