"""The names a scenario may use, and what the harness knows of them without importing keras.

Datasets, models, input pipelines, precisions, optimizers, losses and metrics; the labels each
loss and metric takes; the real datasets' sizes; and :class:`Named`, a Keras name with its
constructor's arguments (an optimizer or a loss). Kept here so a typo is caught in the CLI, in
milliseconds; the worker builds the Keras objects from these names.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

DATASETS = ("mnist", "digits", "synthetic")
# Or the user's own, "package.module:function", called in the worker with the cell's settings
# and returning train and test arrays, or a keras.utils.PyDataset / tf.data.Dataset of each.
# Built-in models (harness/worker/model.py): the tutorial's classifier, and the classic Keras
# MNIST convnet, where convolutions dominate.
MODELS = ("mlp", "cnn")
# Or the user's own: "package.module:function", importable in the worker (installed, or found on
# the scenario's python_path).
REF_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
PIPELINES = ("numpy", "pydataset", "tf.data", "torch")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
# The optimizers a scenario may name, each with its class in keras.optimizers (the worker builds
# it from here); kept here so a typo is caught without importing keras.
OPTIMIZERS = {
    "sgd": "SGD",
    "adam": "Adam",
    "adamw": "AdamW",
    "rmsprop": "RMSprop",
    "adagrad": "Adagrad",
    "adadelta": "Adadelta",
    "adamax": "Adamax",
    "nadam": "Nadam",
    "ftrl": "Ftrl",
    "lion": "Lion",
}
# Classification losses by Keras name, each with its class in keras.losses; a table adds its
# constructor's arguments, e.g. { name = "categorical_crossentropy", label_smoothing = 0.1 }.
LOSSES = {
    "sparse_categorical_crossentropy": "SparseCategoricalCrossentropy",
    "categorical_crossentropy": "CategoricalCrossentropy",
    "categorical_focal_crossentropy": "CategoricalFocalCrossentropy",
    "categorical_hinge": "CategoricalHinge",
    "kl_divergence": "KLDivergence",
}
# Metrics by the names keras.metrics.get resolves (model.compile takes them as they are).
METRICS = (
    "accuracy",
    "sparse_categorical_accuracy",
    "categorical_accuracy",
    "sparse_top_k_categorical_accuracy",
    "top_k_categorical_accuracy",
    "sparse_categorical_crossentropy",
    "categorical_crossentropy",
    "kl_divergence",
    "auc",
)
# The labels each loss and metric takes: class ids (the built-in datasets' labels) or one-hot
# rows; the rest ("accuracy") take either. Keras trains on the wrong kind without a word for
# some of them (categorical_accuracy over class ids), or fails in fit.
FOR_CLASS_IDS = {
    "sparse_categorical_crossentropy",
    "sparse_categorical_accuracy",
    "sparse_top_k_categorical_accuracy",
}
FOR_ONE_HOT = (set(LOSSES) | set(METRICS)) - FOR_CLASS_IDS - {"accuracy"}
DEVICE_RE = re.compile(r"^(cpu|gpu|gpu:\d+)$")
# A scenario's name: it names a results folder.
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

# Samples per split of the real datasets, so an impossible batch size is caught before running.
DATASET_SIZES = {"mnist": (60000, 10000), "digits": (1347, 450)}
SYNTHETIC_DEFAULT_SIZES = (60000, 10000)


def is_ref(value: str) -> bool:
    """An import reference "package.module:function" (a built-in name has no colon)."""
    return bool(REF_RE.match(value))


def short(value: Any) -> str:
    """A value as a cell id shows it: a bool as on/off."""
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


# Argument names shortened in cell ids.
_ABBREV = {"learning_rate": "lr"}


@dataclasses.dataclass(frozen=True)
class Named:
    """An optimizer or a loss by Keras name, with keyword arguments for its constructor."""

    name: str
    kwargs: tuple[tuple[str, Any], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, **dict(self.kwargs)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Named:
        data = dict(data)
        name = data.pop("name")
        return cls(name, tuple(sorted(data.items())))

    @property
    def label(self) -> str:
        parts = [self.name] + [f"{_ABBREV.get(k, k)}{short(v)}" for k, v in self.kwargs]
        return "-".join(parts)
