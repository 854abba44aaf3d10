"""Every scenario key, declared once: the fields of :class:`Cell`.

Each key is a field of ``Cell`` made by :func:`key`, which states its default, its kind (type
and bounds, checks.py), what it is to the workload (work, method or neither: harness/
workload.py), its one-line meaning, whether it is a matrix axis, and how a cell id shows it.
Everything else is read from these declarations: :data:`FIELDS` (the validators of
``[defaults]``), :data:`MATRIX_FIELDS`, cell ids (:func:`cell_id`), the JSON Schema and the docs'
key table (schema.py), workload.py's groups, orchestrate/ab.py's ``WORK`` and :data:`BEFORE`.
tests/test_scenario.py checks that every field is declared in full.

Longer than 400 lines, and one concern: most of it is the declarations, one per key, which
are meant to be read in one place.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Callable
from typing import Any

from ..backends import NAMES as BACKENDS
from .checks import (
    BackendNames,
    Bool,
    BoolOrAuto,
    BuiltInOrRef,
    Choice,
    Device,
    FilePath,
    Folders,
    Int,
    Kind,
    MetricNames,
    NameOrTable,
    Number,
)
from .vocab import (
    DATASET_SIZES,
    DATASETS,
    LOSSES,
    MODELS,
    OPTIMIZERS,
    PIPELINES,
    PRECISIONS,
    SYNTHETIC_DEFAULT_SIZES,
    Named,
    is_ref,
    short,
)


class Part(enum.StrEnum):
    """What a key is to a cell's workload identity (harness/workload.py)."""

    WORK = "work"  # what is computed: a change is "workload changed", never a speed verdict
    METHOD = "method"  # how it is measured: named beside a verdict
    NEITHER = "neither"  # a guard, a host's path, or the gate's known slowdown


WORK, METHOD, NEITHER = Part.WORK, Part.METHOD, Part.NEITHER
_KEY = "harness.scenario.key"  # where a field's metadata holds its declaration


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()  # a key whose default never changed: it has no `before`


@dataclasses.dataclass(frozen=True)
class Key:
    """One scenario key as declared on its :class:`Cell` field (see :func:`key`)."""

    name: str
    default: Any
    kind: Kind
    part: Part
    doc: str
    axis: bool = True
    label: str | Callable[[Any], str] | None = None
    calibrates: bool = False
    before: Any = UNSET
    top_level: bool = False

    def label_of(self, value: Any) -> str:
        """How a cell id shows ``value``: the label's function of it, the label as a prefix
        (``bs32``), or the value itself."""
        if callable(self.label):
            return self.label(value)
        return f"{self.label or ''}{value}"


def key(
    default: Any,
    kind: Kind,
    part: Part,
    doc: str,
    *,
    axis: bool = True,
    label: str | Callable[[Any], str] | None = None,
    calibrates: bool = False,
    before: Any = UNSET,
    top_level: bool = False,
) -> Any:
    """Declares a scenario key: the :class:`Cell` field it is, with its declaration attached.

    Args:
        default: the value a cell has when no file sets it (None: the backend's own choice).
        kind: its values' type and bounds (checks.py), e.g. ``Int(1)``.
        part: what it is to the workload: WORK, METHOD or NEITHER.
        doc: its meaning in one line (the JSON Schema's description, the docs' table).
        axis: whether ``[matrix]`` may vary it (else it is a setting of the run: defaults only).
        label: how a cell id shows a value: a prefix (``"bs"``: ``bs32``) or a function of it
            (default: the value as it is).
        calibrates: it decides how much work an epoch is, or how many epochs calibration
            picks: two A/B sides that differ in it calibrate apart (orchestrate/ab.py).
        before: the value results and runs recorded before the key had today's default ran
            as, where that default changed the harness's behaviour.
        top_level: a key of the file itself, not of ``[defaults]`` (python_path).
    """
    if not isinstance(kind, Kind) or not isinstance(part, Part) or not str(doc).strip():
        raise TypeError(f"a key needs a kind, a workload part and a meaning: {kind!r}, {part!r}")
    spec = Key("", default, kind, part, doc, axis, label, calibrates, before, top_level)
    return dataclasses.field(default=default, metadata={_KEY: spec})


def _on(yes: str, no: str) -> Callable[[Any], str]:
    return lambda value: yes if value else no


