"""Scenario files: load, validate in full, and expand the matrix into cells.

A scenario file is data (TOML), never code. Every key is checked before anything runs, and a
mistake becomes a :class:`ScenarioError` whose text is one line naming the file and the key.
This module imports no backend, so the CLI can validate files in milliseconds.
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
import json
import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .backends import ALIASES as BACKEND_ALIASES
from .backends import NAMES as BACKENDS
from .errors import UserError
from .results import RESERVED_FOLDERS

DATASETS = ("mnist", "digits", "synthetic")
# Or the user's own, "package.module:function", called in the worker with the cell's settings
# and returning train and test arrays, or a keras.utils.PyDataset / tf.data.Dataset of each.
# Built-in models (harness/worker/model.py): the tutorial's classifier, and the classic Keras
# MNIST convnet, where convolutions dominate.
MODELS = ("mlp", "cnn")
# Or the user's own: "package.module:function", importable in the worker (installed, or found on
# the scenario's python_path).
_REF_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
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
_DEVICE_RE = re.compile(r"^(cpu|gpu|gpu:\d+)$")

# Settings whose default changed when the harness learned them: a result or run recorded
# before then ran as this value, not as today's default.
BEFORE = {"min_time": 0.0}  # exactly `epochs`, before measurement windows had a minimum

# Samples per split of the real datasets, so an impossible batch size is caught before running.
DATASET_SIZES = {"mnist": (60000, 10000), "digits": (1347, 450)}
SYNTHETIC_DEFAULT_SIZES = (60000, 10000)


class ScenarioError(UserError):
    """A scenario file is unusable. ``str()`` is one line: ``FILE: key 'K': what is wrong``."""

    def __init__(self, path: str | Path, key: str | None, message: str):
        self.path = str(path)
        self.key = key
        self.message = message
        where = f"{self.path}: key '{key}': " if key else f"{self.path}: "
        super().__init__(where + message)


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
        parts = [self.name] + [f"{_ABBREV.get(k, k)}{_short(v)}" for k, v in self.kwargs]
        return "-".join(parts)


Optimizer = Named
_ABBREV = {"learning_rate": "lr"}


def _short(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


@dataclasses.dataclass(frozen=True)
class Cell:
    """One fully resolved benchmark configuration (one worker process per backend)."""

    scenario: str
    id: str
    model: str = "mlp"
    dataset: str = "synthetic"
    pipeline: str = "numpy"
    batch_size: int = 32
    optimizer: Named = Named("adam")
    loss: Named = Named("sparse_categorical_crossentropy")
    metrics: tuple[str, ...] = ("accuracy",)
    device: str = "cpu"
    epochs: int = 1
    repeats: int = 3
    seed: int = 0
    warmup_steps: int = 10
    train_samples: int | None = None
    test_samples: int | None = None
    data_path: str | None = None
    precision: str = "float32"
    jit_compile: str | bool = "auto"
    steps_per_execution: int = 1
    time_limit: float = 1800.0
    min_time: float = 1.0
    sample_interval: float = 1.0
    step_delay_ms: float = 0.0
    sync_every_step: bool = False
    threads: int | None = None
    tf32: bool | None = None
    jax_preallocate: bool = False
    # Folders (absolute; a scenario gives them relative to its file) where the worker finds a
    # model's import reference.
    python_path: tuple[str, ...] = ()
    data_parallel: int = 1
    data_parallel_processes: int = 1
    backends: tuple[str, ...] = BACKENDS

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["optimizer"] = self.optimizer.to_json()
        data["loss"] = self.loss.to_json()
        data["metrics"] = list(self.metrics)
        data["backends"] = list(self.backends)
        data["python_path"] = list(self.python_path)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Cell:
        data = dict(data)
        data["optimizer"] = Named.from_json(data["optimizer"])
        if "loss" in data:  # results from before the key have the default
            data["loss"] = Named.from_json(data["loss"])
        if "metrics" in data:
            data["metrics"] = tuple(data["metrics"])
        data["backends"] = tuple(data.get("backends", BACKENDS))
        data["python_path"] = tuple(data.get("python_path", ()))
        return cls(**data)

    def split_sizes(self) -> tuple[int | None, int | None]:
        """Training and test samples this cell will use, where known without loading data."""
        if is_ref(self.dataset):  # the user's function decides
            return None, None
        if self.dataset == "synthetic":
            full = SYNTHETIC_DEFAULT_SIZES
        else:
            full = DATASET_SIZES.get(self.dataset, (None, None))
        train = _cap(full[0], self.train_samples)
        test = _cap(full[1], self.test_samples)
        return train, test


def _cap(full: int | None, limit: int | None) -> int | None:
    if limit is None:
        return full
    return limit if full is None else min(full, limit)


@dataclasses.dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    path: str
    cells: tuple[Cell, ...]
    # Where each value of the keys the quick check judges was given: (key, field, value),
    # e.g. ("matrix.model[0]", "model", "my_models:build"), so a bad one can be named.
    sources: tuple[tuple[str, str, Any], ...] = ()

    def where(self, field: str, value: Any) -> str:
        """The key that gave ``field = value`` (its first place), for a one-line error."""
        return next((k for k, f, v in self.sources if (f, v) == (field, value)), field)

    def cells_for(self, backend: str) -> list[Cell]:
        return [c for c in self.cells if backend in c.backends]


# --- field validation -------------------------------------------------------------------------

_Check = Callable[[Any, str], Any]


def _int(minimum: int) -> _Check:
    def check(value: Any, what: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"must be an integer >= {minimum}, got {value!r}")
        if value < minimum:
            raise ValueError(f"must be an integer >= {minimum}, got {value}")
        return value

    return check


def _optional_int(minimum: int) -> _Check:
    inner = _int(minimum)

    def check(value: Any, what: str) -> int | None:
        return None if value is None else inner(value, what)

    return check


def _choice(choices: tuple[str, ...]) -> _Check:
    def check(value: Any, what: str) -> str:
        if not isinstance(value, str) or value not in choices:
            hint = _nearest(value, choices)
            raise ValueError(f"unknown {what} {value!r}{hint}; accepted: {', '.join(choices)}")
        return value

    return check


def _device(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _DEVICE_RE.match(value):
        raise ValueError(f"unknown device {value!r}; accepted: cpu, gpu, gpu:N (N = 0, 1, ...)")
    return value


def _number(minimum: float) -> _Check:
    def check(value: Any, what: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= minimum:
            raise ValueError(f"must be a number > {minimum}, got {value!r}")
        return float(value)

    return check


def _nonneg_number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"must be a number >= 0, got {value!r}")
    return float(value)


def _optional_str(value: Any, what: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ValueError(f"must be a string (a file path), got {value!r}")
    return value


def _jit(value: Any, what: str) -> str | bool:
    if value == "auto" or isinstance(value, bool):
        return value
    raise ValueError(f'must be true, false or "auto", got {value!r}')


def _bool(value: Any, what: str) -> bool:
    if isinstance(value, bool):
        return value
    raise ValueError(f"must be true or false, got {value!r}")


def _named(choices: dict[str, str], what: str, example: str) -> _Check:
    """A Keras name from ``choices``, or a table of it with its constructor's arguments."""
    names = tuple(choices)

    def check(value: Any, _: str) -> Named:
        if isinstance(value, str):
            return Named(_choice(names)(value, what))
        if isinstance(value, dict):
            if "name" not in value:
                raise ValueError(f'a{"n" if what[0] in "aeiou" else ""} {what} table needs a '
                                 f'"name", e.g. {example}')  # fmt: skip
            name = _choice(names)(value["name"], what)
            kwargs = {}
            for key, arg in value.items():
                if key == "name":
                    continue
                if not isinstance(arg, bool | int | float | str):
                    raise ValueError(f"{what} argument {key!r} must be a number, bool or string")
                kwargs[key] = arg
            return Named(name, tuple(sorted(kwargs.items())))
        raise ValueError(f"must be a{'n' if what[0] in 'aeiou' else ''} {what} name or a table "
                         f"with a name, got {value!r}")  # fmt: skip

    return check


