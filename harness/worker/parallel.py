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

One of the few places where backend-specific code is allowed. Imported in the worker only.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from typing import Any

import numpy as np

from ..errors import one_line

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


class _Engine(Single):
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


class KerasDataParallel(_Engine):
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
        value = variable.value
        return sorted(f"{d.platform}:{d.id}" for d in value.sharding.device_set)

    def agree(self, value: float) -> float:
        if self.processes == 1:
            return value
        from jax.experimental import multihost_utils

        return float(multihost_utils.broadcast_one_to_all(np.asarray(value, dtype=np.float32)))


class Mirrored(_Engine):
    engine = "tf.distribute.MirroredStrategy"

    def __init__(self, tf, names: list[str]):
        super().__init__(names, 1, 0)
        self.strategy = tf.distribute.MirroredStrategy(devices=names)

    def scope(self):
        return self.strategy.scope()

    def replicas(self, variable: Any) -> list[str]:
        value = variable.value
        parts = getattr(value, "values", None)
        if parts is None:  # a plain variable: one copy, where it lives
            return [_tf_device(value.device)]
        return [_tf_device(v.device) for v in parts]


def _tf_device(name: str) -> str:
    """``/job:localhost/replica:0/task:0/device:CPU:1`` -> ``cpu:1``."""
    return name.rsplit("device:", 1)[-1].lower()


class Missing(Unsupported):
    """Fewer devices are there than the cell asks for (the cell is skipped)."""


def start(backend: str, kind: str, devices: int, processes: int, identity: str = "") -> Single:
    """Prepares the backend for a cell on ``devices`` devices in ``processes`` processes.

    Called after keras is imported and before anything runs: TensorFlow's logical devices and
    jax.distributed must be set up before the runtime starts.

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
    import keras

    if backend == "tensorflow":
        if processes > 1:
            raise Unsupported(
                "data_parallel_processes > 1: the harness starts several processes through "
                "keras.distribution.initialize, which keras runs under jax only "
                "(tf.distribute.MultiWorkerMirroredStrategy is not wired in)"
            )
        return Mirrored(_tf(), _tf_devices(kind, devices))
    process_id = 0
    if processes > 1:
        process_id = _initialize(backend, kind, processes, identity)
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
    return KerasDataParallel(keras, found[:devices], processes, process_id)


def _initialize(backend: str, kind: str, processes: int, identity: str) -> int:
    """Joins the multi-process job that the environment describes; returns this process's id.

    Raises:
        RuntimeError: the processes that joined run different cells (a `harness worker-join`
            given other scenario files, --backend or --shard than the run it joins).
    """
    import keras

    missing = [k for k in (ENV_ADDRESSES, ENV_PROCESSES, ENV_PROCESS_ID) if k not in os.environ]
    if missing:
        raise RuntimeError(f"a multi-process cell needs {', '.join(missing)} in the environment")
    if int(os.environ[ENV_PROCESSES]) != processes:
        raise RuntimeError(
            f"{ENV_PROCESSES}={os.environ[ENV_PROCESSES]} but the cell asks for {processes}"
        )
    if backend != "jax":
        raise Unsupported(
            f"data_parallel_processes > 1: keras {keras.__version__} starts several processes "
            "(keras.distribution.initialize) under jax only"
        )
    import jax

    if kind == "cpu":  # CPU collectives across processes
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    keras.distribution.initialize()
    from jax.experimental import multihost_utils

    digest = np.frombuffer(hashlib.sha256(identity.encode()).digest()[:8], dtype=np.int32)
    try:
        multihost_utils.assert_equal(digest)
    except AssertionError:
        raise RuntimeError(
            f"the {processes} processes that joined at {os.environ[ENV_ADDRESSES]} run "
            f"different cells; this one runs {identity.partition(' ')[0]} (give `harness "
            "worker-join` the scenario files, --backend and --shard of the run it joins)"
        ) from None
    return int(jax.process_index())


def _tf():
    import tensorflow as tf

    return tf


def _tf_devices(kind: str, devices: int) -> list[str]:
    """The first ``devices`` GPUs, or as many logical CPUs made from the one physical CPU."""
    tf = _tf()
    if kind == "cpu":
        (cpu, *_) = tf.config.list_physical_devices("CPU")
        try:
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(devices)]
            )
        except RuntimeError as exc:  # the runtime started before the worker got here
            raise Unsupported(f"data_parallel: {one_line(exc)}") from None
    found = [d.name for d in tf.config.list_logical_devices(kind.upper())]
    if len(found) < devices:
        raise Missing(
            f"data_parallel = {devices} but tensorflow sees {len(found)} {kind} device(s)"
        )
    return found[:devices]
