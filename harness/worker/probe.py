"""How fast can this device multiply matrices of the model's own shape? (the efficiency limit)

One training sample of the model costs ``train_flops_per_sample`` FLOPs, almost all of it in
matrix products of shape (batch x 784) @ (784 x 128). This probe times that product on the
cell's device and dtype with the backend's own compiled matmul (its module's ``matmul``, in
backends/<name>.py), many products per call so that dispatch overhead does not hide the kernel
rate, synchronised before the clock is read.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from . import backends

STACK = 64  # products per call: amortises dispatch, keeps each product at the model's shape


def _dtype_for(precision: str) -> str:
    return {"mixed_float16": "float16", "mixed_bfloat16": "bfloat16"}.get(precision, "float32")


def matmul_rate(
    backend: str, m: int, k: int, n: int, *, precision: str = "float32", seconds: float = 0.3
) -> dict[str, Any]:
    """Achievable FLOP/s of an (m x k) @ (k x n) product under ``backend`` on its device.

    Returns:
        ``{"flops_per_sec", "shape", "dtype", "calls", "seconds", "method"}``.
    """
    dtype = _dtype_for(precision)
    if backend == "numpy":  # the reference a CPU user knows, beside the backend's own
        call, sync = _numpy(m, k, n, dtype)
    else:
        call, sync = backends.get(backend).matmul(STACK, m, k, n, dtype)
    sync(call())  # compile / warm up
    sync(call())
    calls, start = 0, time.perf_counter()
    while True:
        out = call()
        calls += 1
        if calls % 4 == 0:
            sync(out)
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                break
    flops = 2.0 * m * k * n * STACK * calls
    return {
        "flops_per_sec": flops / elapsed,
        "shape": [m, k, n],
        "dtype": dtype,
        "calls": calls,
        "seconds": round(elapsed, 4),
        "method": f"{backend} compiled matmul, {STACK} products per call, synced",
    }


def _numpy(m, k, n, dtype):
    a = np.ones((STACK, m, k), np.float32)
    b = np.ones((k, n), np.float32)
    return (lambda: a @ b), (lambda out: out)
