"""One module per backend, of the same shape, as Keras keeps ``keras/src/backend/<name>/``.

``get(name)`` imports and returns the running backend's module, once; the others are never
imported. Each module imports its framework inside its functions only (they run in the worker
process, after keras chose the backend), and defines:

- ``gpu_probe()``: the GPUs the backend can use, or why none, in its own words;
- ``describe()``: what the backend reports about itself (devices, CUDA) for `harness env`;
- ``preallocates(environ)``: whether it reserves most of a GPU's memory up front (None where
  it has no such habit), which decides what GPU memory readings mean;
- ``variable_device(value)``: where a variable's storage lives, as "cpu" / "gpu:N";
- ``apply_settings(threads, tf32)``: the scenario's thread pools and TF32 choice, or
  ``SettingUnsupported``;
- ``what_ran()``: the matmul precision and thread pools the backend really used;
- ``matmul(stack, m, k, n, dtype)``: a compiled batched product and its sync, for the probe;
- ``data_parallel(kind, devices, processes, identity)``: the data-parallel engine (parallel.py).

tensorflow.py, jax.py and torch.py are the backends of harness/backends.py's list; a new
backend adds a module here with the same functions (see docs/development.md).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from ...backends import NAMES  # the one list of backends; each has a module here

# What every backend's module defines (the list above; tests/test_worker_backends.py checks).
FUNCTIONS = (
    "gpu_probe",
    "describe",
    "preallocates",
    "variable_device",
    "apply_settings",
    "what_ran",
    "matmul",
    "data_parallel",
)


class SettingUnsupported(RuntimeError):
    """The backend cannot honour a scenario setting (the cell is unsupported, with why)."""


def get(name: str) -> ModuleType:
    """The worker's module for backend ``name`` (imported on first use).

    Raises:
        ValueError: no such backend.
    """
    if name not in NAMES:
        raise ValueError(name)
    return importlib.import_module(f"{__name__}.{name}")
