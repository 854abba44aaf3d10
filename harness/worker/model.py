"""The built-in models, written with ``keras`` only (no backend imports here).

- mlp, the tutorial's: Flatten(28x28x1) -> Dense(128, relu) -> Dense(10, softmax);
- cnn, the classic Keras MNIST convnet: Conv2D(32, 3) -> MaxPooling -> Conv2D(64, 3) ->
  MaxPooling -> Flatten -> Dropout(0.5) -> Dense(10, softmax).

Compiled with the scenario's loss and metrics (sparse categorical cross-entropy and accuracy
by default). Everything backend-specific lives in
devices.py and data.py.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import keras

from ..scenario import LOSSES, OPTIMIZERS
from .imports import import_ref, why

INPUT_SHAPE = (28, 28, 1)
NUM_CLASSES = 10


class ModelRefError(RuntimeError):
    """A model import reference that does not give a usable model: one line, with why."""


def build_model(
    name: str = "mlp",
    python_path: tuple[str, ...] = (),
    settings: dict | None = None,
    *,
    input_shape: tuple[int, ...] = INPUT_SHAPE,
    num_classes: int = NUM_CLASSES,
) -> keras.Model:
    """Builds a built-in model by its scenario name (``scenario.MODELS``), or the user's own
    from an import reference ``package.module:function``, for samples of ``input_shape`` and
    ``num_classes`` labels (the dataset's).

    The output layer is pinned to float32 so that a mixed-precision policy keeps a numerically
    sound softmax, as the Keras mixed-precision guide advises.
    """
    if ":" in name:
        return _imported(name, python_path, settings or {}, input_shape, num_classes)
    out = keras.layers.Dense(num_classes, activation="softmax", dtype="float32")
    if name == "cnn":
        return keras.Sequential(
            [
                keras.Input(shape=input_shape),
                keras.layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
                keras.layers.MaxPooling2D(pool_size=(2, 2)),
                keras.layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
                keras.layers.MaxPooling2D(pool_size=(2, 2)),
                keras.layers.Flatten(),
                keras.layers.Dropout(0.5),
                out,
            ],
            name="mnist_cnn",
        )
    if name != "mlp":
        raise ValueError(f"unknown model {name!r}")
    return keras.Sequential(
        [
            keras.Input(shape=input_shape),
            keras.layers.Flatten(),
            keras.layers.Dense(128, activation="relu"),
            out,
        ],
        name="mnist_mlp",
    )


def _imported(
    ref: str,
    python_path: tuple[str, ...],
    settings: dict,
    input_shape: tuple[int, ...],
    num_classes: int,
) -> keras.Model:
    """Calls the user's ``function(input_shape=, num_classes=, settings=)`` and checks that it
    returns a keras.Model whose output matches the labels.

    Raises:
        ModelRefError: the module or function is missing, the function fails, or what it
            returns is no usable model.
    """
    build = import_ref(ref, python_path, "model", ModelRefError)
    function = ref.partition(":")[2]
    try:  # a copy of the settings: what the function does to it must not change the record
        model = build(
            input_shape=tuple(input_shape),
            num_classes=num_classes,
            settings=copy.deepcopy(settings),
        )
    except (Exception, SystemExit) as exc:
        raise ModelRefError(f"model {ref}: {function} raised {why(exc)}") from None
    if not isinstance(model, keras.Model):
        raise ModelRefError(
            f"model {ref}: {function} returned {type(model).__name__}, not a keras.Model"
        )
    try:  # a symbolic call: a subclassed model has no compute_output_shape of its own
        out = tuple(model.compute_output_spec(keras.KerasTensor((1, *input_shape))).shape)
    except Exception as exc:
        raise ModelRefError(
            f"model {ref}: cannot tell its output shape for inputs of shape {tuple(input_shape)}"
            f": {why(exc)}"
        ) from None
    if out[-1:] != (num_classes,):
        raise ModelRefError(
            f"model {ref}: its output shape {out} does not match the labels: "
            f"{num_classes} classes, one probability each (softmax)"
        )
    return model


def architecture(model: keras.Model) -> dict[str, Any]:
    """The model as built, for its workload identity: the parameter count, the layers in
    order (class and size), and a digest of every layer's class, configuration (without its
    auto-numbered name) and weight shapes, nested models opened up.

    A layer whose configuration cannot be had (a custom layer without ``get_config``) is
    described by its class and weights alone.
    """
    from ..workload import digest

    described, summary = [], []

    def walk(layers) -> None:
        for layer in layers:
            if isinstance(layer, keras.Model):
                walk(layer.layers)
                continue
            try:
                config = _unnamed({k: v for k, v in layer.get_config().items() if k != "name"})
            except Exception:  # NotImplementedError for a custom layer with arguments
                config = None
            cls = f"{type(layer).__module__}.{type(layer).__qualname__}"
            weights = [[list(w.shape), str(w.dtype)] for w in layer.weights]
            described.append([cls, config, weights])
            size = sum(_prod(w.shape) for w in layer.weights)
            summary.append(f"{type(layer).__name__}({size})" if size else type(layer).__name__)

    walk(model.layers)
    return {
        "params": int(model.count_params()),
        "layers": ", ".join(summary),
        "architecture": digest([type(model).__qualname__, described]),
    }


def _unnamed(config: Any) -> Any:
    """A layer configuration without Keras' auto-numbering: a wrapped layer's name ("dense_7")
    counts the models built before it in this process (one per repeat and calibration fit),
    so its trailing number is dropped wherever a "name" holds one."""
    if isinstance(config, dict):
        return {
            k: re.sub(r"_\d+$", "", v) if k == "name" and isinstance(v, str) else _unnamed(v)
            for k, v in config.items()
        }
    if isinstance(config, list | tuple):
        return [_unnamed(v) for v in config]
    return config


def make_optimizer(name: str, kwargs: dict[str, Any] | None = None) -> keras.optimizers.Optimizer:
    """Builds a Keras optimizer from its scenario name and constructor arguments.

    Args:
        name: a key of ``scenario.OPTIMIZERS``.
        kwargs: constructor arguments, e.g. ``{"learning_rate": 0.01, "momentum": 0.9}``.
    """
    cls = getattr(keras.optimizers, OPTIMIZERS[name])
    return cls(**(kwargs or {}))


def make_loss(name: str, kwargs: dict[str, Any] | None = None) -> keras.losses.Loss:
    """Builds a Keras loss from its scenario name (``scenario.LOSSES``) and arguments."""
    return getattr(keras.losses, LOSSES[name])(**(kwargs or {}))


def compile_model(
    model: keras.Model,
    optimizer: keras.optimizers.Optimizer,
    *,
    loss: keras.losses.Loss | str = "sparse_categorical_crossentropy",
    metrics: tuple[str, ...] = ("accuracy",),
    jit_compile: str | bool = "auto",
    steps_per_execution: int = 1,
) -> keras.Model:
    model.compile(
        optimizer=optimizer,
        loss=loss,
        metrics=list(metrics),
        jit_compile=jit_compile,
        steps_per_execution=steps_per_execution,
    )
    return model


def train_flops_per_sample(model: keras.Model) -> int:
    """Floating-point operations of one training sample, counted from the built model's layers
    that dominate common models (see ``_node_flops``; ``uncounted_layers`` lists the rest).

    A multiply-add is 2 FLOPs; the backward pass costs about twice the forward (gradients for
    inputs and weights): 3 x forward in all. Bias adds, activations, normalization, pooling and
    dropout are a rounding error next to them and are left out.
    """
    return 3 * _count(model)[0]


def uncounted_layers(model: keras.Model) -> list[str]:
    """Layers whose FLOPs ``train_flops_per_sample`` does not count (an efficiency figure
    from it is then partial), by class name."""
    return sorted(_count(model)[1])


# Layers whose cost is negligible next to the counted ones (elementwise, reshaping, pooling,
# normalization) or none (a lookup).
# fmt: off
_FREE = frozenset({
    "Flatten", "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise",
    "GaussianDropout", "AlphaDropout", "Activation", "ReLU", "LeakyReLU", "PReLU", "ELU",
    "Softmax", "InputLayer", "Reshape", "Permute", "RepeatVector", "Cropping1D", "Cropping2D",
    "Cropping3D", "ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D", "UpSampling1D", "UpSampling2D",
    "UpSampling3D", "MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D",
    "AveragePooling2D", "AveragePooling3D", "GlobalMaxPooling1D", "GlobalMaxPooling2D",
    "GlobalMaxPooling3D", "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D",
    "BatchNormalization", "LayerNormalization", "GroupNormalization", "UnitNormalization",
    "RMSNormalization", "Rescaling", "Normalization", "Embedding", "Add", "Subtract", "Multiply",
    "Average", "Maximum", "Minimum", "Concatenate", "Identity",
})
# fmt: on


def _count(model: keras.Model) -> tuple[int, set[str]]:
    """Forward FLOPs of one sample and the layers left uncounted, walking the model's graph:
    every call of a layer in it once (a shared layer as often as it is called, a nested model
    opened up at each call), nothing called outside it."""
    graph = getattr(model, "_functional", None) or model  # a Sequential's is inside
    by_depth = getattr(graph, "_nodes_by_depth", None)
    if not by_depth:  # a subclassed model: no graph of its calls to read
        names = {type(layer).__name__ for layer in model.layers} - _FREE
        return 0, names or {type(model).__name__}
    total, uncounted = 0, set()
    for nodes in by_depth.values():
        for node in nodes:
            op = node.operation
            name = type(op).__name__
            if isinstance(op, keras.Model):
                flops, missed = _count(op)
                total += flops
                uncounted |= missed
                continue
            try:
                flops = _node_flops(op, _kinds(op), node)
            except Exception:  # a layer that does not look as expected: uncounted, not guessed
                flops = None
            if flops is not None:
                total += flops
            elif name not in _FREE:
                uncounted.add(name)
    return total, uncounted


def _kinds(layer) -> set[str]:
    """The class names of the layer's classes (keras' base classes live in keras.src, which
    the harness does not import; a subclass of a counted layer counts as it)."""
    return {cls.__name__ for cls in type(layer).__mro__}


def _prod(dims) -> int:
    out = 1
    for d in dims:
        out *= int(d)
    return out


def _spatial(layer, shape: tuple[int, ...]) -> tuple[int, ...]:
    """A conv layer's spatial dimensions of one sample's ``shape`` (no channel axis)."""
    return (
        shape[1:]
        if getattr(layer, "data_format", "channels_last") == "channels_first"
        else (shape[:-1])
    )


def _node_flops(layer, kinds: set[str], node) -> int | None:
    """Forward FLOPs of one sample through one call of ``layer``; None where the harness
    cannot count it (never a guess)."""
    ins = [tuple(t.shape)[1:] for t in node.input_tensors]
    out = tuple(node.output_tensors[0].shape)[1:]
    if any(None in s for s in ins):
        return None  # a dimension unknown until run time (a variable sequence length)
    if "EinsumDense" in kinds:  # from its input: its output shape may be left open
        return _einsum_flops(layer, ins[0])
    if None in out:
        return None
    if "Dense" in kinds:  # applied along the last axis of every position of the sample
        n_in, n_out = (int(d) for d in layer.kernel.shape)
        return 2 * n_in * n_out * _prod(out[:-1])
    if "BaseSeparableConv" in kinds:
        dw, pw = layer.depthwise_kernel.shape, layer.pointwise_kernel.shape
        return 2 * _prod(_spatial(layer, out)) * (_prod(dw) + _prod(pw))
    if "BaseConvTranspose" in kinds:  # every input position scatters through the kernel
        return 2 * _prod(_spatial(layer, ins[0])) * _prod(layer.kernel.shape)
    if "BaseDepthwiseConv" in kinds or "BaseConv" in kinds:
        # kernel (*k, c_in / groups, c_out), or (*k, c_in, multiplier): per output position
        return 2 * _prod(_spatial(layer, out)) * _prod(layer.kernel.shape)
    if "MultiHeadAttention" in kinds:  # query, value and key by argument, not the masks
        args, kwargs = node.arguments.args, node.arguments.kwargs
        named = [*args[:3], *(kwargs.get(k) for k in ("query", "value", "key")[len(args) :])]
        query, value = (tuple(t.shape)[1:] for t in named[:2])
        key = named[2]
        return _attention_flops(layer, query, value, value if key is None else key.shape[1:])
    for name, gates in (("LSTM", 4), ("GRU", 3), ("SimpleRNN", 1)):
        if name in kinds:
            steps, n_in = ins[0][-2], ins[0][-1]
            units = int(layer.cell.units)
            return 2 * gates * (n_in + units) * units * steps
    return None


def _einsum_flops(layer, sample_in: tuple) -> int | None:
    """2 x the product of every dimension the equation names (the batch's as 1)."""
    inputs, _, _ = layer.equation.partition("->")
    x_sub, _, k_sub = inputs.partition(",")
    if "." in layer.equation or len(x_sub) != len(sample_in) + 1:
        return None
    sizes = dict(zip(x_sub, (1, *sample_in), strict=True))
    sizes.update(zip(k_sub, (int(d) for d in layer.kernel.shape), strict=True))
    return 2 * _prod(sizes.values())


def _attention_flops(layer, query: tuple, value: tuple, key: tuple) -> int | None:
    """Query, key and value projections, scores, the weighted sum, and the output projection
    (keras' MultiHeadAttention over one sequence axis)."""
    key = tuple(key)
    if len(query) != 2 or len(value) != 2 or len(key) != 2:  # several axes: not counted
        return None
    (t_q, d_q), (t_v, d_v), (t_k, d_k) = query, value, key
    heads, key_dim = layer.num_heads, layer.key_dim
    value_dim = layer.value_dim or key_dim
    d_out = int(layer._output_dense.kernel.shape[-1])
    return 2 * (
        t_q * d_q * heads * key_dim
        + t_k * d_k * heads * key_dim
        + t_v * d_v * heads * value_dim
        + t_q * t_k * heads * key_dim
        + t_q * t_v * heads * value_dim
        + t_q * heads * value_dim * d_out
    )
