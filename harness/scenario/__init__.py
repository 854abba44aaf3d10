"""Scenario files: load, validate in full, and expand the matrix into cells.

A scenario file is data (TOML), never code. Every key is checked before anything runs, and a
mistake becomes a :class:`ScenarioError` whose text is one line naming the file and the key.
The package imports no backend, so the CLI can validate files in milliseconds.

- ``vocab.py``: the names a scenario may use (datasets, models, pipelines, precisions,
  optimizers, losses, metrics), the labels each loss and metric takes, and ``Named``.
- ``checks.py``: the kinds of value a key takes (type and bounds), each a validator and its
  JSON Schema.
- ``keys.py``: every key, declared once as a field of ``Cell`` (default, kind, workload part,
  meaning, matrix axis, cell-id label), and what is read from the declarations: ``FIELDS``,
  ``MATRIX_FIELDS``, cell ids, ``BEFORE``.
- ``problems.py``: what no single key can tell (labels the loss cannot take, data-parallel
  work that does not split evenly), asked at load and again by the worker.
- ``load.py``: reading a file, the matrix into cells, ``--set`` overrides; ``ScenarioError``.
- ``schema.py``: the JSON Schema (``harness schema``) and the docs' key table
  (``harness schema --markdown``).
"""

from .checks import Kind
from .keys import (
    BEFORE,
    CALIBRATION_FIELDS,
    FIELDS,
    KEYS,
    MATRIX_FIELDS,
    REF_FIELDS,
    TOP_LEVEL_FIELDS,
    TRACKED,
    Cell,
    Key,
    Part,
    cell_id,
    key,
    key_of,
)
from .load import TOP_LEVEL, Scenario, ScenarioError, load, load_all, override, read_toml
from .problems import label_problems, parallel_problems
from .schema import KEYS_BEGIN, KEYS_END, json_schema, keys_table
from .vocab import (
    DATASETS,
    FOR_CLASS_IDS,
    FOR_ONE_HOT,
    LOSSES,
    METRICS,
    MODELS,
    OPTIMIZERS,
    PIPELINES,
    PRECISIONS,
    Named,
    is_ref,
)

_cell_id = cell_id  # the name tests/test_untrusted_results.py uses

__all__ = [
    "BEFORE",
    "CALIBRATION_FIELDS",
    "DATASETS",
    "FIELDS",
    "FOR_CLASS_IDS",
    "FOR_ONE_HOT",
    "KEYS",
    "KEYS_BEGIN",
    "KEYS_END",
    "LOSSES",
    "MATRIX_FIELDS",
    "METRICS",
    "MODELS",
    "OPTIMIZERS",
    "PIPELINES",
    "PRECISIONS",
    "REF_FIELDS",
    "TOP_LEVEL",
    "TOP_LEVEL_FIELDS",
    "TRACKED",
    "Cell",
    "Key",
    "Kind",
    "Named",
    "Part",
    "Scenario",
    "ScenarioError",
    "cell_id",
    "is_ref",
    "json_schema",
    "key",
    "key_of",
    "keys_table",
    "label_problems",
    "load",
    "load_all",
    "override",
    "parallel_problems",
    "read_toml",
]
