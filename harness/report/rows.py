"""The report's tidy rows: one per (scenario, cell, backend), from result files.

Every report (markdown, HTML, CSV, JSON) is a pure view of these rows and the result files:
it never imports a backend and never re-runs anything.
"""

from __future__ import annotations

import json
from typing import Any

from ..backends import BY_NAME, NAMES
from ..results import result_key


def rows(docs: list[dict]) -> list[dict[str, Any]]:
    """A tidy table: one row per (scenario, cell, backend), with speed relative to the fastest."""
    out = []
    best: dict[tuple, float] = {}
    for d in docs:
        if d["status"] == "ok":
            k = result_key(d)[:2]
            best[k] = max(best.get(k, 0.0), d["train"]["samples_per_sec"]["median"])
    single = _single_device(docs)
    for d in docs:
        cell = d["cell"]
        devices = cell.get("data_parallel", 1)
        row: dict[str, Any] = {
            "scenario": result_key(d)[0],
            "cell": cell.get("id"),
            "backend": d["backend"],
            "backend_version": _backend_version(d),
            "status": d["status"],
            "reason": d.get("reason"),
            "dataset": (d.get("data") or {}).get("dataset", cell.get("dataset")),
            "pipeline": cell.get("pipeline"),
            "batch_size": cell.get("batch_size"),
            "optimizer": (cell.get("optimizer") or {}).get("name"),
            "device": (d.get("device") or {}).get("variables_on") or cell.get("device"),
            "data_parallel": devices,
            "processes": cell.get("data_parallel_processes", 1),
            "engine": (d.get("distribution") or {}).get("engine"),
            "run_id": d.get("run_id"),
        }
        if d["status"] == "ok":
            sps = d["train"]["samples_per_sec"]
            warm = (d["train"].get("warmup") or {}).get("seconds") or {}
            save = d.get("save") or {}
            row.update(
                samples_per_sec=sps["median"],
                samples_per_sec_mad=sps["mad"],
                samples_per_sec_cv=sps["cv"],
                samples_per_sec_values=sps["values"],
                noisy=sps.get("noisy", False),
                relative=sps["median"] / best[result_key(d)[:2]],
                ms_per_step=d["train"]["ms_per_step"]["median"],
                warmup_seconds=warm.get("median"),
                test_accuracy=(d.get("evaluate") or {}).get("accuracy"),
                predict_accuracy=(d.get("predict") or {}).get("argmax_accuracy"),
                reload_ok=all(v.get("predictions_match") for v in save.values()) if save else None,
                train_samples=d["data"]["train_samples"],
                efficiency=(d.get("efficiency") or {}).get("fraction_of_probe"),
                # some layers' FLOPs not counted (the user's own model): a lower bound
                efficiency_partial=bool((d.get("efficiency") or {}).get("partial")),
                peak_cpu=_peak(d, "cpu"),
                peak_gpu=_peak(d, "gpu_sm"),
            )
            one = single.get(_scaling_key(d))
            if devices > 1 and one:
                row["single_device_samples_per_sec"] = one
                row["scaling_efficiency"] = sps["median"] / (devices * one)
        out.append(row)
    return out


def _scaling_key(doc: dict) -> tuple[str, str, str, str]:
    """A cell apart from its devices and processes, on the same hardware: what its scaling is
    measured against (never a one-device cell of another machine, say another shard's)."""
    settings = {
        k: v
        for k, v in doc["cell"].items()
        if k not in ("id", "data_parallel", "data_parallel_processes", "backends")
    }
    return result_key(doc)[0], doc["backend"], json.dumps(settings, sort_keys=True), hardware(doc)


def hardware(doc: dict) -> str:
    """CPU model and logical cores, and the GPUs: what makes two runners' numbers comparable."""
    env = doc.get("environment") or {}
    gpus = ", ".join(g.get("name", "?") for g in (env.get("gpu") or {}).get("gpus", []))
    cpu = f"{env.get('cpu_model')} x{env.get('cpu_count_logical')}"
    return f"{cpu}, GPU {gpus}" if gpus else cpu


def _single_device(docs: list[dict]) -> dict[tuple[str, str, str, str], float]:
    """Median samples/s of each ok cell on one device in one process, by its scaling key."""
    return {
        _scaling_key(d): d["train"]["samples_per_sec"]["median"]
        for d in docs
        if d["status"] == "ok"
        and d["cell"].get("data_parallel", 1) == 1
        and d["cell"].get("data_parallel_processes", 1) == 1
    }


def _peak(doc: dict, key: str) -> float | None:
    """Peak of a monitored quantity during the measured fits."""
    phase = ((doc.get("monitor") or {}).get("phases") or {}).get("fit") or {}
    return (phase.get(key) or {}).get("peak")


def _backend_version(doc: dict) -> str | None:
    versions = (doc.get("environment") or {}).get("backend_versions") or {}
    for name in (dist for b in NAMES for dist in BY_NAME[b].versions):
        if name in versions:
            return versions[name]
    return None
