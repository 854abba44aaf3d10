"""Data parallelism on the engines Keras itself uses, never on a home-made one.

- jax: ``keras.distribution.DataParallel`` over a 1-D mesh of the first N devices of
  ``keras.distribution.list_devices()``; with several processes, ``keras.distribution.
  initialize`` first (``jax.distributed``, gloo collectives on CPU), each process feeding its
  own share of the data (``auto_shard_dataset = False``).
- tensorflow: ``tf.distribute.MirroredStrategy`` over N devices, the model built and compiled
  in its scope (the Keras guide "Multi-GPU distributed training with TensorFlow"); on CPU,
  N logical CPU devices.
- any other backend: ``keras.distribution`` if this keras supports it there (torch from keras
  3.16), else the cell is unsupported with Keras' own reason.

This module holds what the engines share (the one-device case, Keras' DataParallel, the job's
environment); each backend's engine is its module's ``data_parallel`` (backends/<name>.py).
Imported in the worker only.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from ..errors import one_line
from . import backends

# What keras.distribution.initialize reads when it is given no arguments (set by the runner
# for a local multi-process cell, by `harness worker-join` or by hand on other hosts).
ENV_ADDRESSES = "KERAS_DISTRIBUTION_JOB_ADDRESSES"
ENV_PROCESSES = "KERAS_DISTRIBUTION_NUM_PROCESSES"
ENV_PROCESS_ID = "KERAS_DISTRIBUTION_PROCESS_ID"


class Unsupported(RuntimeError):
    """This backend (or this keras) cannot run the cell data parallel: the reason."""


class Single:
    """One device, one process: today's cell, unchanged."""

    devices: int = 1
    processes: int = 1
    process_id: int = 0

    def scope(self):
        return contextlib.nullcontext()

    def describe(self) -> dict[str, Any] | None:
        return None

    def replicas(self, variable: Any) -> list[str] | None:
        return None

    def agree(self, value: float) -> float:
        """Process 0's ``value`` in every process of the job (a decision they must share)."""
        return value


class Engine(Single):
    """Several devices: what the result records of the engine."""

    engine = ""

    def __init__(self, names: list[str], processes: int, process_id: int):
        self.names = names
        self.devices = len(names)
        self.processes = processes
        self.process_id = process_id

    def describe(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "devices": self.devices,
            "device_list": self.names,
            "processes": self.processes,
            "process_id": self.process_id,
        }


class KerasDataParallel(Engine):
    """``keras.distribution.DataParallel``; where a variable's replicas live, and how the
    processes agree, depend on the backend's arrays (backends/jax.py)."""

    engine = "keras.distribution.DataParallel"

    def __init__(self, keras, names: list[str], processes: int, process_id: int):
        super().__init__(names, processes, process_id)
        mesh = keras.distribution.DeviceMesh((len(names),), ["batch"], names)
        # Several processes: each feeds its own share of the data (Keras' auto-sharding
        # takes tf.data only).
        self.distribution = keras.distribution.DataParallel(
            device_mesh=mesh, auto_shard_dataset=processes == 1
        )
        self._keras = keras

    def scope(self):
        # Set globally, not only for the build: fit reads it, and clear_session clears it.
        self._keras.distribution.set_distribution(self.distribution)
        return contextlib.nullcontext()

    def replicas(self, variable: Any) -> list[str]:
        raise NotImplementedError(
            f"where a variable's replicas live under {self._keras.backend.backend()}'s "
            "keras.distribution is not known to the harness"
        )


class Missing(Unsupported):
    """Fewer devices are there than the cell asks for (the cell is skipped)."""


def start(backend: str, kind: str, devices: int, processes: int, identity: str = "") -> Single:
    """Prepares the backend for a cell on ``devices`` devices in ``processes`` processes.

    Called after keras is imported and before anything runs: TensorFlow's logical devices and
    jax.distributed must be set up before the runtime starts. The engine is the backend's
    (its module's ``data_parallel``).

    Args:
        backend: the backend keras runs.
        kind: "cpu" or "gpu".
        devices: data-parallel devices in all, over every process.
        processes: processes of the job (this one's id comes from the environment).
        identity: what this process runs (scenario, cell, backend and settings): every
            process of a job must run the same, checked once they have joined.

    Raises:
        Unsupported: this backend, or this keras, cannot run it.
        Missing: fewer devices are there than asked for.
    """
    if devices == 1 and processes == 1:
        return Single()
    return backends.get(backend).data_parallel(kind, devices, processes, identity)


def check_job(processes: int) -> None:
    """Checks the environment describes a job of ``processes`` processes (before joining it)."""
    missing = [k for k in (ENV_ADDRESSES, ENV_PROCESSES, ENV_PROCESS_ID) if k not in os.environ]
    if missing:
        raise RuntimeError(f"a multi-process cell needs {', '.join(missing)} in the environment")
    if int(os.environ[ENV_PROCESSES]) != processes:
        raise RuntimeError(
            f"{ENV_PROCESSES}={os.environ[ENV_PROCESSES]} but the cell asks for {processes}"
        )


def keras_distribution(
    engine: type[KerasDataParallel],
    backend: str,
    kind: str,
    devices: int,
    processes: int,
    process_id: int,
) -> KerasDataParallel:
    """Keras' DataParallel over the first ``devices`` of keras.distribution's ``kind`` devices.

    Raises:
        Unsupported: this keras has no keras.distribution support for the backend.
        Missing: fewer devices are there than asked for.
    """
    import keras

    try:
        found = keras.distribution.list_devices(kind)
    except Exception as exc:  # torch under keras 3.15.1: distribution_lib is None
        raise Unsupported(
            f"keras {keras.__version__} has no keras.distribution support for {backend} "
            f"(keras.distribution.list_devices: {one_line(exc, typed=True)})"
        ) from None
    if len(found) < devices:
        raise Missing(
            f"data_parallel = {devices} but {backend} sees {len(found)} {kind} device(s): "
            f"{', '.join(found)}"
        )
    return engine(keras, found[:devices], processes, process_id)
