"""PyTorch: its devices, settings, matmul probe and data-parallel engine (keras.distribution,
where this keras supports it under torch: from 3.16).

Imported only in a worker that runs torch; torch itself is imported inside each function. The
functions and their meaning are listed in backends/__init__.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...errors import one_line
from .. import parallel
from . import SettingUnsupported


def gpu_probe() -> tuple[list[str], str]:
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


def describe() -> dict[str, Any]:
    import torch

    return {
        "devices": ["cpu"]
        + [f"cuda:{i} {torch.cuda.get_device_name(i)}" for i in range(torch.cuda.device_count())],
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "threads": torch.get_num_threads(),
    }


def preallocates(environ: Mapping[str, str]) -> None:
    return None


def variable_device(value: Any) -> str:
    dev = value.device
    return "cpu" if dev.type == "cpu" else f"gpu:{dev.index or 0}"


def apply_settings(*, threads: int | None, tf32: bool | None) -> None:
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


def what_ran() -> dict[str, Any]:
    import torch

    precision = torch.get_float32_matmul_precision()  # highest, high (tf32), medium (bf16)
    if torch.backends.cuda.matmul.allow_tf32 and precision == "highest":
        precision = "high"  # allow_tf32 set directly, the older switch
    return {
        "matmul_precision": {"high": "tf32", "medium": "bf16"}.get(precision, precision),
        "intra_op_threads": torch.get_num_threads(),
        "inter_op_threads": torch.get_num_interop_threads(),
    }


def matmul(stack: int, m: int, k: int, n: int, dtype: str):
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    tdtype = getattr(torch, dtype)
    a = torch.ones((stack, m, k), dtype=tdtype, device=device)
    b = torch.ones((k, n), dtype=tdtype, device=device)

    def sync(out):
        if device == "cuda":
            torch.cuda.synchronize()
        return out

    return (lambda: torch.matmul(a, b)), sync


# --- data parallel: keras.distribution, one process ---------------------------------------------


def data_parallel(kind: str, devices: int, processes: int, identity: str) -> parallel.Single:
    if processes > 1:
        import keras

        parallel.check_job(processes)
        raise parallel.Unsupported(
            f"data_parallel_processes > 1: keras {keras.__version__} starts several processes "
            "(keras.distribution.initialize) under jax only"
        )
    return parallel.keras_distribution(parallel.KerasDataParallel, "torch", kind, devices, 1, 0)
