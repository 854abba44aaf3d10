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

import copy
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


# A dataset object yielding more training samples than this, with no train_samples, is taken
# for an endless one (a tf.data pipeline of unknown cardinality) rather than counted for ever.
MAX_SAMPLES = 100_000_000


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
    try:  # a copy: what the function does to it must not change the recorded cell
        got = function(settings=copy.deepcopy(settings))
    except (Exception, SystemExit) as exc:  # sys.exit("no data") too: a message, not an end
        raise DataRefError(f"dataset {ref}: {name} raised {why(exc)}") from None
    module = sys.modules.get(getattr(function, "__module__", None) or "")
    source = f"{ref} ({getattr(module, '__file__', None) or 'no file'})"
    if not isinstance(got, tuple | list) or len(got) != 2:
        raise DataRefError(f"dataset {ref}: {name} returned {_kind(got)}; expected {EXPECTED}")
    train, test = got
    try:
        if _form(train) and _form(test):
            ds = _from_objects(ref, train, test, batch_size, train_samples, test_samples)
        elif all(isinstance(s, tuple | list) and len(s) == 2 for s in (train, test)):
            ds = _from_arrays(ref, train, test, train_samples)
        else:
            raise DataRefError(
                f"dataset {ref}: {name} returned ({_kind(train)}, {_kind(test)}); expected "
                f"{EXPECTED}"
            )
    except DataRefError:
        raise
    except Exception as exc:  # the user's batches (or what they hold) failing in a check
        raise DataRefError(f"dataset {ref}: {why(exc)}") from None
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


# A model's last layer has one unit per class: more than this is a label mistake, not a model.
MAX_CLASSES = 100_000


def _labels(ref: str, split: str, y: np.ndarray, n: int) -> str:
    """Checks one split's labels; returns their form: "class ids" ((N,) or (N, 1) integers
    from 0) or "one-hot" ((N, classes) rows of probabilities summing to 1)."""
    if y.ndim == 0 or len(y) != n:
        raise DataRefError(
            f"dataset {ref}: {split} has {n} samples but {len(y) if y.ndim else 'no'} labels"
        )
    if y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1):  # (N, 1): keras' cifar10 loader
        if not np.issubdtype(y.dtype, np.integer):
            raise DataRefError(
                f"dataset {ref}: {split} labels are {y.dtype}, not class ids (integers) or one-hot"
            )
        if y.size and y.min() < 0:
            raise DataRefError(f"dataset {ref}: {split} labels hold a negative class id")
        return "class ids"
    if y.ndim == 2:
        rows = y.astype(np.float64)
        if not (np.all(np.isfinite(rows)) and rows.min() >= 0 and rows.max() <= 1) or not (
            np.allclose(rows.sum(axis=1), 1.0, atol=1e-3)
        ):
            raise DataRefError(
                f"dataset {ref}: {split} labels of shape {y.shape} are not one-hot (rows of "
                "values from 0 to 1 summing to 1)"
            )
        return "one-hot"
    raise DataRefError(
        f"dataset {ref}: {split} labels of shape {y.shape} are not class ids (N,) from 0, "
        "or one-hot (N, classes)"
    )


def _one_kind(ref: str, forms: set[str]) -> None:
    if len(forms) > 1:
        raise DataRefError(f"dataset {ref}: class ids in some labels, one-hot rows in others")


def _num_classes(ref: str, ys: list[np.ndarray], forms: set[str]) -> int:
    """The classes the labels name (ids: the largest + 1; one-hot: the width), at least 2."""
    _one_kind(ref, forms)
    if forms == {"one-hot"}:
        widths = {int(y.shape[1]) for y in ys}
        if len(widths) > 1:
            raise DataRefError(f"dataset {ref}: one-hot labels of widths {sorted(widths)}")
        count = widths.pop()
    else:
        count = max(int(y.max()) for y in ys if y.size) + 1
    if count < 2 or count > MAX_CLASSES:
        raise DataRefError(
            f"dataset {ref}: its labels name {count} class(es); a classifier needs 2 to "
            f"{MAX_CLASSES:,}"
        )
    return count


def _ids_flat(y: np.ndarray) -> np.ndarray:
    """Class ids (N, 1), as keras' cifar10 loader gives them, as (N,)."""
    return y[:, 0] if y.ndim == 2 and y.shape[1] == 1 else y