@dataclasses.dataclass(frozen=True)
class Cell:
    """One fully resolved benchmark configuration (one worker process per backend). Every
    field after ``id`` is a scenario key, declared here once."""

    scenario: str
    id: str
    model: str = key(
        "mlp",
        BuiltInOrRef(MODELS, "model"),
        WORK,
        "mlp (the tutorial's Flatten -> Dense(128) -> Dense(10)), cnn (the classic Keras MNIST "
        'convnet: two Conv2D + MaxPooling, Dropout, Dense), or your own: "package.module:function"'
        ", called with input_shape, num_classes and settings, returning an uncompiled "
        "keras.Model (importable in the worker, or on the scenario's python_path)",
    )
    dataset: str = key(
        "synthetic",
        BuiltInOrRef(DATASETS, "dataset"),
        WORK,
        "mnist (real; keras loader or data_path), digits, synthetic, or your own: "
        '"package.module:function", called with settings (the cell\'s), returning '
        "((x_train, y_train), (x_test, y_test)) arrays, or (train, test) as "
        "keras.utils.PyDataset or tf.data.Dataset batches of (x, y) (importable in the worker, "
        "or on the scenario's python_path)",
        calibrates=True,
    )
    pipeline: str = key(
        "numpy",
        Choice(PIPELINES),
        WORK,
        "numpy, pydataset, tf.data or torch (DataLoader)",
        label=lambda v: v.replace(".", ""),
    )
    batch_size: int = key(
        32, Int(1), WORK, "samples per training step", label="bs", calibrates=True
    )
    optimizer: Named = key(
        Named("adam"),
        NameOrTable(tuple(OPTIMIZERS), "optimizer", '{ name = "sgd", momentum = 0.9 }'),
        WORK,
        'Keras optimizer name, or { name = "sgd", learning_rate = 0.01 }',
        label=lambda v: v.label,
    )
    loss: Named = key(
        Named("sparse_categorical_crossentropy"),
        NameOrTable(
            tuple(LOSSES), "loss", '{ name = "categorical_crossentropy", label_smoothing = 0.1 }'
        ),
        WORK,
        "Keras classification loss name (sparse_categorical_crossentropy, the default; "
        "categorical_*, kl_divergence and categorical_hinge take one-hot labels), or a table "
        "with its arguments, e.g. "
        '{ name = "categorical_crossentropy", label_smoothing = 0.1 }; the loss and metrics must '
        "take the dataset's labels (the built-in datasets give class ids)",
        label=lambda v: v.label,
    )
    metrics: tuple[str, ...] = key(
        ("accuracy",),
        MetricNames(),
        WORK,
        'Keras metric names compiled into the model (default ["accuracy"])',
        label=lambda v: "+".join(v) or "no-metrics",
    )
    device: str = key(
        "cpu", Device(), WORK, "cpu, gpu or gpu:N", label=lambda v: v.replace(":", "")
    )
    epochs: int = key(
        1, Int(1), METHOD, "measured training epochs per repeat", label="e", calibrates=True
    )
    repeats: int = key(3, Int(1), METHOD, "independent measured fits (fresh model each)", label="r")
    seed: int = key(
        0, Int(0), WORK, "seed for weights, data order and synthetic data", label="seed"
    )
    warmup_steps: int = key(
        10,
        Int(0),
        METHOD,
        "steps fitted (and timed apart) before the measured epochs",
        label="warm",
    )
    train_samples: int | None = key(
        None,
        Int(1, optional=True),
        WORK,
        "use at most this many training samples",
        label="n",
        calibrates=True,
    )
    test_samples: int | None = key(
        None, Int(1, optional=True), WORK, "use at most this many test samples", label="t"
    )
    data_path: str | None = key(
        None,
        FilePath(),
        NEITHER,  # where this host keeps MNIST
        "a local mnist.npz (dataset = mnist)",
        axis=False,
        calibrates=True,
    )
    precision: str = key("float32", Choice(PRECISIONS), WORK, "Keras dtype policy")
    jit_compile: str | bool = key(
        "auto",
        BoolOrAuto(),
        WORK,
        'passed to model.compile: true, false or "auto"',
        label=lambda v: f"jit-{short(v)}",
    )
    steps_per_execution: int = key(1, Int(1), WORK, "passed to model.compile", label="spe")
    time_limit: float = key(
        1800.0,
        Number(0, exclusive=True),
        NEITHER,  # a guard, not work
        "seconds a cell may run before it is stopped",
        axis=False,
    )
    min_time: float = key(
        1.0,
        Number(0),
        METHOD,
        "seconds each repeat measures, about: a first fit shorter than this calibrates how "
        "many epochs it takes, and the repeats run that many (like timeit's autorange); 0: "
        "exactly epochs",
        axis=False,
        calibrates=True,
        before=0.0,  # exactly `epochs`, before measurement windows had a minimum
    )
    sample_interval: float = key(
        1.0,
        Number(0, exclusive=True),
        NEITHER,  # utilization sampling
        "seconds between CPU/GPU utilization samples (like dmon: 1); shorter where the measured "
        "fits would otherwise hold fewer than 10",
        axis=False,
    )
    step_delay_ms: float = key(
        0.0,
        Number(0),
        NEITHER,  # the known slowdown that proves the gate: judged as a slowdown
        "a fixed wait (a spin on the host) after every training step, once the device has "
        "finished it: a real, known slowdown to calibrate a regression gate with (compare with "
        "sync_every_step = true and no delay, so that only the wait differs)",
        label=lambda v: f"delay{v:g}ms",
    )
    sync_every_step: bool = key(
        False,
        Bool(),
        METHOD,
        "wait for the device after every training step, as Keras does when any callback "
        "(its progress bar too) needs per-step logs; step_delay_ms implies it",
        label=_on("sync", "async"),
    )
    threads: int | None = key(
        None,
        Int(1, optional=True),
        WORK,
        "CPU threads of the backend's intra-op and inter-op pools, the same for every backend "
        "(default: each backend's own choice); unsupported under jax, whose XLA CPU client has "
        "no such setting",
        label="threads",
    )
    tf32: bool | None = key(
        None,
        Bool(),
        WORK,
        "float32 matmuls in TF32 on GPUs that have it, true or false for every backend "
        "(default: each backend's own: on under tensorflow and jax, off under torch)",
        label=_on("tf32", "no-tf32"),
    )
    jax_preallocate: bool = key(
        False,
        Bool(),
        NEITHER,  # memory reservation
        "let JAX reserve 75% of GPU memory when it starts (its own default); off, GPU memory "
        "readings under JAX show what the model uses",
        axis=False,
    )
    # Absolute in a cell; a scenario gives them relative to its file.
    python_path: tuple[str, ...] = key(
        (),
        Folders(),
        NEITHER,  # where this host finds the user's modules (their digests are recorded)
        "folders (relative to the scenario file) where model and dataset import references "
        "are found",
        axis=False,
        top_level=True,
    )
    data_parallel: int = key(
        1,
        Int(1),
        WORK,
        "devices one cell trains on, data parallel: batch_size stays the global batch, split "
        "evenly across them (keras.distribution.DataParallel under jax, "
        "tf.distribute.MirroredStrategy under tensorflow; keras 3.15.1 has no torch support). "
        'On CPU the devices are simulated; on GPU (device = "gpu") they are the first N GPUs '
        "the runner was given",
        label="dp",
    )
    data_parallel_processes: int = key(
        1,
        Int(1),
        WORK,
        "worker processes that form one data-parallel job through keras.distribution.initialize "
        "(jax only), each holding data_parallel / processes of the devices and its share of "
        "the data; started together on loopback, or joined from other hosts with "
        "`harness worker-join`",
        label="procs",
    )
    backends: tuple[str, ...] = key(
        BACKENDS,
        BackendNames(),
        NEITHER,  # the backend is part of the cell's key
        "run only under these backends",
        axis=False,
    )

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"scenario": self.scenario, "id": self.id}
        for k in KEYS:
            data[k.name] = k.kind.to_json(getattr(self, k.name))
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Cell:
        """A cell from its JSON form; a key it lacks (a result from before the key) has
        today's default."""
        known = {k.name: k for k in KEYS}
        return cls(**{f: known[f].kind.from_json(v) if f in known else v for f, v in data.items()})

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


