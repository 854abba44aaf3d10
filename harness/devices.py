"""Choosing and verifying the device a cell runs on, per backend.

The device is fixed through the environment *before* keras is imported (``device_env``), and
checked *after* the model is built (``variable_device``): the harness records where the
variables really live instead of trusting what it asked for. This is one of the few places
where backend-specific code is allowed.
"""

from __future__ import annotations

import importlib.metadata
from typing import Any


class DeviceUnavailable(RuntimeError):
    """The requested device is not visible to the backend (the cell is skipped)."""


def parse(device: str) -> tuple[str, int | None]:
    """``"cpu"`` -> ("cpu", None); ``"gpu"`` -> ("gpu", 0); ``"gpu:2"`` -> ("gpu", 2)."""
    if device == "cpu":
        return "cpu", None
    if device == "gpu":
        return "gpu", 0
    kind, _, index = device.partition(":")
    return kind, int(index)


def device_env(device: str, backend: str) -> dict[str, str]:
    """Environment variables that pin a worker to ``device`` under ``backend``.

    CUDA_VISIBLE_DEVICES hides every other GPU from all three frameworks (so gpu:N is the
    process's only GPU and appears there as index 0); JAX_PLATFORMS keeps JAX from probing
    for accelerators when the cell is a CPU cell. A GPU cell leaves JAX free to choose: where it
    falls back to the CPU, ``require`` notices and the cell is skipped, never run on the CPU.
    """
    kind, index = parse(device)
    env = {"KERAS_BACKEND": backend}
    if kind == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
        if backend == "jax":
            env["JAX_PLATFORMS"] = "cpu"
    else:
        env["CUDA_VISIBLE_DEVICES"] = str(index)
    if backend == "tensorflow":
        # TensorFlow grabs all GPU memory by default; growth keeps the memory column honest.
        env["TF_FORCE_GPU_ALLOW_GROWTH"] = "true"
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def visible_accelerators(backend: str) -> list[str]:
    """Names of the GPUs the (already imported) backend can see."""
    if backend == "tensorflow":
        import tensorflow as tf

        return [d.name for d in tf.config.list_logical_devices("GPU")]
    if backend == "jax":
        import jax

        try:
            return [str(d) for d in jax.devices() if d.platform == "gpu"]
        except Exception:  # no usable CUDA plugin or driver: jax raises, not always RuntimeError
            return []
    if backend == "torch":
        import torch

        if not torch.cuda.is_available():
            return []
        return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    raise ValueError(backend)


def require(device: str, backend: str) -> list[str]:
    """Checks a GPU cell can see a GPU; returns the visible GPU names.

    Raises:
        DeviceUnavailable: a GPU was asked for and the backend sees none.
    """
    kind, index = parse(device)
    if kind == "cpu":
        return []
    gpus = visible_accelerators(backend)
    if not gpus:
        raise DeviceUnavailable(
            f"{device} requested but {backend} sees no GPU (CUDA_VISIBLE_DEVICES={index}; "
            f"is a GPU build of {backend} installed and an NVIDIA driver present?)"
        )
    return gpus


def variable_device(variable: Any, backend: str) -> str:
    """Where a Keras variable's storage really lives, normalised to "cpu" / "gpu:N"."""
    value = variable.value
    if backend == "tensorflow":
        name = value.device  # e.g. /job:localhost/replica:0/task:0/device:GPU:0
        tail = name.rsplit("device:", 1)[-1].lower()
        return tail.replace("cpu:0", "cpu") if tail else name
    if backend == "jax":
        (dev,) = value.devices()
        return "cpu" if dev.platform == "cpu" else f"gpu:{dev.id}"
    if backend == "torch":
        dev = value.device
        return "cpu" if dev.type == "cpu" else f"gpu:{dev.index or 0}"
    raise ValueError(backend)


def matches(requested: str, actual: str) -> bool:
    """Whether the variables live where asked (gpu:N appears as gpu:0 behind the mask)."""
    kind, _ = parse(requested)
    return actual == "cpu" if kind == "cpu" else actual.startswith("gpu")


DISTRIBUTIONS = {
    "tensorflow": ("tensorflow", "tensorflow-cpu", "tensorflow-gpu"),
    "jax": ("jax",),
    "torch": ("torch",),
}


def installed_version(backend: str) -> str | None:
    """The installed version of a backend's package, read without importing it."""
    for dist in DISTRIBUTIONS[backend]:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def installed_backends() -> list[str]:
    return [b for b in DISTRIBUTIONS if installed_version(b) is not None]


def backend_versions(backend: str) -> dict[str, str | None]:
    """Versions that identify a backend install (for the environment fingerprint)."""
    names = {"tensorflow": ["tensorflow", "tensorflow-cpu"], "jax": ["jax", "jaxlib"]}
    out: dict[str, str | None] = {}
    for dist in names.get(backend, [backend]):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def describe(backend: str) -> dict[str, Any]:
    """What the (freshly imported) backend reports: version, devices, CUDA where it knows it."""
    info: dict[str, Any] = {"backend": backend, "versions": backend_versions(backend)}
    if backend == "tensorflow":
        import tensorflow as tf

        info["devices"] = [d.name for d in tf.config.list_logical_devices()]
        build = tf.sysconfig.get_build_info()
        info["cuda"] = build.get("cuda_version")
        info["cudnn"] = build.get("cudnn_version")
    elif backend == "jax":
        import jax

        try:
            info["devices"] = [f"{d.platform}:{d.id} {d.device_kind}" for d in jax.devices()]
        except Exception as exc:
            info["devices"] = []
            info["error"] = " ".join(str(exc).split())
        info["default_backend"] = jax.default_backend()
    elif backend == "torch":
        import torch

        info["devices"] = ["cpu"] + [
            f"cuda:{i} {torch.cuda.get_device_name(i)}" for i in range(torch.cuda.device_count())
        ]
        info["cuda"] = torch.version.cuda
        info["cudnn"] = (
            torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
        )
        info["threads"] = torch.get_num_threads()
    return info


if __name__ == "__main__":  # python -m harness.devices BACKEND: one JSON line, for `harness env`
    import json
    import os
    import sys

    name = sys.argv[1]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    print(json.dumps(describe(name)))
