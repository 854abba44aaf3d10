"""TensorFlow: its devices, settings, matmul probe and data-parallel engine (MirroredStrategy).

Imported only in a worker that runs tensorflow; tensorflow itself is imported inside each
function. The functions and their meaning are listed in backends/__init__.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...errors import one_line
from .. import parallel
from . import SettingUnsupported


def gpu_probe() -> tuple[list[str], str]:
    import tensorflow as tf

    gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
    if gpus:
        return gpus, ""
    if not tf.test.is_built_with_cuda():
        return [], (
            f"tensorflow {tf.__version__} is built without CUDA "
            "(tf.test.is_built_with_cuda() is False: tensorflow-cpu?)"
        )
    build = tf.sysconfig.get_build_info()
    return [], (
        f"tensorflow {tf.__version__}, built with CUDA {build.get('cuda_version')} and "
        f"cuDNN {build.get('cudnn_version')}, lists no GPU (the CUDA libraries it could "
        "not load are in the worker's log)"
    )


def describe() -> dict[str, Any]:
    import tensorflow as tf

    build = tf.sysconfig.get_build_info()
    return {
        "devices": [d.name for d in tf.config.list_logical_devices()],
        "cuda": build.get("cuda_version"),
        "cudnn": build.get("cudnn_version"),
    }


def preallocates(environ: Mapping[str, str]) -> None:
    return None


def variable_device(value: Any) -> str:
    name = value.device  # e.g. /job:localhost/replica:0/task:0/device:GPU:0
    tail = name.rsplit("device:", 1)[-1].lower()
    return tail.replace("cpu:0", "cpu") if tail else name


def apply_settings(*, threads: int | None, tf32: bool | None) -> None:
    import tensorflow as tf

    try:
        if threads is not None:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError as exc:  # the runtime started before the worker got here
        raise SettingUnsupported(f"threads: {one_line(exc)}") from None
    if tf32 is not None:
        tf.config.experimental.enable_tensor_float_32_execution(tf32)


def what_ran() -> dict[str, Any]:
    import tensorflow as tf

    tf32 = tf.config.experimental.tensor_float_32_execution_enabled()
    return {
        "matmul_precision": "tf32" if tf32 else "highest",
        # 0: TensorFlow sizes the pool itself (one thread per logical core)
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
    }


def matmul(stack: int, m: int, k: int, n: int, dtype: str):
    import tensorflow as tf

    a = tf.ones((stack, m, k), dtype)
    b = tf.ones((k, n), dtype)
    f = tf.function(lambda a, b: tf.linalg.matmul(a, b), jit_compile=False)
    return (lambda: f(a, b)), (lambda out: out[0, 0, 0].numpy())


# --- data parallel: tf.distribute.MirroredStrategy ---------------------------------------------


class Mirrored(parallel.Engine):
    engine = "tf.distribute.MirroredStrategy"

    def __init__(self, names: list[str]):
        import tensorflow as tf

        super().__init__(names, 1, 0)
        self.strategy = tf.distribute.MirroredStrategy(devices=names)

    def scope(self):
        return self.strategy.scope()

    def replicas(self, variable: Any) -> list[str]:
        value = variable.value
        parts = getattr(value, "values", None)
        if parts is None:  # a plain variable: one copy, where it lives
            return [_short(value.device)]
        return [_short(v.device) for v in parts]


def _short(name: str) -> str:
    """``/job:localhost/replica:0/task:0/device:CPU:1`` -> ``cpu:1``."""
    return name.rsplit("device:", 1)[-1].lower()


def data_parallel(kind: str, devices: int, processes: int, identity: str) -> parallel.Single:
    if processes > 1:
        raise parallel.Unsupported(
            "data_parallel_processes > 1: the harness starts several processes through "
            "keras.distribution.initialize, which keras runs under jax only "
            "(tf.distribute.MultiWorkerMirroredStrategy is not wired in)"
        )
    return Mirrored(_devices(kind, devices))


def _devices(kind: str, devices: int) -> list[str]:
    """The first ``devices`` GPUs, or as many logical CPUs made from the one physical CPU."""
    import tensorflow as tf

    if kind == "cpu":
        (cpu, *_) = tf.config.list_physical_devices("CPU")
        try:
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(devices)]
            )
        except RuntimeError as exc:  # the runtime started before the worker got here
            raise parallel.Unsupported(f"data_parallel: {one_line(exc)}") from None
    found = [d.name for d in tf.config.list_logical_devices(kind.upper())]
    if len(found) < devices:
        raise parallel.Missing(
            f"data_parallel = {devices} but tensorflow sees {len(found)} {kind} device(s)"
        )
    return found[:devices]
