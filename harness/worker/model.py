"""The built-in models, written with ``keras`` only (no backend imports here).

- mlp, the tutorial's: Flatten(28x28x1) -> Dense(128, relu) -> Dense(10, softmax);
- cnn, the classic Keras MNIST convnet: Conv2D(32, 3) -> MaxPooling -> Conv2D(64, 3) ->
  MaxPooling -> Flatten -> Dropout(0.5) -> Dense(10, softmax).

Both: sparse categorical cross-entropy, accuracy. Everything backend-specific lives in
devices.py and data.py.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import keras

from ..scenario import OPTIMIZERS

INPUT_SHAPE = (28, 28, 1)
NUM_CLASSES = 10


class ModelRefError(RuntimeError):
    """A model import reference that does not give a usable model: one line, with why."""


def build_model(
    name: str = "mlp", python_path: tuple[str, ...] = (), settings: dict | None = None
) -> keras.Model:
    """Builds a built-in model by its scenario name (``scenario.MODELS``), or the user's own
    from an import reference ``package.module:function``.

    The output layer is pinned to float32 so that a mixed-precision policy keeps a numerically
    sound softmax, as the Keras mixed-precision guide advises.
    """
    if ":" in name:
        return _imported(name, python_path, settings or {})
    if name == "cnn":
        return keras.Sequential(
            [
                keras.Input(shape=(28, 28, 1)),
                keras.layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
                keras.layers.MaxPooling2D(pool_size=(2, 2)),
                keras.layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
                keras.layers.MaxPooling2D(pool_size=(2, 2)),
                keras.layers.Flatten(),
                keras.layers.Dropout(0.5),
                keras.layers.Dense(10, activation="softmax", dtype="float32"),
            ],
            name="mnist_cnn",
        )
    if name != "mlp":
        raise ValueError(f"unknown model {name!r}")
    return keras.Sequential(
        [
            keras.Input(shape=(28, 28, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(10, activation="softmax", dtype="float32"),
        ],
        name="mnist_mlp",
    )


def _imported(ref: str, python_path: tuple[str, ...], settings: dict) -> keras.Model:
    """Calls the user's ``function(input_shape=, num_classes=, settings=)`` and checks that it
    returns a keras.Model whose output matches the labels.

    Raises:
        ModelRefError: the module or function is missing, the function fails, or what it
            returns is no usable model.
    """
    for folder in reversed(python_path):
        if folder not in sys.path:
            sys.path.insert(0, folder)
    module_name, _, function = ref.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ModelRefError(f"model {ref}: cannot import {module_name}: {_why(exc)}") from None
    build = getattr(module, function, None)
    if not callable(build):
        raise ModelRefError(f"model {ref}: {module_name} has no function {function}")
    try:
        model = build(input_shape=INPUT_SHAPE, num_classes=NUM_CLASSES, settings=settings)
    except Exception as exc:
        raise ModelRefError(f"model {ref}: {function} raised {_why(exc)}") from None
    if not isinstance(model, keras.Model):
        raise ModelRefError(
            f"model {ref}: {function} returned {type(model).__name__}, not a keras.Model"
        )
    try:
        out = tuple(model.compute_output_shape((1, *INPUT_SHAPE)))
    except Exception as exc:
        raise ModelRefError(f"model {ref}: cannot tell its output shape: {_why(exc)}") from None
    if out[-1:] != (NUM_CLASSES,):
        raise ModelRefError(
            f"model {ref}: its output shape {out} does not match the labels: "
            f"{NUM_CLASSES} classes, one probability each (softmax)"
        )
    return model


def _why(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


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
    """Floating-point operations of one training sample, counted from the built model's Dense
    and Conv2D layers (see ``uncounted_layers`` for the rest).

    A Dense layer of n_in x n_out costs 2*n_in*n_out in the forward pass (multiply + add), a
    Conv2D 2 * out_h * out_w * k_h * k_w * c_in * c_out; the backward pass about twice the
    forward (gradients for inputs and weights): 3 x forward in all. Bias adds, activations,
    pooling and dropout are a rounding error next to them and are left out.
    """
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dense):
            kernel = layer.kernel
            total += 3 * 2 * int(kernel.shape[0]) * int(kernel.shape[1])
        elif isinstance(layer, keras.layers.Conv2D) and layer.groups == 1:
            k_h, k_w, c_in, c_out = (int(d) for d in layer.kernel.shape)
            _, out_h, out_w, _ = layer.output.shape  # channels last, as built here
            total += 3 * 2 * int(out_h) * int(out_w) * k_h * k_w * c_in * c_out
    return total


# Layers without weights whose cost is negligible next to the counted ones.
_FREE = ("Flatten", "Dropout", "MaxPooling2D", "AveragePooling2D", "Activation", "InputLayer")


def uncounted_layers(model: keras.Model) -> list[str]:
    """Layers whose FLOPs ``train_flops_per_sample`` does not count (an efficiency figure
    from it is then partial), by class name."""
    out = []
    for layer in model.layers:
        name = type(layer).__name__
        counted = isinstance(layer, keras.layers.Dense) or (
            isinstance(layer, keras.layers.Conv2D) and layer.groups == 1
        )
        if not counted and name not in _FREE:
            out.append(name)
    return sorted(set(out))
