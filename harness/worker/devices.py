"""The worker's half of devices: what the (imported) backend sees, and where variables live.

One of the few places where backend-specific code is allowed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from ..backends import backend_versions
from ..devices import DeviceUnavailable, GpuUnusable, parse, visible_entries
from ..errors import one_line


def gpu_probe(backend: str) -> tuple[list[str], str]:
    """The GPUs the (already imported) backend can use, and, where there are none, why not in
    the backend's own words (its exception, its build), on one line."""
    if backend == "tensorflow":
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
    if backend == "jax":
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
    if backend == "torch":
        import torch

        if torch.cuda.is_available():
            return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())], ""
        if torch.version.cuda is None and getattr(torch.version, "hip", None) is None:
            return [], f"torch {torch.__version__} is a CPU-only build (torch.version.cuda is None)"
        try:
            torch.cuda.init()  # raises CUDA's own error, which is_available() keeps to itself
        except Exception as exc:
            why = f"torch.cuda.init(): {one_line(exc, typed=True)}"
        else:
            why = "torch.cuda.is_available() is False"
        return [], f"torch {torch.__version__} (CUDA {torch.version.cuda}): {why}"
    raise ValueError(backend)


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
            info["error"] = one_line(exc)
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


class SettingUnsupported(RuntimeError):
    """The backend cannot honour a scenario setting (the cell is unsupported, with why)."""


def apply_settings(backend: str, *, threads: int | None, tf32: bool | None) -> None:
    """Makes the backend run with the scenario's thread count and TF32 choice, the same under
    every backend, before anything runs; None leaves the backend's own default.

    Raises:
        SettingUnsupported: the backend has no such setting, or it is too late to change it.
    """
    if backend == "tensorflow":
        import tensorflow as tf

        try:
            if threads is not None:
                tf.config.threading.set_intra_op_parallelism_threads(threads)
                tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError as exc:  # the runtime started before the worker got here
            raise SettingUnsupported(f"threads: {one_line(exc)}") from None
        if tf32 is not None:
            tf.config.experimental.enable_tensor_float_32_execution(tf32)
    elif backend == "jax":
        import jax

        if threads is not None:
            raise SettingUnsupported(
                "threads: jax (XLA's CPU client) has no thread-count setting; it uses every core"
            )
        if tf32 is not None:
            jax.config.update(
                "jax_default_matmul_precision", "tensorfloat32" if tf32 else "highest"
            )
    elif backend == "torch":
        import torch

        if threads is not None:
            torch.set_num_threads(threads)
            try:
                torch.set_num_interop_threads(threads)
            except RuntimeError as exc:  # inter-op work already started
                raise SettingUnsupported(f"threads: {one_line(exc)}") from None
        if tf32 is not None:
            torch.backends.cuda.matmul.allow_tf32 = tf32
            torch.backends.cudnn.allow_tf32 = tf32
            torch.set_float32_matmul_precision("high" if tf32 else "highest")


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
    if backend == "tensorflow":
        import tensorflow as tf

        tf32 = tf.config.experimental.tensor_float_32_execution_enabled()
        out["matmul_precision"] = "tf32" if tf32 else "highest"
        # 0: TensorFlow sizes the pool itself (one thread per logical core)
        out["intra_op_threads"] = tf.config.threading.get_intra_op_parallelism_threads()
        out["inter_op_threads"] = tf.config.threading.get_inter_op_parallelism_threads()
    elif backend == "jax":
        import jax

        precision = jax.config.jax_default_matmul_precision
        # None: XLA's default, which multiplies float32 in TF32 on GPUs that have it
        out["matmul_precision"] = {
            None: "default (tf32 on GPU)",
            "tensorfloat32": "tf32",
            "float32": "highest",
        }.get(precision, str(precision))
        out["intra_op_threads"] = None  # XLA's CPU client has no query: one per core
        out["inter_op_threads"] = None
    elif backend == "torch":
        import torch

        precision = torch.get_float32_matmul_precision()  # highest, high (tf32), medium (bf16)
        if torch.backends.cuda.matmul.allow_tf32 and precision == "highest":
            precision = "high"  # allow_tf32 set directly, the older switch
        out["matmul_precision"] = {"high": "tf32", "medium": "bf16"}.get(precision, precision)
        out["intra_op_threads"] = torch.get_num_threads()
        out["inter_op_threads"] = torch.get_num_interop_threads()
    return out
