"""Your own dataset, benchmarked by the harness: a worked example.

The harness imports this module in its worker (on the scenario's ``python_path``) and calls
``digits(settings=...)`` once per cell. It returns arrays the way keras' dataset loaders do,
``((x_train, y_train), (x_test, y_test))``, and the scenario's pipeline (numpy, pydataset,
tf.data or torch) batches and shuffles them. uint8 arrays would get the tutorial's
preprocessing (scaled to [0, 1]); these are float32, so they are fed as they are. The model is
built for their sample shape, here (8, 8, 1), and for the classes the labels hold, here 10.

Your own pipeline instead: return ``(train, test)``, each a ``keras.utils.PyDataset`` or a
``tf.data.Dataset`` of ``(x, y)`` batches of ``settings["batch_size"]`` samples, and run the
cells with ``pipeline = "pydataset"`` or ``"tf.data"`` (``digits_batches`` below).
"""

from __future__ import annotations

import math

import keras
import numpy as np


def digits(settings):
    """scikit-learn's handwritten digits at their own 8x8 size (1,797 images), split
    1,347 / 450 in an order fixed by the cell's seed.

    Args:
        settings: the cell's settings (seed, batch_size, train_samples, ...).
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.images / 16.0).astype("float32")[..., None]  # (1797, 8, 8, 1), in [0, 1]
    y = bunch.target.astype("int64")
    order = np.random.default_rng(settings["seed"]).permutation(len(x))
    x, y = x[order], y[order]
    return (x[:1347], y[:1347]), (x[1347:], y[1347:])


class Batches(keras.utils.PyDataset):
    """(x, y) batches of arrays, reshuffled every epoch: a pipeline of your own."""

    def __init__(self, x, y, batch_size, shuffle, seed):
        super().__init__()
        self.x, self.y, self.batch_size, self.shuffle = x, y, batch_size, shuffle
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(len(x)) if shuffle else np.arange(len(x))

    def __len__(self):
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, index):
        idx = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        return self.x[idx], self.y[idx]

    def on_epoch_end(self):
        if self.shuffle:
            self.order = self.rng.permutation(len(self.x))


def digits_batches(settings):
    """The same digits, as your own keras.utils.PyDataset (run with pipeline = "pydataset")."""
    (x_train, y_train), (x_test, y_test) = digits(settings)
    batch, seed = settings["batch_size"], settings["seed"]
    return (
        Batches(x_train, y_train, batch, shuffle=True, seed=seed),
        Batches(x_test, y_test, batch, shuffle=False, seed=seed),
    )
