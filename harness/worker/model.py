"""The one model of the tutorial, written with ``keras`` only (no backend imports here).

Flatten(28x28x1) -> Dense(128, relu) -> Dense(10, softmax), sparse categorical cross-entropy,
accuracy. Everything backend-specific lives in devices.py and data.py.
"""

from __future__ import annotations

from typing import Any

import keras

from ..scenario import OPTIMIZERS


def build_model() -> keras.Model:
    """Builds the tutorial's classifier.

    The output layer is pinned to float32 so that a mixed-precision policy keeps a numerically
    sound softmax, as the Keras mixed-precision guide advises.
    """
    return keras.Sequential(
        [
            keras.Input(shape=(28, 28, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(10, activation="softmax", dtype="float32"),
        ],
        name="mnist_mlp",
    )


def make_optimizer(name: str, kwargs: dict[str, Any] | None = None) -> keras.optimizers.Optimizer:
    """Builds a Keras optimizer from its scenario name and constructor arguments.

    Args:
        name: a key of ``scenario.OPTIMIZERS``.
        kwargs: constructor arguments, e.g. ``{"learning_rate": 0.01, "momentum": 0.9}``.
    """
    cls = getattr(keras.optimizers, OPTIMIZERS[name])
    return cls(**(kwargs or {}))


def compile_model(
    model: keras.Model,
    optimizer: keras.optimizers.Optimizer,
    *,
    jit_compile: str | bool = "auto",
    steps_per_execution: int = 1,
) -> keras.Model:
    model.compile(
        optimizer=optimizer,
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        jit_compile=jit_compile,
        steps_per_execution=steps_per_execution,
    )
    return model


def train_flops_per_sample(model: keras.Model) -> int:
    """Floating-point operations of one training sample, counted from the built Dense layers.

    A Dense layer of n_in x n_out costs 2*n_in*n_out in the forward pass (multiply + add) and
    about twice that backward (gradients for inputs and weights): 3 x 2 x n_in x n_out in all.
    Bias adds and activations are a rounding error at this size and are left out.
    """
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dense):
            kernel = layer.kernel
            total += 3 * 2 * int(kernel.shape[0]) * int(kernel.shape[1])
    return total
