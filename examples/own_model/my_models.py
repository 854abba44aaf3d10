"""Your own Keras 3 model, benchmarked by the harness: a worked example.

The harness imports this module in its worker (the scenario's ``python_path = ["."]`` puts this
folder on the path), calls ``build(input_shape=..., num_classes=..., settings=...)`` and gets an
*uncompiled* ``keras.Model``; it compiles it with the scenario's optimizer, loss and metrics,
and trains, evaluates, saves and reloads it under each backend exactly as it does its own
models. ``input_shape`` and ``num_classes`` are the dataset's: (28, 28, 1) and 10 for the
built-in ones, (8, 8, 1) and 10 for my_data.py's digits.

Write it with ``keras`` only (no backend imports), and register custom layers with
``keras.saving.register_keras_serializable`` so that a saved ``.keras`` file can be loaded
again (an unregistered one is reported as a reload failure, with Keras' reason).
"""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="my_models")
class Rescale(keras.layers.Layer):
    """A custom layer: ``inputs * factor + offset`` (by default [0, 1] pixels to [-1, 1])."""

    def __init__(self, factor: float = 2.0, offset: float = -1.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor
        self.offset = offset

    def call(self, inputs):
        return inputs * self.factor + self.offset

    def get_config(self):
        return {**super().get_config(), "factor": self.factor, "offset": self.offset}


def build(input_shape, num_classes, settings):
    """A small convnet with a custom layer.

    Args:
        input_shape: one sample's shape, e.g. (28, 28, 1) or (8, 8, 1).
        num_classes: the number of labels; the output must give one probability each.
        settings: the cell's settings (batch_size, optimizer, seed, ...), to adapt to if you
            like.
    """
    del settings  # this model is the same in every cell
    inputs = keras.Input(shape=input_shape)
    x = Rescale(name="rescale")(inputs)
    x = keras.layers.Conv2D(16, 3, activation="relu")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(32, activation="relu")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="my_convnet")
