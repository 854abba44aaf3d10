"""The shape a result file must have before anything reads it: every field the reports, the
gate and the history read, with the type it is read as, declared once (``SHAPE``).

A result file is data and may come from another machine or a hand's edit. One whose shape is
wrong is refused as it is read, with one line naming the file and the field
(``field 'train.ms_per_step.median': must be a number, got "x"``); the reports and the gate
then leave it out with that note, instead of failing later with a traceback.

A shape is ``NUM``, ``STR`` or ``BOOL``; a dict (an object whose listed keys, where present,
have those shapes; ``"*"`` stands for every key); a one-item list (a list of that shape); or
a tuple (any one of those shapes). ``None`` (JSON null) is taken for a field not recorded,
except where its key is written ``"!key"`` (it must be there, in an object that is; ``"!*"``:
every value) and in a list. What an ok result must hold besides is checked apart
(``OK_REQUIRED``).
"""

from __future__ import annotations

import json
import math
from typing import Any

from .result_view import RATE_FIELDS, STATUSES, Status

NUM, STR, BOOL, DATE = "a number", "a string", "true or false", "a date string"
SCALAR = (NUM, STR, BOOL)
OBJECT: dict[str, Any] = {"*": Any}  # an object, whatever it holds
# stats.summarize: a per-repeat figure, its summary and values
SUMMARY = {
    **{f"!{k}": NUM for k in ("median", "min", "max", "mad")},
    **{k: NUM for k in ("mean", "stdev", "cv", "n")},
    "values": [NUM],
    "noisy": BOOL,
}
NAMED = {"!name": STR, "*": Any}  # an optimizer or loss as a cell records it: its name, arguments
GPU_LIST = {"gpus": [{"name": STR, "*": Any}], "*": Any}
SHAPE: dict[str, Any] = {
    "!status": STR,
    "reason": STR,
    "started": DATE,
    "finished": STR,
    "run_id": STR,
    "backend": STR,
    "scenario": {"!name": STR, "description": STR, "file": STR},
    "cell": {
        "!id": STR,
        "optimizer": NAMED,
        "loss": (STR, NAMED),
        "metrics": [STR],
        "*": (SCALAR, [SCALAR], OBJECT),
    },
    "environment": {
        "git": {"*": (STR, BOOL)},
        "backend_versions": {"*": STR},
        "gpu": GPU_LIST,
        "*": Any,
    },
    "ab": {"id": STR, "side": STR, "round": NUM, "python": STR},
    "shard": STR,
    "train": {
        **{name: SUMMARY for name in RATE_FIELDS},
        "ms_per_step": SUMMARY,
        "steady_seconds": SUMMARY,
        "fit_seconds": SUMMARY,
        "fit_overhead_seconds": SUMMARY,
        "fit_samples_per_sec": SUMMARY,
        "warmup": {"seconds": SUMMARY, "*": Any},
        "step_time_ms": {"!p50": NUM, "!p90": NUM, "!p99": NUM, "*": NUM},
        "epochs": NUM,
        "*": Any,
    },
    "evaluate": {"accuracy": NUM, "loss": NUM, "samples_per_sec": NUM, "*": Any},
    "predict": {"argmax_accuracy": NUM, "*": Any},
    "save": {"!*": {"predictions_match": BOOL, "max_abs_diff": NUM, "*": Any}},
    "data": OBJECT,
    "device": {"variables_on": STR, "*": Any},
    "backend_settings": {"*": SCALAR},
    "efficiency": {"fraction_of_probe": NUM, "partial": BOOL, "*": Any},
    "monitor": {
        "phases": {"*": {"seconds": NUM, "n": NUM, "*": {"*": NUM}}},
        "samples": [
            {"!t": NUM, "phase": STR, "cpu": NUM, "gpus": [{"*": (SCALAR, OBJECT)}], "*": Any}
        ],
        "*": Any,
    },
    "distribution": {"engine": STR, "*": Any},
    "workload": {"id": STR, "!parts": OBJECT, "!method": OBJECT},
}
# What an ok result must hold: the figure every report and the gate read.
OK_REQUIRED = (f"train.{RATE_FIELDS[0]}.median",)


def problem(doc: dict[str, Any]) -> str | None:
    """Why ``doc`` does not have the shape its readers need, naming the field; or None."""
    for name in RATE_FIELDS:  # before the rest: the gate ranks these
        values = _get(doc, f"train.{name}.values")
        if values is not None and not (
            isinstance(values, list) and all(_positive(v) for v in values)
        ):
            return f"field 'train.{name}.values': must be a list of positive numbers"
    found = _mismatch(doc, SHAPE, "")
    if found:
        return found
    if doc["status"] not in STATUSES:
        return f"field 'status': {doc['status']!r} is none of {', '.join(STATUSES)}"
    ab = doc.get("ab") or {}
    if ab and not (isinstance(ab.get("id"), str) and isinstance(ab.get("side"), str)):
        return "field 'ab': must name its id and side as strings"
    if doc["status"] == Status.OK:
        for field in OK_REQUIRED:
            if _get(doc, field) is None:
                return f"field '{field}': missing in an ok result"
    return None


def _mismatch(value: Any, shape: Any, field: str) -> str | None:
    if value is None or shape is Any:
        return None
    if isinstance(shape, tuple):
        if any(_mismatch(value, one, field) is None for one in shape):
            return None
        return f"field '{field}': must be {_describe(shape)}, got {_show(value)}"
    if isinstance(shape, dict):
        if not isinstance(value, dict):
            return f"field '{field}': must be an object, got {_show(value)}"
        for key in shape:
            if key.startswith("!") and key != "!*" and value.get(key[1:]) is None:
                return f"field '{_join(field, key[1:])}': must be {_describe(shape[key])}, got null"
        for key, item in value.items():
            if item is None and "!*" in shape:
                return f"field '{_join(field, key)}': must be {_describe(shape['!*'])}, got null"
            sub = shape.get(key, shape.get(f"!{key}", shape.get("*", shape.get("!*"))))
            if sub is not None:
                found = _mismatch(item, sub, _join(field, key))
                if found:
                    return found
        return None
    if isinstance(shape, list):
        if not isinstance(value, list):
            return f"field '{field}': must be a list, got {_show(value)}"
        for item in value:
            if item is None:
                return f"field '{field}': must be a list without nulls"
            found = _mismatch(item, shape[0], f"{field}[]")
            if found:
                return found
        return None
    ok = {
        NUM: lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        STR: lambda v: isinstance(v, str),
        DATE: lambda v: isinstance(v, str),
        BOOL: lambda v: isinstance(v, bool),
    }[shape](value)
    return None if ok else f"field '{field}': must be {shape}, got {_show(value)}"


def _get(doc: dict[str, Any], field: str) -> Any:
    """The value at a dotted ``field``, or None where any part of the way is not an object."""
    value: Any = doc
    for key in field.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _positive(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v > 0


def _join(field: str, key: str) -> str:
    return f"{field}.{key}" if field else key


def _describe(shape: Any) -> str:
    if isinstance(shape, tuple):
        return " or ".join(dict.fromkeys(_describe(s) for s in shape))
    if isinstance(shape, dict):
        return "an object"
    if isinstance(shape, list):
        return "a list"
    return shape


def _show(value: Any) -> str:
    return json.dumps(value)[:60]
