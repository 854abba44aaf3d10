"""What a cell computes (its workload identity), kept apart from how it was measured.

The gate judges speed only between results of the same work: a change of batch size, model,
dataset or backend setting is a change of workload, named as such, never a "regression". A
result records ``workload = {"id", "parts", "method"}``:

- ``parts``: everything that defines the work, readable: the settings that change what is
  computed (``WORK_FIELDS``), the model as built (its parameter count and a digest of its
  layers' configurations; for a user's model also its module file's digest), the dataset as
  loaded (name, form, sample counts, shapes, dtypes, classes, preprocessing; for a user's
  dataset its module file's digest) and the backend settings that really ran (jit, dtype
  policy, matmul precision, thread pools).
- ``id``: a digest of ``parts``; equal ids mean the same work.
- ``method``: how it was measured (``METHOD_FIELDS``): a change is named beside a verdict,
  but is not a change of work.

Each scenario key declares which of the two it is, or neither (harness/scenario/keys.py; the
docs' key table shows it): neither changes what is computed nor how it is timed (a time
limit, where this host finds its files, memory reservation, which backends run). For a user's
code, its module's digest stands in the parts. ``step_delay_ms`` is neither on purpose: it is
the known slowdown that proves the gate, and must be judged as a slowdown. ``min_time``'s epochs
are chosen by calibration, so ``epochs`` is part of the method, not of the work.

Results written before the harness recorded a workload are compared on the settings their
cell records (``settings`` only).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .scenario import BEFORE, KEYS, Cell, Part

# The cell settings by part, as each key declares it (harness/scenario/keys.py): those that
# change what is computed, those that change how it is measured, and the rest (with the cell's
# own names, scenario and id).
WORK_FIELDS = tuple(k.name for k in KEYS if k.part is Part.WORK)
METHOD_FIELDS = tuple(k.name for k in KEYS if k.part is Part.METHOD)
NEITHER_FIELDS = ("scenario", "id", *(k.name for k in KEYS if k.part is Part.NEITHER))


def _defaults() -> dict[str, Any]:
    """What an older result that lacks a setting ran as: today's default, or the value it had
    before the harness changed that default (scenario.BEFORE)."""
    return json.loads(json.dumps({**Cell(scenario="", id="").to_json(), **BEFORE}))


_DEFAULTS = _defaults()


def settings(cell: dict[str, Any]) -> dict[str, Any]:
    """The work-defining settings of a result's cell (JSON form)."""
    return {f: cell.get(f, _DEFAULTS.get(f)) for f in WORK_FIELDS}


def method(cell: dict[str, Any]) -> dict[str, Any]:
    """How the cell was measured, from its settings."""
    return {f: cell.get(f, _DEFAULTS.get(f)) for f in METHOD_FIELDS}


def digest(value: Any, length: int = 16) -> str:
    """A short, stable digest of a JSON-able value (keys sorted)."""
    text = json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def record(
    cell: dict[str, Any],
    *,
    model: dict[str, Any],
    data: dict[str, Any],
    backend: dict[str, Any],
) -> dict[str, Any]:
    """A result's ``workload``: its id, its parts and its method.

    Args:
        cell: the cell's settings as the result records them.
        model: the model as built (``params``, ``architecture`` digest, ``source`` digest).
        data: the dataset as loaded (shapes, dtypes, counts, ``source`` digest).
        backend: the backend settings that really ran.
    """
    parts = {"settings": settings(cell), "model": model, "data": data, "backend": backend}
    return {"id": digest(parts), "parts": parts, "method": method(cell)}


def of(doc: dict[str, Any]) -> dict[str, Any]:
    """A result's workload, or for a result written before workloads were recorded, the one
    its cell's settings give (``parts`` holds ``settings`` only)."""
    found = doc.get("workload")
    if isinstance(found, dict) and isinstance(found.get("parts"), dict):
        return found
    cell = doc.get("cell") or {}
    parts = {"settings": settings(cell)}
    return {"id": None, "parts": parts, "method": method(cell)}


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value}


def _show(value: Any) -> str:
    return json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else str(value)


def _name(path: str) -> str:
    """``settings.batch_size`` -> ``batch_size``: the settings are the names users wrote."""
    return path.removeprefix("settings.")


def differences(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """What differs between two results' workloads, readable: ``"batch_size: 32 -> 64"``.

    Equal ids mean no difference. Otherwise what both record is compared (a result written
    before workloads were recorded has its settings alone, and is judged on those); where
    that finds nothing but both ids are recorded, the two were recorded differently (another
    harness version records other parts): that is named too, never taken for the same work.

    Args:
        before: the baseline's result (or the earlier run).
        after: the current result.
    """
    a, b = of(before), of(after)
    if a["id"] is not None and a["id"] == b["id"]:
        return []
    common = set(a["parts"]) & set(b["parts"])
    fa = _flat({k: a["parts"][k] for k in common})
    fb = _flat({k: b["parts"][k] for k in common})
    keys = sorted(set(fa) & set(fb), key=lambda k: (not k.startswith("settings."), k))
    found = [f"{_name(k)}: {_show(fa[k])} -> {_show(fb[k])}" for k in keys if fa[k] != fb[k]]
    if not found and a["id"] is not None and b["id"] is not None:
        only = sorted(set(fa) ^ set(fb))
        found = [
            f"workload recorded differently: id {a['id']} -> {b['id']} (recorded on one side "
            f"only: {', '.join(only[:4])}{' ...' if len(only) > 4 else ''})"
        ]
    return found


def method_differences(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """What differs in how two results were measured: ``"repeats: 3 -> 5"``."""
    a, b = of(before)["method"], of(after)["method"]
    return [f"{k}: {_show(a.get(k))} -> {_show(b.get(k))}" for k in a if a.get(k) != b.get(k)]
