"""Background utilization sampler in the spirit of `nvidia-smi dmon` and `top`.

A `Sampler` records, every `interval` seconds, system-wide and per-core CPU load, the CPU load
and resident memory of one process, and per-GPU NVML metrics. Every sample is tagged with the
current phase ("fit", "evaluate", ...) so that `summary()` can report per-phase means and peaks.

NVML is optional: without a driver (or without `pynvml`) GPU sampling is switched off and the
reason is kept in `gpu_status`; CPU sampling goes on regardless. A worker samples only the GPU it
trains on, found by UUID from its CUDA_VISIBLE_DEVICES entry (`identify_cell_gpu`). A process
NVML does not list (in containers NVML lists host PIDs) has GPU memory null, never a false 0.

Modules: nvml.py finds GPUs through NVML (presence, inventory, the cell's GPU); sampler.py is
the sampler thread; gpus.py reads the sampled GPUs; stats.py aggregates each phase.
"""

from .nvml import (
    NVIDIA_DEVICE_NODES,
    gpu_inventory,
    gpu_presence,
    identify_cell_gpu,
    identify_cell_gpus,
    nvml_status,
    resolve_visible_gpu,
)
from .sampler import DEFAULT_PHASE, MAX_SAMPLES, Sampler

__all__ = [
    "DEFAULT_PHASE",
    "MAX_SAMPLES",
    "NVIDIA_DEVICE_NODES",
    "Sampler",
    "gpu_inventory",
    "gpu_presence",
    "identify_cell_gpu",
    "identify_cell_gpus",
    "nvml_status",
    "resolve_visible_gpu",
]
