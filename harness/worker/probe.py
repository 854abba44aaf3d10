"""How fast can this device multiply matrices of the model's own shape? (the efficiency limit)

One training sample of the model costs ``train_flops_per_sample`` FLOPs, almost all of it in
matrix products of shape (batch x 784) @ (784 x 128). This probe times that product on the
cell's device and dtype with the backend's own compiled matmul, many products per call so that
dispatch overhead does not hide the kernel rate, synchronised before the clock is read. It is
backend-specific by nature, like devices.py.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

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
    run = {"jax": _jax, "torch": _torch, "tensorflow": _tf, "numpy": _numpy}[backend]
    call, sync = run(m, k, n, dtype)
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


def _jax(m, k, n, dtype):
    import jax
    import jax.numpy as jnp

    a = jnp.ones((STACK, m, k), dtype)
    b = jnp.ones((k, n), dtype)
    f = jax.jit(lambda a, b: a @ b)
    return (lambda: f(a, b)), (lambda out: out.block_until_ready())


def _torch(m, k, n, dtype):
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    tdtype = getattr(torch, dtype)
    a = torch.ones((STACK, m, k), dtype=tdtype, device=device)
    b = torch.ones((k, n), dtype=tdtype, device=device)

    def sync(out):
        if device == "cuda":
            torch.cuda.synchronize()
        return out

    return (lambda: torch.matmul(a, b)), sync


def _tf(m, k, n, dtype):
    import tensorflow as tf

    a = tf.ones((STACK, m, k), dtype)
    b = tf.ones((k, n), dtype)
    f = tf.function(lambda a, b: tf.linalg.matmul(a, b), jit_compile=False)
    return (lambda: f(a, b)), (lambda out: out[0, 0, 0].numpy())
