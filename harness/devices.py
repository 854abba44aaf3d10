"""Choosing the device a cell runs on: device strings and the environment that pins them.

The device is fixed through the environment *before* keras is imported (``device_env``), and
checked in the worker *after* the model is built (``harness.worker.devices``): the harness
records where the variables really live instead of trusting what it asked for.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any


class DeviceUnavailable(RuntimeError):
    """The requested device is not there (the cell is skipped, with this as its reason): the
    runner was given no such GPU, or the machine has no NVIDIA GPU at all."""


class GpuUnusable(RuntimeError):
    """A GPU is there but the backend cannot use it: a broken CUDA install, a CPU-only build,
    a CUDA_VISIBLE_DEVICES entry that names no GPU. The cell fails, with the backend's own
    error: on a GPU runner whose CUDA stack broke, nothing may pass by being skipped."""


def parse(device: str) -> tuple[str, int | None]:
    """``"cpu"`` -> ("cpu", None); ``"gpu"`` -> ("gpu", 0); ``"gpu:2"`` -> ("gpu", 2)."""
    if device == "cpu":
        return "cpu", None
    if device == "gpu":
        return "gpu", 0
    kind, _, index = device.partition(":")
    return kind, int(index)


# Default of `device_env(visible=...)`: read CUDA_VISIBLE_DEVICES from this process at call time.
_INHERIT: Any = object()
# Entries of CUDA_VISIBLE_DEVICES that name a device by UUID rather than by index.
_UUID_PREFIXES = ("GPU-", "MIG-")


def visible_entries(visible: str | None) -> list[str] | None:
    """The devices a CUDA_VISIBLE_DEVICES value gives, in CUDA's order.

    CUDA reads the list up to its first invalid entry (so "-1" or "" hides everything, and
    "0,-1,1" gives only device 0); the same cut is made here.

    Args:
        visible: The variable's value; None when it is not set.

    Returns:
        None when the variable is not set (every GPU is visible), else the entries (maybe none).
    """
    if visible is None:
        return None
    entries = []
    for entry in (part.strip() for part in visible.split(",")):
        if not (entry.isdigit() or entry.startswith(_UUID_PREFIXES)):
            break
        entries.append(entry)
    return entries


def select_gpu(index: int, visible: str | None, device: str = "") -> str:
    """The CUDA_VISIBLE_DEVICES entry of the `index`-th GPU the runner was given.

    Args:
        index: N of gpu:N, counted within the GPUs the runner was given.
        visible: The runner's CUDA_VISIBLE_DEVICES; None when it is not set (all GPUs).
        device: The requested device, for the error message.

    Raises:
        DeviceUnavailable: The runner was given fewer than `index + 1` GPUs.
    """
    entries = visible_entries(visible)
    if entries is None:
        return str(index)
    if index < len(entries):
        return entries[index]
    given = f"{len(entries)} GPU{'' if len(entries) == 1 else 's'}" if entries else "no GPU"
    raise DeviceUnavailable(
        f"{device or f'gpu:{index}'} requested but the runner was given {given} "
        f"(CUDA_VISIBLE_DEVICES={visible!r}; gpu:N counts from 0 within them)"
    )


def device_env(
    device: str,
    backend: str,
    *,
    visible: str | None = _INHERIT,
    jax_preallocate: bool = False,
    devices: int = 1,
    process: int = 0,
) -> dict[str, str]:
    """Environment variables that pin a worker to ``device`` under ``backend``.

    gpu:N is the N-th GPU the runner was given: within its own CUDA_VISIBLE_DEVICES when that
    is set (a shared CI runner's share), never outside it. The worker's CUDA_VISIBLE_DEVICES
    holds that one entry, hiding every other GPU from all three frameworks (the GPU appears
    there as index 0), and CUDA_DEVICE_ORDER=PCI_BUS_ID (unless the runner set an order of its
    own, which its indices then refer to) makes CUDA number GPUs as NVML and
    nvidia-smi do, so an index entry names the same GPU for the backend and the sampler.
    JAX_PLATFORMS keeps JAX from probing for accelerators when the cell is a CPU cell. A GPU
    cell leaves JAX free to choose: where it falls back to the CPU, ``require`` notices, and
    the cell never runs on the CPU: it is skipped on a machine without an NVIDIA GPU, and
    fails with JAX's error where one is there. A TensorFlow GPU cell logs what TensorFlow
    keeps below warnings (which CUDA libraries it could not load), for the runner to quote.

    Args:
        device: "cpu", "gpu" or "gpu:N".
        backend: "tensorflow", "jax" or "torch".
        visible: The runner's CUDA_VISIBLE_DEVICES (None: not set); by default this
            process's.
        jax_preallocate: Let JAX reserve 75% of GPU memory at start (its default); off, the
            memory readings show what the model uses.
        devices: Devices this process trains on, data parallel. On GPU ("gpu" only) they are
            GPUs ``process * devices`` to ``(process + 1) * devices - 1`` of those the runner
            was given; on CPU, JAX is told to simulate that many (XLA_FLAGS; TensorFlow's
            logical CPUs are made in the worker, as they cannot be asked for from outside).
        process: This process's index in a multi-process cell on one machine.

    Raises:
        DeviceUnavailable: gpu:N is beyond the GPUs the runner was given (one line).
    """
    if visible is _INHERIT:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    kind, index = parse(device)
    # An order the runner's operator chose is theirs (their CUDA_VISIBLE_DEVICES indices mean
    # GPUs in that order); unset, CUDA would put the fastest GPU first, unlike nvidia-smi.
    order = os.environ.get("CUDA_DEVICE_ORDER") or "PCI_BUS_ID"
    env = {"KERAS_BACKEND": backend, "CUDA_DEVICE_ORDER": order}
    if kind == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
        if backend == "jax":
            env["JAX_PLATFORMS"] = "cpu"
            flags = os.environ.get("XLA_FLAGS", "")
            if devices > 1 or "xla_force_host_platform_device_count" in flags:
                # after any flags of the runner's own: the last one counts
                count = f"--xla_force_host_platform_device_count={devices}"
                env["XLA_FLAGS"] = f"{flags} {count}".strip()
    elif devices > 1 or process:
        first = process * devices
        env["CUDA_VISIBLE_DEVICES"] = ",".join(
            select_gpu(i, visible, f"{device} (data parallel: GPU {i})")
            for i in range(first, first + devices)
        )
    else:
        env["CUDA_VISIBLE_DEVICES"] = select_gpu(index or 0, visible, device)
    if backend == "jax":
        # Set either way: a value inherited from the runner must not override the cell's.
        env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "true" if jax_preallocate else "false"
    if backend == "tensorflow" or kind == "gpu":
        # TensorFlow grabs all GPU memory by default; growth keeps the memory column honest.
        # In a GPU cell of any backend: tf.data (the tutorial's pipeline, or a user's dataset)
        # starts TensorFlow's GPU runtime beside jax or torch too.
        env["TF_FORCE_GPU_ALLOW_GROWTH"] = "true"
    if backend == "tensorflow" and kind == "gpu":
        # "Could not find cuda drivers" is an info line, the libraries it could not load are
        # dso_loader's verbose lines: the log of a GPU cell keeps them, and where the cell
        # fails in its device phase the runner quotes them (collect.LIBRARY_LINES).
        env["TF_CPP_MIN_LOG_LEVEL"] = "0"
        env["TF_CPP_VMODULE"] = "dso_loader=1"
    elif backend == "tensorflow":
        env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    return env


def jax_preallocates(environ: Mapping[str, str]) -> bool:
    """Whether JAX preallocates GPU memory under ``environ``, read as jaxlib reads it."""
    return environ.get("XLA_PYTHON_CLIENT_PREALLOCATE", "") not in ("false", "False", "0")
