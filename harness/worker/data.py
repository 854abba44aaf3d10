"""Datasets and input pipelines.

The built-in datasets come back as raw uint8 images (N, 28, 28) and int labels, the way keras'
MNIST loader gives them; every pipeline does the tutorial's preprocessing (uint8 scaled to
[0, 1], a channel axis added to grayscale images) in its own way, and passes other arrays (the
user's floats) as they are. Which data and which pipeline ran is always recorded: nothing is
substituted silently. The user's own datasets are in userdata.py.

Longer than 400 lines, and one concern: each built-in dataset and each of the four pipelines
is short, and they share the preprocessing that makes them comparable.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import math
import os
import socket
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import one_line

MNIST_ENV = "HARNESS_MNIST"


class DataUnavailable(RuntimeError):
    """The requested data cannot be had here; the message says how to provide it."""


class PipelineUnsupported(RuntimeError):
    """The requested pipeline cannot run in this environment; the message says why."""


@dataclasses.dataclass
class Dataset:
    name: str
    source: str
    x_train: np.ndarray | None
    y_train: np.ndarray | None
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int = 10
    # The user's own keras.utils.PyDataset or tf.data.Dataset of training batches (then
    # x_train and y_train are None), with the sizes of its batches, counted once.
    train_object: Any = None
    train_batches: list[int] | None = None
    train_last: tuple[np.ndarray, np.ndarray] | None = None  # its last batch, for the warm-up
    # Arrays fed as they are, never preprocessed (the user's test batches, gathered)
    ready: bool = False
    form: str = "arrays"  # what the dataset gave: arrays, keras.utils.PyDataset, tf.data.Dataset

    @property
    def n_train(self) -> int:
        if self.train_batches is not None:
            return sum(self.train_batches)
        return len(self.x_train)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """One sample's shape as the model sees it (after preprocessing)."""
        if self.ready:
            return tuple(int(d) for d in self.x_test.shape[1:])
        return tuple(int(d) for d in preprocess(self.x_test[:1]).shape[1:])

    @property
    def labels(self) -> str:
        """ "class ids" or "one-hot"."""
        return "one-hot" if self.y_test.ndim == 2 else "class ids"

    def describe(self) -> dict[str, Any]:
        return {
            "dataset": self.name,
            "source": self.source,
            "form": self.form,
            "train_samples": int(self.n_train),
            "test_samples": int(len(self.x_test)),
            "image_shape": list(self.x_test.shape[1:]),  # one sample, as the dataset gives it
            "input_shape": list(self.input_shape),  # as the model sees it
            "num_classes": self.num_classes,
            "labels": self.labels,
            "preprocessing": "none: the dataset's own batches" if self.ready else (
                "none: not uint8, fed as given" if self.x_test.dtype != np.uint8 else
                "uint8 scaled to [0, 1] float32" + (
                    ", a channel axis added" if self.x_test.ndim == 3 else "")
            ),
        }  # fmt: skip


def load_dataset(
    name: str,
    *,
    seed: int = 0,
    train_samples: int | None = None,
    test_samples: int | None = None,
    data_path: str | None = None,
) -> Dataset:
    """Loads a dataset by scenario name, capped at the requested sizes.

    Args:
        name: "mnist", "digits" or "synthetic".
        seed: seeds the synthetic data (the real datasets are fixed).
        train_samples: at most this many training samples (synthetic: exactly; default 60000).
        test_samples: likewise for the test split (synthetic default 10000).
        data_path: a local mnist.npz for "mnist" (else $HARNESS_MNIST, else keras' loader).

    Raises:
        DataUnavailable: MNIST cannot be read or downloaded.
    """
    if name == "mnist":
        ds = _mnist(data_path)
    elif name == "digits":
        ds = _digits()
    elif name == "synthetic":
        ds = synthetic(train_samples or 60000, test_samples or 10000, seed=seed)
    else:
        raise ValueError(f"unknown dataset {name!r}")
    if train_samples is not None:
        ds.x_train, ds.y_train = ds.x_train[:train_samples], ds.y_train[:train_samples]
    if test_samples is not None:
        ds.x_test, ds.y_test = ds.x_test[:test_samples], ds.y_test[:test_samples]
    return ds


def load_for_cell(cell: Any) -> Dataset:
    """The built-in dataset a scenario cell names, at its seed, sizes and local file."""
    return load_dataset(
        cell.dataset,
        seed=cell.seed,
        train_samples=cell.train_samples,
        test_samples=cell.test_samples,
        data_path=cell.data_path,
    )