_optimizer = _named(OPTIMIZERS, "optimizer", '{ name = "sgd", momentum = 0.9 }')
_loss = _named(LOSSES, "loss", '{ name = "categorical_crossentropy", label_smoothing = 0.1 }')


def _metrics(value: Any, what: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise ValueError(f'must be a list of metric names, e.g. ["accuracy"], got {value!r}')
    for item in value:
        _choice(METRICS)(item, "metric")
    return tuple(dict.fromkeys(value))


def is_ref(value: str) -> bool:
    """An import reference "package.module:function" (a built-in name has no colon)."""
    return bool(_REF_RE.match(value))


def _ref_hint(value: Any, choices: tuple[str, ...]) -> str:
    """A close built-in name, or the import reference a dotted name was likely meant as."""
    if isinstance(value, str) and "." in value and ":" not in value:
        module, _, function = value.rpartition(".")
        if _REF_RE.match(f"{module}:{function}"):
            return f' (did you mean "{module}:{function}"?)'
    return _nearest(value, choices)


def _built_in_or_ref(choices: tuple[str, ...], what: str) -> _Check:
    """A built-in name from ``choices``, or an import reference "package.module:function"."""

    def check(value: Any, _: str) -> str:
        if isinstance(value, str) and (value in choices or _REF_RE.match(value)):
            return value
        raise ValueError(
            f"unknown {what} {value!r}{_ref_hint(value, choices)}; accepted: "
            f'{", ".join(choices)}, or an import reference "package.module:function"'
        )

    return check


_dataset = _built_in_or_ref(DATASETS, "dataset")
_model = _built_in_or_ref(MODELS, "model")


def _backends(value: Any, what: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise ValueError(f"must be a list of backends ({', '.join(BACKENDS)})")
    out = []
    for item in value:
        if item not in BACKEND_ALIASES:
            hint = _nearest(item, BACKENDS)
            raise ValueError(f"unknown backend {item!r}{hint}; accepted: {', '.join(BACKENDS)}")
        out.append(BACKEND_ALIASES[item])
    return tuple(dict.fromkeys(out))


FIELDS: dict[str, tuple[_Check, str]] = {
    "model": (
        _model,
        "mlp (the tutorial's Flatten -> Dense(128) -> Dense(10)), cnn (the classic Keras MNIST "
        'convnet: two Conv2D + MaxPooling, Dropout, Dense), or your own: "package.module:function"'
        ", called with input_shape, num_classes and settings, returning an uncompiled "
        "keras.Model (importable in the worker, or on the scenario's python_path)",
    ),
    "dataset": (
        _dataset,
        "mnist (real; keras loader or data_path), digits, synthetic, or your own: "
        '"package.module:function", called with settings (the cell\'s), returning '
        "((x_train, y_train), (x_test, y_test)) arrays, or (train, test) as "
        "keras.utils.PyDataset or tf.data.Dataset batches of (x, y) (importable in the worker, "
        "or on the scenario's python_path)",
    ),
    "pipeline": (_choice(PIPELINES), "numpy, pydataset, tf.data or torch (DataLoader)"),
    "batch_size": (_int(1), "samples per training step"),
    "optimizer": (_optimizer, 'Keras optimizer name, or { name = "sgd", learning_rate = 0.01 }'),
    "loss": (
        _loss,
        "Keras classification loss name (sparse_categorical_crossentropy, the default; "
        "categorical_*, kl_divergence and categorical_hinge take one-hot labels), or a table "
        "with its arguments, e.g. "
        '{ name = "categorical_crossentropy", label_smoothing = 0.1 }; the loss and metrics must '
        "take the dataset's labels (the built-in datasets give class ids)",
    ),
    "metrics": (_metrics, 'Keras metric names compiled into the model (default ["accuracy"])'),
    "device": (_device, "cpu, gpu or gpu:N"),
    "epochs": (_int(1), "measured training epochs per repeat"),
    "repeats": (_int(1), "independent measured fits (fresh model each)"),
    "seed": (_int(0), "seed for weights, data order and synthetic data"),
    "warmup_steps": (_int(0), "steps fitted (and timed apart) before the measured epochs"),
    "train_samples": (_optional_int(1), "use at most this many training samples"),
    "test_samples": (_optional_int(1), "use at most this many test samples"),
    "data_path": (_optional_str, "a local mnist.npz (dataset = mnist)"),
    "precision": (_choice(PRECISIONS), "Keras dtype policy"),
    "jit_compile": (_jit, 'passed to model.compile: true, false or "auto"'),
    "steps_per_execution": (_int(1), "passed to model.compile"),
    "time_limit": (_number(0), "seconds a cell may run before it is stopped"),
    "min_time": (
        _nonneg_number,
        "seconds each repeat measures, about: a first fit shorter than this calibrates how "
        "many epochs it takes, and the repeats run that many (like timeit's autorange); 0: "
        "exactly epochs",
    ),
    "sample_interval": (
        _number(0),
        "seconds between CPU/GPU utilization samples (like dmon: 1); shorter where the measured "
        "fits would otherwise hold fewer than 10",
    ),
    "step_delay_ms": (
        _nonneg_number,
        "a fixed wait (a spin on the host) after every training step, once the device has finished it: a real, "
        "known slowdown to calibrate a regression gate with (compare with sync_every_step = "
        "true and no delay, so that only the wait differs)",
    ),
    "sync_every_step": (
        _bool,
        "wait for the device after every training step, as Keras does when any callback "
        "(its progress bar too) needs per-step logs; step_delay_ms implies it",
    ),
    "threads": (
        _optional_int(1),
        "CPU threads of the backend's intra-op and inter-op pools, the same for every backend "
        "(default: each backend's own choice); unsupported under jax, whose XLA CPU client has "
        "no such setting",
    ),
    "tf32": (
        _bool,
        "float32 matmuls in TF32 on GPUs that have it, true or false for every backend "
        "(default: each backend's own: on under tensorflow and jax, off under torch)",
    ),
    "jax_preallocate": (
        _bool,
        "let JAX reserve 75% of GPU memory when it starts (its own default); off, GPU memory "
        "readings under JAX show what the model uses",
    ),
    "data_parallel": (
        _int(1),
        "devices one cell trains on, data parallel: batch_size stays the global batch, split "
        "evenly across them (keras.distribution.DataParallel under jax, "
        "tf.distribute.MirroredStrategy under tensorflow; keras 3.15.1 has no torch support). "
        'On CPU the devices are simulated; on GPU (device = "gpu") they are the first N GPUs '
        "the runner was given",
    ),
    "data_parallel_processes": (
        _int(1),
        "worker processes that form one data-parallel job through keras.distribution.initialize "
        "(jax only), each holding data_parallel / processes of the devices and its share of "
        "the data; started together on loopback, or joined from other hosts with "
        "`harness worker-join`",
    ),
    "backends": (_backends, "run only under these backends"),
}
# Settings of the run and its measuring, not benchmark axes: defaults only.
_NOT_AXES = (
    "backends",
    "data_path",
    "time_limit",
    "min_time",
    "sample_interval",
    "jax_preallocate",
)
MATRIX_FIELDS = tuple(k for k in FIELDS if k not in _NOT_AXES)
# The keys that take an import reference "package.module:function".
REF_FIELDS = ("model", "dataset")
# The keys whose values the quick check of import references judges (scenario.where).
TRACKED = (*REF_FIELDS, "loss", "metrics")
TOP_LEVEL = ("name", "description", "python_path", "defaults", "matrix")


def _nearest(value: Any, choices: tuple[str, ...] | list[str]) -> str:
    if not isinstance(value, str):
        return ""
    close = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


# --- loading -------------------------------------------------------------------------------------


def read_toml(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ScenarioError(path, None, "no such file") from None
    except IsADirectoryError:
        raise ScenarioError(path, None, "is a directory, not a scenario file") from None
    except OSError as exc:
        raise ScenarioError(path, None, f"cannot read: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ScenarioError(path, None, "not a text file (expected UTF-8 TOML)") from None
    if "\x00" in text:
        raise ScenarioError(path, None, "not a text file (expected UTF-8 TOML)")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(path, None, f"malformed TOML: {exc}") from None


def load(path: str | Path) -> Scenario:
    """Read, validate and expand one scenario file.

    Args:
        path: the TOML file.

    Returns:
        The scenario with its cells, in matrix order.

    Raises:
        ScenarioError: anything wrong with the file, as one line.
    """
    path = Path(path)
    doc = read_toml(path)
    for key in doc:
        if key not in TOP_LEVEL:
            raise ScenarioError(
                path,
                key,
                f"unknown key{_nearest(key, TOP_LEVEL)}; accepted: {', '.join(TOP_LEVEL)}",
            )
    name = doc.get("name", path.stem)
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise ScenarioError(path, "name", "must be a word of letters, digits, '-', '_' or '.'")
    if name in RESERVED_FOLDERS:
        raise ScenarioError(
            path, "name", f"{name!r} names a results folder of the harness's own; choose another"
        )
    description = doc.get("description", "")
    if not isinstance(description, str):
        raise ScenarioError(path, "description", "must be a string")

    defaults = _table(path, doc, "defaults")
    resolved: dict[str, Any] = {"python_path": _python_path(path, doc.get("python_path", []))}
    sources: list[tuple[str, str, Any]] = []
    for key, value in defaults.items():
        resolved[key] = _field(path, f"defaults.{key}", key, value, FIELDS)
        if key in TRACKED:
            sources.append((f"defaults.{key}", key, resolved[key]))

    matrix = _table(path, doc, "matrix")
    axes: list[tuple[str, list[Any]]] = []
    matrix_fields = {k: FIELDS[k] for k in MATRIX_FIELDS}
    for key, values in matrix.items():
        if key not in matrix_fields:
            keys = sorted(matrix_fields)
            raise ScenarioError(
                path,
                f"matrix.{key}",
                f"unknown key{_nearest(key, keys)}; accepted: {', '.join(keys)}",
            )
        if not isinstance(values, list) or not values:
            raise ScenarioError(path, f"matrix.{key}", "must be a non-empty list of values")
        checked = [
            _field(path, f"matrix.{key}[{i}]", key, v, matrix_fields) for i, v in enumerate(values)
        ]
        if key in TRACKED:
            sources += [(f"matrix.{key}[{i}]", key, v) for i, v in enumerate(checked)]
        axes.append((key, checked))

    cells = []
    seen: dict[str, int] = {}
    for combo in itertools.product(*(vals for _, vals in axes)):
        fields = dict(resolved)
        fields.update({key: value for (key, _), value in zip(axes, combo, strict=True)})
        cell_id = _cell_id(
            [(k, v) for (k, vals), v in zip(axes, combo, strict=True) if len(vals) > 1]
        )
        if cell_id in seen:
            seen[cell_id] += 1
            cell_id = f"{cell_id}-{seen[cell_id]}"
        else:
            seen[cell_id] = 0
        cell = Cell(scenario=name, id=cell_id, **fields)
        _check_cell(path, cell)
        cells.append(cell)
    return Scenario(
        name=name,
        description=description,
        path=str(path),
        cells=tuple(cells),
        sources=tuple(sources),
    )


def load_all(paths: list[Path]) -> list[Scenario]:
    """Loads several scenario files; every one is checked before anything runs, and two
    scenarios may not share a name (their results would land in one folder)."""
    loaded = [load(p) for p in paths]  # every file validated before anything runs
    names: dict[str, str] = {}
    for sc in loaded:
        if sc.name in names:
            raise ScenarioError(
                sc.path, "name", f"{sc.name!r} is also the name of {names[sc.name]}"
            )
        names[sc.name] = sc.path
    return loaded


def override(sc: Scenario, settings: list[str], where: str = "--set") -> Scenario:
    """Returns ``sc`` with ``KEY=VALUE`` settings applied to every cell, ids unchanged.

    Values are TOML (``0.3``, ``"sgd"``, ``true``); a bare word is taken as a string. Each is
    validated like the same key in a file, and a mistake names ``where`` and the key.
    """
    changes: dict[str, Any] = {}
    for item in settings:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ScenarioError(where, None, f"expected KEY=VALUE, got {item!r}")
        try:
            value = tomllib.loads(f"v = {text.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = text.strip()
        changes[key] = _field(Path(where), key, key, value, FIELDS)
    if not changes:
        return sc
    sources = [r for r in sc.sources if r[1] not in changes]
    sources += [(where, k, v) for k, v in changes.items() if k in TRACKED]
    cells = []
    for cell in sc.cells:
        cell = dataclasses.replace(cell, **changes)
        _check_cell(Path(where), cell)
        cells.append(cell)
    return dataclasses.replace(sc, cells=tuple(cells), sources=tuple(sources))


def _python_path(path: Path, value: Any) -> tuple[str, ...]:
    """The scenario's python_path, each folder relative to the scenario file, made absolute."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ScenarioError(path, "python_path", 'must be a list of folders, e.g. ["."]')
    out = []
    for entry in value:
        folder = (path.parent / entry).resolve()
        if not folder.is_dir():
            raise ScenarioError(path, "python_path", f"{entry!r}: no such folder ({folder})")
        out.append(str(folder))
    return tuple(out)


def _table(path: Path, doc: dict[str, Any], key: str) -> dict[str, Any]:
    value = doc.get(key, {})
    if not isinstance(value, dict):
        raise ScenarioError(path, key, f"must be a table ([{key}])")
    return value


def _field(path: Path, where: str, key: str, value: Any, allowed: dict[str, Any]) -> Any:
    if key not in allowed:
        keys = sorted(allowed)
        raise ScenarioError(
            path, where, f"unknown key{_nearest(key, keys)}; accepted: {', '.join(keys)}"
        )
    check, _ = allowed[key]
    try:
        return check(value, key.replace("_", " "))
    except ValueError as exc:
        raise ScenarioError(path, where, str(exc)) from None


def _check_cell(path: Path, cell: Cell) -> None:
    """Cross-field checks: what no single key can tell."""
    train, test = cell.split_sizes()
    if train is not None and cell.batch_size > train:
        raise ScenarioError(
            path,
            "batch_size",
            f"{cell.batch_size} exceeds the {train} training samples of {cell.dataset}"
            f" (cell {cell.id})",
        )
    if cell.data_path is not None and cell.dataset != "mnist":
        raise ScenarioError(path, "data_path", 'only applies to dataset = "mnist"')
    if cell.dataset == "synthetic" and (cell.train_samples or 0) > 10_000_000:
        raise ScenarioError(path, "train_samples", "at most 10,000,000 synthetic samples")
    labels = None if is_ref(cell.dataset) else "class ids"  # the user's: known once loaded
    for key, message in parallel_problems(cell, train, test) + label_problems(cell, labels):
        raise ScenarioError(path, key, f"{message} (cell {cell.id})")


def label_problems(cell: Cell, labels: str | None) -> list[tuple[str, str]]:
    """Why the cell's loss or metrics cannot take its dataset's labels ("class ids" or
    "one-hot"; None: not known yet), as (key, message) pairs; the worker asks again once the
    data is loaded."""
    wrong = {"class ids": FOR_ONE_HOT, "one-hot": FOR_CLASS_IDS}.get(labels, set())
    out = []
    if cell.loss.name in wrong:
        fix = "sparse_categorical_crossentropy" if labels == "class ids" else (
            "categorical_crossentropy"
        )  # fmt: skip
        out.append(("loss", f"{cell.loss.name} takes {_other(labels)} labels; dataset "
                            f"{cell.dataset} gives {labels}: use {fix}"))  # fmt: skip
    for name in cell.metrics:
        if name in wrong:
            out.append(("metrics", f"{name} takes {_other(labels)} labels; dataset "
                                   f"{cell.dataset} gives {labels}"))  # fmt: skip
    if dict(cell.loss.kwargs).get("from_logits") and not is_ref(cell.model):
        out.append(("loss", f"from_logits: model {cell.model} ends in a softmax already (for "
                            "a model of your own that outputs logits)"))  # fmt: skip
    return out


def _other(labels: str) -> str:
    return "one-hot" if labels == "class ids" else "class ids"


def parallel_problems(cell: Cell, train: int | None, test: int | None) -> list[tuple[str, str]]:
    """Why a data-parallel cell cannot split its work evenly, as (key, message) pairs; the
    worker asks again once the data is loaded. Every step's batch, the last partial one too,
    must split evenly across the devices (JAX's sharding refuses an uneven one), and every
    process must get the same number of samples (they step together)."""
    n, procs = cell.data_parallel, cell.data_parallel_processes
    out: list[tuple[str, str]] = []
    if n % procs:
        out.append(("data_parallel", f"{n} devices do not split evenly across {procs} processes"))
    if cell.batch_size % n:
        out.append(("batch_size", f"{cell.batch_size} does not split evenly across {n} devices"))
    for key, size in (("train_samples", train), ("test_samples", test)):
        if size is None or n == 1 and procs == 1:
            continue
        if size % procs:
            out.append((key, f"{size} samples do not split evenly across {procs} processes"))
        elif size % cell.batch_size % n:
            out.append(
                (
                    key,
                    f"the last batch of {size} samples ({size % cell.batch_size}) does not "
                    f"split evenly across {n} devices",
                )
            )
    if n > 1 and cell.device.startswith("gpu:"):
        out.append(("device", f'data_parallel = {n} takes the first {n} GPUs: use device = "gpu"'))
    return out


_LABELS: dict[str, Callable[[Any], str]] = {
    "batch_size": lambda v: f"bs{v}",
    "optimizer": lambda v: v.label,
    "loss": lambda v: v.label,
    "metrics": lambda v: "+".join(v) or "no-metrics",
    "device": lambda v: v.replace(":", ""),
    "pipeline": lambda v: v.replace(".", ""),
    "epochs": lambda v: f"e{v}",
    "repeats": lambda v: f"r{v}",
    "seed": lambda v: f"seed{v}",
    "warmup_steps": lambda v: f"warm{v}",
    "train_samples": lambda v: f"n{v}",
    "test_samples": lambda v: f"t{v}",
    "jit_compile": lambda v: f"jit-{_short(v)}",
    "steps_per_execution": lambda v: f"spe{v}",
    "step_delay_ms": lambda v: f"delay{v:g}ms",
    "sync_every_step": lambda v: "sync" if v else "async",
    "threads": lambda v: f"threads{v}",
    "tf32": lambda v: "tf32" if v else "no-tf32",
    "data_parallel": lambda v: f"dp{v}",
    "data_parallel_processes": lambda v: f"procs{v}",
}


def _cell_id(items: list[tuple[str, Any]]) -> str:
    """A short, file-name-safe id from the matrix values that vary, e.g. ``bs32-adam-cpu``."""
    if not items:
        return "default"
    parts = [_LABELS.get(k, str)(v) for k, v in items]
    # a result's reader accepts these names only (results.is_safe_name): no dot first
    return re.sub(r"^\.", "_", re.sub(r"[^A-Za-z0-9_.+-]", "_", "-".join(parts)))


def json_schema() -> dict[str, Any]:
    """A JSON Schema (draft 2020-12) for scenario files, built from the checks above."""
    props: dict[str, Any] = {}
    for key, (_, doc) in FIELDS.items():
        props[key] = {"description": doc}
    ref = {"type": "string", "pattern": _REF_RE.pattern}
    props["dataset"]["anyOf"] = [{"enum": list(DATASETS)}, ref]
    props["model"]["anyOf"] = [{"enum": list(MODELS)}, ref]
    props["metrics"].update(type="array", items={"enum": list(METRICS)})
    props["pipeline"]["enum"] = list(PIPELINES)
    props["precision"]["enum"] = list(PRECISIONS)
    props["device"].update(type="string", pattern=_DEVICE_RE.pattern)
    for key in (
        "batch_size",
        "epochs",
        "repeats",
        "steps_per_execution",
        "data_parallel",
        "data_parallel_processes",
    ):
        props[key].update(type="integer", minimum=1)
    for key in ("seed", "warmup_steps"):
        props[key].update(type="integer", minimum=0)
    for key in ("train_samples", "test_samples"):
        props[key].update(type="integer", minimum=1)
    props["data_path"]["type"] = "string"
    props["time_limit"].update(type="number", exclusiveMinimum=0)
    props["sample_interval"].update(type="number", exclusiveMinimum=0)
    props["min_time"].update(type="number", minimum=0)
    props["step_delay_ms"].update(type="number", minimum=0)
    props["sync_every_step"]["type"] = "boolean"
    props["jax_preallocate"]["type"] = "boolean"
    props["tf32"]["type"] = "boolean"
    props["threads"].update(type="integer", minimum=1)
    props["jit_compile"]["anyOf"] = [{"type": "boolean"}, {"const": "auto"}]
    for key, names in (("optimizer", OPTIMIZERS), ("loss", LOSSES)):
        props[key]["anyOf"] = [
            {"enum": list(names)},
            {
                "type": "object",
                "required": ["name"],
                "properties": {"name": {"enum": list(names)}},
                "additionalProperties": {"type": ["number", "boolean", "string"]},
            },
        ]
    backend_names = sorted(BACKEND_ALIASES)
    props["backends"].update(type="array", items={"enum": backend_names}, minItems=1)
    matrix_props = {k: {"type": "array", "minItems": 1, "items": props[k]} for k in MATRIX_FIELDS}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "keras-backend-harness scenario",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]*$"},
            "description": {"type": "string"},
            "python_path": {
                "type": "array",
                "items": {"type": "string"},
                "description": "folders (relative to the scenario file) where model and "
                "dataset import references are found",
            },
            "defaults": {"type": "object", "additionalProperties": False, "properties": props},
            "matrix": {"type": "object", "additionalProperties": False, "properties": matrix_props},
        },
    }


# The block of docs/scenarios.md that keys_table() writes (tests/test_scenario.py checks it).
KEYS_BEGIN = "<!-- keys: generated by `harness schema --markdown`; tests/test_scenario.py checks it is current -->"
KEYS_END = "<!-- end keys -->"


def keys_table() -> str:
    """Every key of a scenario's [defaults] as a markdown table: its type (from the JSON
    Schema), its default (from :class:`Cell`), whether it is a matrix axis, and its meaning
    (from :data:`FIELDS`), and whether it is part of the workload's identity (harness/
    workload.py: work, method or neither), so the docs are derived from the declarations,
    never retyped."""
    from . import workload  # it reads this module's declarations: imported when asked

    props = json_schema()["properties"]["defaults"]["properties"]
    defaults = Cell(scenario="", id="").to_json()
    rows = [
        "| key | type | default | axis | workload | meaning |",
        "|---|---|---|---|---|---|",
    ]
    for key, (_, doc) in FIELDS.items():
        default = defaults[key]
        shown = "(the backend's own)" if default is None else f"`{json.dumps(default)}`"
        axis = "yes" if key in MATRIX_FIELDS else "no"
        part = workload.part_of(key)
        text = doc.replace("|", "\\|")
        rows.append(f"| `{key}` | {_type_text(props[key])} | {shown} | {axis} | {part} | {text} |")
    return "\n".join(rows)


def _type_text(prop: dict[str, Any]) -> str:
    """A JSON Schema property in a few words: "integer >= 1", "one of: numpy, ..."."""
    if "enum" in prop:
        return "one of: " + ", ".join(map(str, prop["enum"]))
    if "anyOf" in prop:
        parts = []
        for alt in prop["anyOf"]:
            if "enum" in alt:
                parts.append(", ".join(map(str, alt["enum"])))
            elif "const" in alt:
                parts.append(json.dumps(alt["const"]))
            elif "pattern" in alt:
                parts.append('"package.module:function"')
            else:
                parts.append(
                    alt.get("type", "table")
                    if alt.get("type") != "object"
                    else "a table with a name and arguments"
                )
        return " or ".join(parts)
    kind = prop.get("type", "")
    if kind == "array":
        return "list of " + _type_text(prop["items"])
    for bound, sign in (("minimum", ">="), ("exclusiveMinimum", ">")):
        if bound in prop:
            return f"{kind} {sign} {prop[bound]}"
    if "pattern" in prop and kind == "string":
        return "cpu, gpu or gpu:N" if "gpu" in prop["pattern"] else "string"
    return kind or "value"