# --- what is read from the declarations ------------------------------------------------


def key_of(field: dataclasses.Field) -> Key | None:
    """The declaration of a :class:`Cell` field (None: not a key: scenario, id)."""
    spec = field.metadata.get(_KEY)
    return None if spec is None else dataclasses.replace(spec, name=field.name)


KEYS: tuple[Key, ...] = tuple(k for k in map(key_of, dataclasses.fields(Cell)) if k is not None)
# The keys of [defaults], in declaration order (the schema's and the docs' order).
FIELDS: dict[str, Key] = {k.name: k for k in KEYS if not k.top_level}
# The keys of the file itself, beside name, description, defaults and matrix.
TOP_LEVEL_FIELDS: dict[str, Key] = {k.name: k for k in KEYS if k.top_level}
MATRIX_FIELDS = tuple(k.name for k in KEYS if k.axis)
# The keys that take an import reference "package.module:function".
REF_FIELDS = tuple(k.name for k in KEYS if isinstance(k.kind, BuiltInOrRef))
# The keys whose values the quick check of import references judges (scenario.where).
TRACKED = (*REF_FIELDS, "loss", "metrics")
# What decides how much work an epoch is, or how many epochs calibration picks.
CALIBRATION_FIELDS = tuple(k.name for k in KEYS if k.calibrates)
# Settings whose default changed when the harness learned them: a result or run recorded
# before then ran as this value, not as today's default.
BEFORE = {k.name: k.before for k in KEYS if k.before is not UNSET}


def cell_id(items: list[tuple[str, Any]]) -> str:
    """A short, file-name-safe id from the matrix values that vary, e.g. ``bs32-adam-cpu``."""
    if not items:
        return "default"
    parts = [FIELDS[k].label_of(v) for k, v in items]
    # a result's reader accepts these names only (results.is_safe_name): no dot first
    return re.sub(r"^\.", "_", re.sub(r"[^A-Za-z0-9_.+-]", "_", "-".join(parts)))