def _samples(ref: str, split: str, x: np.ndarray) -> None:
    """One split's (or batch's) samples: numbers, with at least one axis per sample."""
    if x.ndim < 2 or not len(x):
        raise DataRefError(
            f"dataset {ref}: {split} x has shape {x.shape}; expected (samples, ...) with at "
            "least one sample"
        )
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
        raise DataRefError(f"dataset {ref}: {split} x holds {x.dtype}, not numbers")


def _from_arrays(ref, train, test, train_samples) -> Dataset:
    try:
        (x_train, y_train), (x_test, y_test) = (
            (np.asarray(x), np.asarray(y)) for x, y in (train, test)
        )
    except Exception as exc:
        raise DataRefError(f"dataset {ref}: its splits are not arrays: {why(exc)}") from None
    forms = set()
    for split, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        _samples(ref, split, x)
        forms.add(_labels(ref, split, y, len(x)))  # before any cut: x and y must pair up
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DataRefError(
            f"dataset {ref}: train samples of shape {x_train.shape[1:]}, test samples of "
            f"shape {x_test.shape[1:]}"
        )
    y_train, y_test = _ids_flat(y_train), _ids_flat(y_test)
    num_classes = _num_classes(ref, [y_train, y_test], forms)  # of every label, before a cut
    if train_samples is not None:
        x_train, y_train = x_train[:train_samples], y_train[:train_samples]
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


def _from_objects(ref, train, test, batch_size, train_samples, test_samples) -> Dataset:
    form = _form(train)
    if _form(test) != form:
        raise DataRefError(
            f"dataset {ref}: train is a {FORMS[form]}, test a {FORMS[_form(test)]}: "
            "give both as one kind"
        )
    sizes, shapes, train_ys, forms, last, total = [], set(), [], set(), None, 0
    for x, y in _batches(ref, "train", train, form):
        _samples(ref, f"train batch {len(sizes)}", x)
        forms.add(_labels(ref, "train", y, len(x)))
        _one_kind(ref, forms)
        sizes.append(len(x))
        total += len(x)
        shapes.add(x.shape[1:])
        train_ys.append(_ids_flat(y))
        last = (x, y)
        if total > (train_samples or MAX_SAMPLES):  # an endless one too
            raise DataRefError(
                f"dataset {ref}: more than {train_samples or MAX_SAMPLES:,} training samples "
                + ("" if train_samples else "(an endless dataset?) ")
                + "; honour settings['train_samples'] (a dataset object cannot be cut here "
                "without changing its pipeline)"
            )
    if not sizes:
        raise DataRefError(f"dataset {ref}: the train dataset has no batches")
    wrong = next((i for i, n in enumerate(sizes[:-1]) if n != batch_size), None)
    if wrong is not None or sizes[-1] > batch_size:
        i = wrong if wrong is not None else len(sizes) - 1
        raise DataRefError(
            f"dataset {ref}: train batch {i} holds {sizes[i]} samples, not batch_size "
            f"{batch_size}: build the batches with settings['batch_size']"
        )
    test_batches, gathered = [], 0
    for x, y in _batches(ref, "test", test, form):
        test_batches.append((x, y))
        gathered += len(x)
        if test_samples is not None and gathered >= test_samples:
            break  # the test split is gathered into arrays, and cut as arrays are
        if gathered > MAX_SAMPLES:
            raise DataRefError(
                f"dataset {ref}: more than {MAX_SAMPLES:,} test samples (an endless dataset?)"
            )
    if not test_batches:
        raise DataRefError(f"dataset {ref}: the test dataset has no batches")
    for i, (x, y) in enumerate(test_batches):
        _samples(ref, f"test batch {i}", x)
        forms.add(_labels(ref, "test", y, len(x)))
        _one_kind(ref, forms)
        shapes.add(x.shape[1:])
    if len(shapes) > 1:
        raise DataRefError(f"dataset {ref}: samples of several shapes {sorted(shapes)}")
    x_test = np.concatenate([x for x, _ in test_batches])
    y_test = np.concatenate([_ids_flat(y) for _, y in test_batches])
    num_classes = _num_classes(ref, [np.concatenate(train_ys), y_test], forms)
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
