"""The user's own dataset: ``dataset = "package.module:function"`` in a scenario.

The worker calls ``function(settings=<the cell's settings>)``, which returns either

- arrays, as keras' dataset loaders do: ``((x_train, y_train), (x_test, y_test))``; every
  pipeline of the harness runs over them (uint8 arrays get the tutorial's preprocessing,
  others are fed as they are); or
- its own pipeline: ``(train, test)``, each a ``keras.utils.PyDataset`` or a
  ``tf.data.Dataset`` of ``(x, y)`` batches of the cell's ``batch_size``. The training batches
  are counted once, untimed, before anything is measured; the test batches are gathered into
  arrays (evaluate and predict, and the reload check, then see the same samples in the same
  order every time). Such a cell runs with the pipeline of the same kind (``pydataset`` or
  ``tf.data``) only; any other is unsupported, with the reason.

Labels are class ids (N,) or one-hot (N, classes); the number of classes comes from them.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from .data import Dataset
from .imports import import_ref, why

FORMS = {"pydataset": "keras.utils.PyDataset", "tf.data": "tf.data.Dataset"}
EXPECTED = (
    "((x_train, y_train), (x_test, y_test)) arrays, or (train, test) as keras.utils.PyDataset "
    "or tf.data.Dataset batches of (x, y)"
)


class DataRefError(RuntimeError):
    """A dataset import reference that gives no usable data: one line, with why."""


def load(
    ref: str,
    python_path: tuple[str, ...],
    settings: dict[str, Any],
    *,
    batch_size: int,
    train_samples: int | None = None,
    test_samples: int | None = None,
) -> Dataset:
    """Calls the user's dataset function and checks what it returns.

    Raises:
        DataRefError: the module or function is missing, the function fails, or what it
            returns is not data the harness can train on.
    """
    function = import_ref(ref, python_path, "dataset", DataRefError)
    name = ref.partition(":")[2]
    try:
        got = function(settings=settings)
    except Exception as exc:
        raise DataRefError(f"dataset {ref}: {name} raised {why(exc)}") from None
    module = sys.modules.get(getattr(function, "__module__", None) or "")
    source = f"{ref} ({getattr(module, '__file__', None) or 'no file'})"
    if not isinstance(got, tuple | list) or len(got) != 2:
        raise DataRefError(f"dataset {ref}: {name} returned {_kind(got)}; expected {EXPECTED}")
    train, test = got
    if _form(train) and _form(test):
        ds = _from_objects(ref, train, test, batch_size, train_samples)
    elif all(isinstance(s, tuple | list) and len(s) == 2 for s in (train, test)):
        ds = _from_arrays(ref, train, test, train_samples, test_samples)
    else:
        raise DataRefError(
            f"dataset {ref}: {name} returned ({_kind(train)}, {_kind(test)}); expected {EXPECTED}"
        )
    if test_samples is not None:
        ds.x_test, ds.y_test = ds.x_test[:test_samples], ds.y_test[:test_samples]
    ds.source = source
    return ds


def _kind(value: Any) -> str:
    if isinstance(value, tuple | list):
        return f"a {type(value).__name__} of {len(value)}"
    return type(value).__name__


def _form(value: Any) -> str | None:
    """The pipeline a dataset object is ("pydataset", "tf.data"), or None."""
    import keras

    if isinstance(value, keras.utils.PyDataset):
        return "pydataset"
    module = type(value).__module__ or ""
    if module.startswith("tensorflow") and hasattr(value, "element_spec"):
        return "tf.data"
    return None


def _labels(ref: str, split: str, y: np.ndarray, n: int) -> None:
    if len(y) != n:
        raise DataRefError(f"dataset {ref}: {split} has {n} samples but {len(y)} labels")
    if y.ndim == 1 and not np.issubdtype(y.dtype, np.integer):
        raise DataRefError(
            f"dataset {ref}: {split} labels are {y.dtype}, not class ids (integers) or one-hot"
        )
    if y.ndim not in (1, 2) or (y.ndim == 1 and y.size and y.min() < 0):
        raise DataRefError(
            f"dataset {ref}: {split} labels of shape {y.shape} are not class ids (N,) from 0, "
            "or one-hot (N, classes)"
        )


def _num_classes(ref: str, ys: list[np.ndarray]) -> int:
    if ys[0].ndim == 2:
        widths = {int(y.shape[1]) for y in ys}
        if len(widths) > 1:
            raise DataRefError(f"dataset {ref}: one-hot labels of widths {sorted(widths)}")
        return widths.pop()
    if any(y.ndim != 1 for y in ys):
        raise DataRefError(f"dataset {ref}: class ids in one split, one-hot labels in the other")
    return int(max(int(y.max()) for y in ys if y.size)) + 1


def _from_arrays(ref, train, test, train_samples, test_samples) -> Dataset:
    try:
        (x_train, y_train), (x_test, y_test) = (
            (np.asarray(x), np.asarray(y)) for x, y in (train, test)
        )
    except Exception as exc:
        raise DataRefError(f"dataset {ref}: its splits are not arrays: {why(exc)}") from None
    if train_samples is not None:
        x_train, y_train = x_train[:train_samples], y_train[:train_samples]
    for split, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        if x.ndim < 2 or not len(x):
            raise DataRefError(
                f"dataset {ref}: {split} x has shape {x.shape}; expected (samples, ...) with "
                "at least one sample"
            )
        if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
            raise DataRefError(f"dataset {ref}: {split} x holds {x.dtype}, not numbers")
        _labels(ref, split, y, len(x))
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DataRefError(
            f"dataset {ref}: train samples of shape {x_train.shape[1:]}, test samples of "
            f"shape {x_test.shape[1:]}"
        )
    num_classes = _num_classes(ref, [y_train, y_test])
    return Dataset(ref, "", x_train, y_train, x_test, y_test, num_classes=num_classes)


def _batches(ref: str, split: str, obj: Any, form: str):
    """Every (x, y) batch of a PyDataset or tf.data.Dataset, as numpy arrays."""
    if form == "pydataset":
        try:
            count = obj.num_batches
        except NotImplementedError:  # neither __len__ nor num_batches
            count = None
        if count is None:
            raise DataRefError(
                f"dataset {ref}: the {split} PyDataset has no length (an endless one cannot be "
                "counted): give it __len__"
            )
        items = (obj[i] for i in range(count))
    else:
        import tensorflow as tf

        if obj.cardinality() == tf.data.INFINITE_CARDINALITY:
            raise DataRefError(
                f"dataset {ref}: the {split} tf.data.Dataset repeats for ever: drop .repeat()"
            )
        items = obj.as_numpy_iterator()
    for i, item in enumerate(items):
        if not isinstance(item, tuple | list) or len(item) != 2:
            raise DataRefError(
                f"dataset {ref}: {split} batch {i} is {_kind(item)}, not an (x, y) pair"
            )
        yield np.asarray(item[0]), np.asarray(item[1])


def _from_objects(ref, train, test, batch_size, train_samples) -> Dataset:
    form = _form(train)
    if _form(test) != form:
        raise DataRefError(
            f"dataset {ref}: train is a {FORMS[form]}, test a {FORMS[_form(test)]}: "
            "give both as one kind"
        )
    sizes, shapes, train_ys, last = [], set(), [], None
    for x, y in _batches(ref, "train", train, form):
        _labels(ref, "train", y, len(x))
        sizes.append(len(x))
        shapes.add(x.shape[1:])
        train_ys.append(y)
        last = (x, y)
    if not sizes:
        raise DataRefError(f"dataset {ref}: the train dataset has no batches")
    wrong = next((i for i, n in enumerate(sizes[:-1]) if n != batch_size), None)
    if wrong is not None or sizes[-1] > batch_size:
        i = wrong if wrong is not None else len(sizes) - 1
        raise DataRefError(
            f"dataset {ref}: train batch {i} holds {sizes[i]} samples, not batch_size "
            f"{batch_size}: build the batches with settings['batch_size']"
        )
    if train_samples is not None and sum(sizes) > train_samples:
        raise DataRefError(
            f"dataset {ref}: {sum(sizes)} training samples, more than train_samples "
            f"{train_samples}: honour settings['train_samples'] (a dataset object cannot be cut "
            "here without changing its pipeline)"
        )
    test_batches = list(_batches(ref, "test", test, form))
    if not test_batches:
        raise DataRefError(f"dataset {ref}: the test dataset has no batches")
    for x, y in test_batches:
        _labels(ref, "test", y, len(x))
        shapes.add(x.shape[1:])
    if len(shapes) > 1:
        raise DataRefError(f"dataset {ref}: samples of several shapes {sorted(shapes)}")
    x_test = np.concatenate([x for x, _ in test_batches])
    y_test = np.concatenate([y for _, y in test_batches])
    num_classes = _num_classes(ref, [np.concatenate(train_ys), y_test])
    return Dataset(
        ref,
        "",
        None,
        None,
        x_test,
        y_test,
        num_classes=num_classes,
        train_object=train,
        train_batches=sizes,
        train_last=last,
        ready=True,
        form=FORMS[form],
    )


def warmup_feed(ds: Dataset, steps: int) -> tuple[Any, int]:
    """The first ``steps`` training batches of the user's dataset object, and its last (so
    that the measured fit traces no new batch shape), with the samples they hold."""
    count = len(ds.train_batches)
    index = list(range(min(steps, count)))
    if count - 1 not in index:
        index.append(count - 1)
    samples = sum(ds.train_batches[i] for i in index)
    obj = ds.train_object
    if ds.form == FORMS["pydataset"]:
        return _subset(obj, index), samples
    import tensorflow as tf

    first = obj.take(min(steps, count))
    if len(index) == min(steps, count):
        return first, samples
    # the last batch, kept from the count (skipping to it would run the whole epoch's pipeline)
    return first.concatenate(tf.data.Dataset.from_tensors(ds.train_last)), samples


def _subset(obj, index: list[int]):
    import keras

    class Subset(keras.utils.PyDataset):
        """Some batches of the user's PyDataset, by index."""

        def __init__(self):
            super().__init__()

        def __len__(self):
            return len(index)

        def __getitem__(self, i):
            return obj[index[i]]

    return Subset()
