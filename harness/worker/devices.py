"""The worker's half of devices: what the (imported) backend sees, where variables live, and
the settings it runs with; each backend's own code is in backends/<name>.py.

``python -m harness.worker.devices BACKEND`` prints ``describe(BACKEND)`` as one JSON line,
for `harness env`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from ..backends import backend_versions
from ..devices import DeviceUnavailable, GpuUnusable, parse, visible_entries
from . import backends
from .backends import SettingUnsupported as SettingUnsupported  # raised by apply_settings


def gpu_probe(backend: str) -> tuple[list[str], str]:
    """The GPUs the (already imported) backend can use, and, where there are none, why not in
    the backend's own words (its exception, its build), on one line."""
    return backends.get(backend).gpu_probe()


def require(
    device: str,
    backend: str,
    *,
    probe: Callable[[str], tuple[list[str], str]] | None = None,
    presence: Callable[[], tuple[bool, str]] | None = None,
    environ: Mapping[str, str] | None = None,
) -> list[str]:
    """Checks a GPU cell's backend can use a GPU; returns the GPUs it sees.

    Args:
        device: The cell's device.
        backend: The backend keras runs (already imported).
        probe: What the backend sees (`gpu_probe`; tests pass a fake).
        presence: Whether the machine has an NVIDIA GPU (`monitor.gpu_presence`).
        environ: The worker's environment (os.environ).

    Raises:
        DeviceUnavailable: A GPU was asked for and there is none to use: the machine has no
            NVIDIA GPU, or CUDA_VISIBLE_DEVICES hides every one (the cell is skipped).
        GpuUnusable: A GPU is there but the backend cannot use it (the cell fails, with the
            backend's own error).
    """
    kind, _ = parse(device)
    if kind == "cpu":
        return []
    gpus, why = (probe or gpu_probe)(backend)
    if gpus:
        return gpus
    environ = os.environ if environ is None else environ
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    if visible_entries(visible) == []:
        raise DeviceUnavailable(
            f"{device} requested but CUDA_VISIBLE_DEVICES={visible!r} hides every GPU"
        )
    if presence is None:
        from .. import monitor

        presence = monitor.gpu_presence
    present, what = presence()
    if not present:
        raise DeviceUnavailable(f"{device} requested but this machine has no NVIDIA GPU ({what})")
    raise GpuUnusable(
        f"{device} requested and {what}, but {backend} cannot use it: {why} "
        f"(CUDA_VISIBLE_DEVICES={visible!r})"
    )


def variable_device(variable: Any, backend: str) -> str:
    """Where a Keras variable's storage really lives, normalised to "cpu" / "gpu:N"."""
    return backends.get(backend).variable_device(variable.value)


def matches(requested: str, actual: str) -> bool:
    """Whether the variables live where asked (gpu:N appears as gpu:0 behind the mask)."""
    kind, _ = parse(requested)
    return actual == "cpu" if kind == "cpu" else actual.startswith("gpu")


def describe(backend: str) -> dict[str, Any]:
    """What the (freshly imported) backend reports: version, devices, CUDA where it knows it."""
    info: dict[str, Any] = {"backend": backend, "versions": backend_versions(backend)}
    info.update(backends.get(backend).describe())
    return info


def apply_settings(backend: str, *, threads: int | None, tf32: bool | None) -> None:
    """Makes the backend run with the scenario's thread count and TF32 choice, the same under
    every backend, before anything runs; None leaves the backend's own default.

    Raises:
        SettingUnsupported: the backend has no such setting, or it is too late to change it.
    """
    backends.get(backend).apply_settings(threads=threads, tf32=tf32)


def what_ran(backend: str, model: Any) -> dict[str, Any]:
    """The program this backend really runs for a compiled model, beyond what the scenario
    asked: whether XLA compiles the steps (Keras resolves jit_compile="auto" per backend), the
    float32 matmul precision (TF32 is on by default under tensorflow and jax on Ampere and
    later GPUs, off under torch), the dtype policy, and the CPU thread pools.

    A value the backend does not expose is None, never guessed.
    """
    import keras

    out: dict[str, Any] = {
        "jit_compile": getattr(model, "jit_compile", None),
        "dtype_policy": keras.config.dtype_policy().name,
    }
    out.update(backends.get(backend).what_ran())
    return out


if (
    __name__ == "__main__"
):  # python -m harness.worker.devices BACKEND: one JSON line, for `harness env`
    import json
    import sys

    from ..lifeline import tie_to_parent

    tie_to_parent()  # no probe outlives the `harness env` that started it
    name = sys.argv[1]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    print(json.dumps(describe(name)))