def _mnist(data_path: str | None) -> Dataset:
    path = data_path or os.environ.get(MNIST_ENV)
    if path:
        return _mnist_npz(Path(path))
    # keras' own loader: it reads ~/.keras/datasets/mnist.npz if cached, else downloads it.
    import keras

    cached = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets" / "mnist.npz"
    old_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(30)  # an unreachable network must fail, not hang the cell
    try:
        (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    except Exception as exc:  # keras raises plain Exception for a failed fetch
        raise DataUnavailable(
            f"MNIST is not available: keras' loader failed ({one_line(exc)}). Offline, put "
            f"mnist.npz at {cached}, or set {MNIST_ENV}=/path/to/mnist.npz, or data_path in the "
            "scenario"
        ) from None
    finally:
        socket.setdefaulttimeout(old_timeout)
    return Dataset("mnist", f"keras.datasets.mnist ({cached})", x_train, y_train, x_test, y_test)


def _mnist_npz(path: Path) -> Dataset:
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in f.files]
            if missing:
                raise DataUnavailable(
                    f"MNIST file {path} lacks array(s) {', '.join(missing)}; expected keras' "
                    "layout (x_train, y_train, x_test, y_test)"
                )
            arrays = {k: f[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    except FileNotFoundError:
        raise DataUnavailable(f"MNIST file {path} does not exist") from None
    except KeyError as exc:
        raise DataUnavailable(
            f"MNIST file {path} lacks array {exc}; expected keras' layout"
        ) from None
    except Exception as exc:
        raise DataUnavailable(f"MNIST file {path} is unreadable: {one_line(exc)}") from None
    if arrays["x_train"].shape[1:] != (28, 28):
        raise DataUnavailable(f"MNIST file {path}: x_train has shape {arrays['x_train'].shape}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    source = f"file {path.resolve()} (sha256 {digest})"
    return Dataset(
        "mnist", source, arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"]
    )


def _resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Bilinear interpolation as a matrix: ``M @ v`` resamples a length-n_in vector to n_out."""
    m = np.zeros((n_out, n_in))
    for i in range(n_out):
        pos = (i + 0.5) * n_in / n_out - 0.5
        lo = math.floor(pos)
        frac = pos - lo
        for idx, w in ((lo, 1 - frac), (lo + 1, frac)):
            m[i, min(max(idx, 0), n_in - 1)] += w
    return m


def upscale_digits(images: np.ndarray) -> np.ndarray:
    """8x8 images with values 0..16 -> MNIST-like 28x28 uint8.

    Like MNIST, the digit fills a 20x20 box centred in a 28x28 frame.
    """
    m = _resize_matrix(8, 20)
    big = np.einsum("ij,njk,lk->nil", m, images.astype(np.float64), m)
    big = np.clip(big * (255.0 / 16.0), 0, 255)
    out = np.zeros((len(images), 28, 28), dtype=np.uint8)
    out[:, 4:24, 4:24] = np.rint(big).astype(np.uint8)
    return out


def _digits() -> Dataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = upscale_digits(bunch.images)
    labels = bunch.target.astype(np.uint8)
    # A fixed, class-balanced split (same for every cell and backend): 450 test, 1347 train.
    rng = np.random.default_rng(1234)
    test_idx = []
    for cls in range(10):
        idx = np.flatnonzero(labels == cls)
        test_idx.extend(rng.choice(idx, size=45, replace=False))
    test_mask = np.zeros(len(labels), dtype=bool)
    test_mask[test_idx] = True
    train_order = rng.permutation(np.flatnonzero(~test_mask))
    test_order = rng.permutation(np.flatnonzero(test_mask))
    import sklearn

    return Dataset(
        "digits",
        f"sklearn.datasets.load_digits (scikit-learn {sklearn.__version__}, 8x8 upscaled to 28x28)",
        images[train_order],
        labels[train_order],
        images[test_order],
        labels[test_order],
    )


def synthetic(n_train: int, n_test: int, *, seed: int = 0) -> Dataset:
    """MNIST-shaped, seeded data: a fixed blob pattern per class plus noise, so it is learnable
    and accuracy still means something, at any size."""
    rng = np.random.default_rng(seed)
    templates = rng.integers(0, 256, size=(10, 28, 28)).astype(np.int16)

    def make(n: int) -> tuple[np.ndarray, np.ndarray]:
        labels = rng.integers(0, 10, size=n).astype(np.uint8)
        noise = rng.integers(-96, 97, size=(n, 28, 28), dtype=np.int16)
        images = np.clip(templates[labels] + noise, 0, 255).astype(np.uint8)
        return images, labels

    x_train, y_train = make(n_train)
    x_test, y_test = make(n_test)
    return Dataset("synthetic", f"synthetic (seed {seed})", x_train, y_train, x_test, y_test)


# --- pipelines ---------------------------------------------------------------------------------


def preprocess(images: np.ndarray) -> np.ndarray:
    """The tutorial's preprocessing: uint8 scaled to [0, 1] float32, and grayscale images
    (N, H, W) given their channel axis (N, H, W, 1). Other arrays (floats, token ids) are the
    user's, fed as they are."""
    if images.dtype != np.uint8:
        return images
    out = images.astype(np.float32) / 255.0
    return out[..., None] if out.ndim == 3 else out


@dataclasses.dataclass
class Feed:
    """What to hand to fit/evaluate/predict: ``x`` (and ``y`` for arrays), and keyword args."""

    x: Any
    y: Any = None
    fit_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    steps: int = 0


def pipeline_available(kind: str) -> str | None:
    """None if the pipeline can run here, else the reason it cannot."""
    needs = {"tf.data": "tensorflow", "torch": "torch"}.get(kind)
    if needs and importlib.util.find_spec(needs) is None:
        return f"the {kind} pipeline needs the {needs} package, which is not installed here"
    return None


def make_feed(
    kind: str,
    images: np.ndarray,
    labels: np.ndarray | None,
    *,
    batch_size: int,
    shuffle: bool,
    seed: int,
    threads: int | None = None,
    prepare: bool = True,
) -> Feed:
    """Builds an input pipeline of the given kind over raw uint8 images.

    Args:
        kind: "numpy", "pydataset", "tf.data" or "torch".
        images: uint8 array (N, 28, 28).
        labels: labels, or None for predict.
        batch_size: samples per batch.
        shuffle: reshuffle every epoch (training) or keep order (evaluate, predict).
        seed: seeds the shuffle, so two runs see the same order.
        threads: the scenario's thread count: tf.data's own pool gets as many (its default
            is TensorFlow's pool, one thread per core, whatever the backend was told).
        prepare: apply ``preprocess``; False: the arrays are fed as they are.

    Raises:
        PipelineUnsupported: the pipeline's package is not installed.
    """
    reason = pipeline_available(kind)
    if reason:
        raise PipelineUnsupported(reason)
    steps = math.ceil(len(images) / batch_size)
    prep = preprocess if prepare else _as_given
    if kind == "numpy":
        kwargs: dict[str, Any] = {"batch_size": batch_size}
        if labels is not None:
            kwargs["shuffle"] = shuffle
        return Feed(prep(images), labels, kwargs, steps)
    if kind == "pydataset":
        return Feed(_pydataset(images, labels, batch_size, shuffle, seed, prep), steps=steps)
    if kind == "tf.data":
        feed = _tf_data(images, labels, batch_size, shuffle, seed, threads, prepare)
        return Feed(feed, steps=steps)
    if kind == "torch":
        return Feed(_torch_loader(images, labels, batch_size, shuffle, seed, prep), steps=steps)
    raise ValueError(f"unknown pipeline {kind!r}")


def _as_given(images: np.ndarray) -> np.ndarray:
    return images


def _pydataset(images, labels, batch_size, shuffle, seed, prep=preprocess):
    import keras

    class MnistSequence(keras.utils.PyDataset):
        """Batches built on the fly from uint8 arrays (preprocessing per batch)."""

        def __init__(self):
            super().__init__(workers=1, use_multiprocessing=False)
            self.rng = np.random.default_rng(seed)
            self.order = self.rng.permutation(len(images)) if shuffle else np.arange(len(images))

        def __len__(self):
            return math.ceil(len(images) / batch_size)

        def __getitem__(self, index):
            idx = self.order[index * batch_size : (index + 1) * batch_size]
            x = prep(images[idx])
            return x if labels is None else (x, labels[idx])

        def on_epoch_end(self):
            if shuffle:
                self.order = self.rng.permutation(len(images))

    return MnistSequence()


def _tf_data(images, labels, batch_size, shuffle, seed, threads=None, prepare=True):
    """The tutorial's pipeline: from_tensor_slices -> map -> shuffle -> batch -> prefetch."""
    import tensorflow as tf

    def scale(image, label=None):  # preprocess(), one sample at a time
        image = tf.cast(image, tf.float32) / 255.0
        if image.shape.rank == 2:
            image = image[..., None]
        return image if label is None else (image, label)

    ds = tf.data.Dataset.from_tensor_slices(images if labels is None else (images, labels))
    if prepare and images.dtype == np.uint8:
        ds = ds.map(scale, num_parallel_calls=tf.data.AUTOTUNE)
    if shuffle:
        ds = ds.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
    if threads is not None:
        options = tf.data.Options()
        options.threading.private_threadpool_size = threads
        ds = ds.with_options(options)
    return ds


def tf_data_threads(dataset) -> int | None:
    """The size of a tf.data pipeline's own thread pool; None: TensorFlow's shared one."""
    return dataset.options().threading.private_threadpool_size or None


def _torch_loader(images, labels, batch_size, shuffle, seed, prep=preprocess):
    import torch
    from torch.utils.data import DataLoader, Dataset

    class MnistTorch(Dataset):
        def __len__(self):
            return len(images)

        def __getitem__(self, i):
            x = prep(images[i : i + 1])[0]
            # Without labels, a sample is (x,), not a bare x: Keras 3.15 under JAX unpacks a
            # bare batch tensor from a DataLoader as a tuple of samples and fails in predict.
            if labels is None:
                return (x,)
            return x, (labels[i] if labels.ndim > 1 else np.int64(labels[i]))

    generator = torch.Generator()
    generator.manual_seed(seed)
    return DataLoader(
        MnistTorch(), batch_size=batch_size, shuffle=shuffle, generator=generator, num_workers=0
    )
