"""Your own Keras 3 model, benchmarked by the harness: a worked example.

The harness imports this module in its worker (the scenario's ``python_path = ["."]`` puts this
folder on the path), calls ``build(input_shape=..., num_classes=..., settings=...)`` and gets an
*uncompiled* ``keras.Model``; it compiles it with the scenario's optimizer, and trains,
evaluates, saves and reloads it under each backend exactly as it does its own models.

Write it with ``keras`` only (no backend imports), and register custom layers with
``keras.saving.register_keras_serializable`` so that a saved ``.keras`` file can be loaded
again (an unregistered one is reported as a reload failure, with Keras' reason).
"""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="my_models")
class Rescale(keras.layers.Layer):
    """A custom layer: multiplies its input by a fixed factor (0-255 pixels to 0-1)."""

    def __init__(self, factor: float = 1 / 255, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, inputs):
        return inputs * self.factor

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


def build(input_shape, num_classes, settings):
    """A small convnet with a custom layer.

    Args:
        input_shape: one sample's shape, e.g. (28, 28, 1).
        num_classes: the number of labels; the output must give one probability each.
        settings: the cell's settings (batch_size, optimizer, seed, ...), to adapt to if you
            like.
    """
    del settings  # this model is the same in every cell
    inputs = keras.Input(shape=input_shape)
    x = Rescale(name="rescale")(inputs)
    x = keras.layers.Conv2D(16, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(32, activation="relu")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="my_convnet")
