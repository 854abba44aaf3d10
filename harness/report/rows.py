"""The report's tidy rows: one per (scenario, cell, backend), from result files.

Every report (markdown, HTML, CSV, JSON) is a pure view of these rows and the result files:
it never imports a backend and never re-runs anything.
"""

from __future__ import annotations

import json
from typing import Any

from ..backends import BY_NAME, NAMES
from ..results import Result


def rows(docs: list[dict]) -> list[dict[str, Any]]:
    """A tidy table: one row per (scenario, cell, backend), with speed relative to the fastest."""
    out = []
    best: dict[tuple, float] = {}
    for r in map(Result, docs):
        if r.ok:
            k = r.key[:2]
            best[k] = max(best.get(k, 0.0), r.throughput.median)
    single = _single_device(docs)
    for d in docs:
        r = Result(d)
        cell = r.cell
        row: dict[str, Any] = {
            "scenario": r.scenario,
            "cell": cell.get("id"),
            "backend": r.backend,
            "backend_version": _backend_version(d),
            "status": r.status,
            "reason": r.reason,
            "dataset": (d.get("data") or {}).get("dataset", cell.get("dataset")),
            "pipeline": cell.get("pipeline"),
            "batch_size": cell.get("batch_size"),
            "optimizer": (cell.get("optimizer") or {}).get("name"),
            "device": r.variables_on or cell.get("device"),
            "data_parallel": r.devices,
            "processes": r.processes,
            "engine": r.distribution.get("engine"),
            "run_id": r.run_id,
        }
        if r.ok:
            sps = r.throughput
            warm = (r.train.get("warmup") or {}).get("seconds") or {}
            save = d.get("save") or {}
            row.update(
                samples_per_sec=sps.median,
                samples_per_sec_mad=sps.mad,
                samples_per_sec_cv=sps.cv,
                samples_per_sec_values=sps.values,
                noisy=sps.noisy,
                relative=sps.median / best[r.key[:2]],
                ms_per_step=(r.train.get("ms_per_step") or {}).get("median"),
                warmup_seconds=warm.get("median"),
                test_accuracy=(d.get("evaluate") or {}).get("accuracy"),
                predict_accuracy=(d.get("predict") or {}).get("argmax_accuracy"),
                reload_ok=all(v.get("predictions_match") for v in save.values()) if save else None,
                train_samples=(d.get("data") or {}).get("train_samples"),
                efficiency=(d.get("efficiency") or {}).get("fraction_of_probe"),
                # some layers' FLOPs not counted (the user's own model): a lower bound
                efficiency_partial=bool((d.get("efficiency") or {}).get("partial")),
                peak_cpu=_peak(d, "cpu"),
                peak_gpu=_peak(d, "gpu_sm"),
            )
            one = single.get(_scaling_key(d))
            if r.devices > 1 and one:
                row["single_device_samples_per_sec"] = one
                row["scaling_efficiency"] = sps.median / (r.devices * one)
        out.append(row)
    return out


def _scaling_key(doc: dict) -> tuple[str, str, str, str]:
    """A cell apart from its devices and processes, on the same hardware: what its scaling is
    measured against (never a one-device cell of another machine, say another shard's)."""
    r = Result(doc)
    settings = {
        k: v
        for k, v in r.cell.items()
        if k not in ("id", "data_parallel", "data_parallel_processes", "backends")
    }
    return r.scenario, r.backend, json.dumps(settings, sort_keys=True), hardware(doc)


def hardware(doc: dict) -> str:
    """CPU model and logical cores, and the GPUs: what makes two runners' numbers comparable."""
    env = Result(doc).environment
    gpus = ", ".join(g.get("name", "?") for g in (env.get("gpu") or {}).get("gpus", []))
    cpu = f"{env.get('cpu_model')} x{env.get('cpu_count_logical')}"
    return f"{cpu}, GPU {gpus}" if gpus else cpu


def _single_device(docs: list[dict]) -> dict[tuple[str, str, str, str], float]:
    """Median samples/s of each ok cell on one device in one process, by its scaling key."""
    return {
        _scaling_key(r.doc): r.throughput.median
        for r in map(Result, docs)
        if r.ok and r.devices == 1 and r.processes == 1
    }


def _peak(doc: dict, key: str) -> float | None:
    """Peak of a monitored quantity during the measured fits."""
    phase = ((doc.get("monitor") or {}).get("phases") or {}).get("fit") or {}
    return (phase.get(key) or {}).get("peak")


def _backend_version(doc: dict) -> str | None:
    versions = Result(doc).environment.get("backend_versions") or {}
    for name in (dist for b in NAMES for dist in BY_NAME[b].versions):
        if name in versions:
            return versions[name]
    return None
