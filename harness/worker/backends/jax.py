"""JAX: its devices, settings, matmul probe and data-parallel engine (keras.distribution, with
jax.distributed for several processes).

Imported only in a worker that runs jax; jax itself is imported inside each function. The
functions and their meaning are listed in backends/__init__.py.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from ... import devices as device_strings
from ...errors import one_line
from .. import parallel
from . import SettingUnsupported


def gpu_probe() -> tuple[list[str], str]:
    import jax

    said = []
    # "gpu" is any GPU platform; "cuda" gives the CUDA plugin's own failure to start
    # (jax keeps it and falls back to the CPU), where "gpu" only says none is present.
    for platform in ("gpu", "cuda"):
        try:
            gpus = [str(d) for d in jax.devices(platform)]
        except Exception as exc:  # RuntimeError mostly; a broken plugin may raise others
            text = one_line(exc, typed=True)
            if platform == "gpu" or "Unknown backend" not in text:
                said.append(f"jax.devices({platform!r}): {text}")
            continue
        if gpus:
            return gpus, ""
    why = "; ".join(said)
    if os.environ.get("JAX_PLATFORMS"):
        why += f" (JAX_PLATFORMS={os.environ['JAX_PLATFORMS']!r})"
    return [], why


def describe() -> dict[str, Any]:
    import jax

    info: dict[str, Any] = {}
    try:
        info["devices"] = [f"{d.platform}:{d.id} {d.device_kind}" for d in jax.devices()]
    except Exception as exc:
        info["devices"] = []
        info["error"] = one_line(exc)
    info["default_backend"] = jax.default_backend()
    return info


def preallocates(environ: Mapping[str, str]) -> bool:
    return device_strings.jax_preallocates(environ)


def variable_device(value: Any) -> str:
    (dev,) = value.devices()
    return "cpu" if dev.platform == "cpu" else f"gpu:{dev.id}"


def apply_settings(*, threads: int | None, tf32: bool | None) -> None:
    import jax

    if threads is not None:
        raise SettingUnsupported(
            "threads: jax (XLA's CPU client) has no thread-count setting; it uses every core"
        )
    if tf32 is not None:
        jax.config.update("jax_default_matmul_precision", "tensorfloat32" if tf32 else "highest")


def what_ran() -> dict[str, Any]:
    import jax

    precision = jax.config.jax_default_matmul_precision
    return {
        # None: XLA's default, which multiplies float32 in TF32 on GPUs that have it
        "matmul_precision": {
            None: "default (tf32 on GPU)",
            "tensorfloat32": "tf32",
            "float32": "highest",
        }.get(precision, str(precision)),
        "intra_op_threads": None,  # XLA's CPU client has no query: one per core
        "inter_op_threads": None,
    }


def matmul(stack: int, m: int, k: int, n: int, dtype: str):
    import jax
    import jax.numpy as jnp

    a = jnp.ones((stack, m, k), dtype)
    b = jnp.ones((k, n), dtype)
    f = jax.jit(lambda a, b: a @ b)
    return (lambda: f(a, b)), (lambda out: out.block_until_ready())


# --- data parallel: keras.distribution.DataParallel, jax.distributed across processes ---------


class DataParallel(parallel.KerasDataParallel):
    """Keras' DataParallel over jax arrays: a variable's replicas are its sharding's devices."""

    def replicas(self, variable: Any) -> list[str]:
        value = variable.value
        return sorted(f"{d.platform}:{d.id}" for d in value.sharding.device_set)

    def agree(self, value: float) -> float:
        if self.processes == 1:
            return value
        from jax.experimental import multihost_utils

        return float(multihost_utils.broadcast_one_to_all(np.asarray(value, dtype=np.float32)))


def data_parallel(kind: str, devices: int, processes: int, identity: str) -> parallel.Single:
    process_id = 0
    if processes > 1:
        process_id = _join(kind, processes, identity)
    return parallel.keras_distribution(DataParallel, "jax", kind, devices, processes, process_id)


def _join(kind: str, processes: int, identity: str) -> int:
    """Joins the multi-process job that the environment describes; returns this process's id.

    Raises:
        RuntimeError: the processes that joined run different cells (a `harness worker-join`
            given other scenario files, --backend or --shard than the run it joins).
    """
    parallel.check_job(processes)
    import jax
    import keras

    if kind == "cpu":  # CPU collectives across processes
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    keras.distribution.initialize()
    from jax.experimental import multihost_utils

    digest = np.frombuffer(hashlib.sha256(identity.encode()).digest()[:8], dtype=np.int32)
    try:
        multihost_utils.assert_equal(digest)
    except AssertionError:
        raise RuntimeError(
            f"the {processes} processes that joined at {os.environ[parallel.ENV_ADDRESSES]} "
            f"run different cells; this one runs {identity.partition(' ')[0]} (give `harness "
            "worker-join` the scenario files, --backend and --shard of the run it joins)"
        ) from None
    return int(jax.process_index())
