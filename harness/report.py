"""Comparison reports: a pure view of result files (never imports a backend, never re-runs)."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

from . import results

BACKEND_ORDER = {"tensorflow": 0, "jax": 1, "torch": 2}


def load_results(paths: list[Path], *, latest: bool = True) -> tuple[list[dict], list[str]]:
    """Reads every result file under ``paths``.

    Args:
        paths: result files or folders (searched recursively).
        latest: keep only the newest result per (scenario, cell, backend), so a report over
            ``results/`` covers every backend run so far without repeating stale runs.

    Returns:
        The results, and one-line problems with files that could not be read.
    """
    docs, problems = [], []
    for f in results.iter_result_files(paths):
        try:
            docs.append(results.read_result(f))
        except results.ResultError as exc:
            problems.append(str(exc))
    if latest:
        newest: dict[tuple, dict] = {}
        for d in docs:
            key = _key(d)
            if key not in newest or (d.get("started") or "") >= (newest[key].get("started") or ""):
                newest[key] = d
        docs = list(newest.values())
    docs.sort(
        key=lambda d: (
            _key(d)[0],
            _natural(_key(d)[1]),
            BACKEND_ORDER.get(d["backend"], 9),
            d.get("started") or "",
        )
    )
    return docs, problems


def _natural(text: str) -> list:
    """Sort key that puts bs32 before bs128."""
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", text) if p]


def _key(doc: dict) -> tuple[str, str, str]:
    return (doc.get("scenario", {}).get("name", "?"), doc["cell"].get("id", "?"), doc["backend"])


def rows(docs: list[dict]) -> list[dict[str, Any]]:
    """A tidy table: one row per (scenario, cell, backend), with speed relative to the fastest."""
    out = []
    best: dict[tuple, float] = {}
    for d in docs:
        if d["status"] == "ok":
            k = _key(d)[:2]
            best[k] = max(best.get(k, 0.0), d["train"]["samples_per_sec"]["median"])
    for d in docs:
        cell = d["cell"]
        row: dict[str, Any] = {
            "scenario": _key(d)[0],
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
                relative=sps["median"] / best[_key(d)[:2]],
                ms_per_step=d["train"]["ms_per_step"]["median"],
                warmup_seconds=warm.get("median"),
                test_accuracy=(d.get("evaluate") or {}).get("accuracy"),
                predict_accuracy=(d.get("predict") or {}).get("argmax_accuracy"),
                reload_ok=all(v.get("predictions_match") for v in save.values()) if save else None,
                train_samples=d["data"]["train_samples"],
                efficiency=(d.get("efficiency") or {}).get("fraction_of_probe"),
                peak_cpu=_peak(d, "cpu"),
                peak_gpu=_peak(d, "gpu_sm"),
            )
        out.append(row)
    return out


def _peak(doc: dict, key: str) -> float | None:
    """Peak of a monitored quantity during the measured fits."""
    phase = ((doc.get("monitor") or {}).get("phases") or {}).get("fit") or {}
    return (phase.get(key) or {}).get("peak")


def _pct(x: float | None) -> str:
    return "" if x is None else f"{x:.0%}"


def _backend_version(doc: dict) -> str | None:
    versions = (doc.get("environment") or {}).get("backend_versions") or {}
    for name in ("tensorflow", "tensorflow-cpu", "jax", "torch"):
        if name in versions:
            return versions[name]
    return None


def _util(cpu: float | None, gpu: float | None) -> str:
    cpu_s = "-" if cpu is None else f"{cpu:.0f}%"
    gpu_s = "-" if gpu is None else f"{gpu:.0f}%"
    return f"{cpu_s} / {gpu_s}"


def _fmt_int(x: float | None) -> str:
    return "" if x is None else f"{x:,.0f}"


def render_markdown(docs: list[dict], problems: list[str] | None = None) -> str:
    """Markdown: one table over every cell and backend, then notes and environments."""
    table = rows(docs)
    long_reasons: list[str] = []
    lines = ["# Keras backend comparison", ""]
    if not table:
        lines.append("No results found.")
    else:
        lines += [
            "| scenario | cell | backend | status | data | train samples/s (median ± MAD) | "
            "vs fastest | ms/step | warm-up s | test acc | reload | matmul peak | CPU / GPU peak |",
            "|---|---|---|---|---|---:|---:|---:|---:|---:|---|---:|---:|",
        ]
        for r in table:
            data = f"{r['dataset']}/{r['pipeline']}"
            version = (
                f"{r['backend']} {r['backend_version']}" if r["backend_version"] else r["backend"]
            )
            if r["status"] == "ok":
                spread = f"{_fmt_int(r['samples_per_sec'])} ± {_fmt_int(r['samples_per_sec_mad'])}"
                if r["noisy"]:
                    spread += f" (noisy, cv {r['samples_per_sec_cv']:.0%})"
                warm = "" if r["warmup_seconds"] is None else f"{r['warmup_seconds']:.2f}"
                reload = {True: "ok", False: "MISMATCH", None: "-"}[r["reload_ok"]]
                acc = "-" if r["test_accuracy"] is None else f"{r['test_accuracy']:.3f}"
                lines.append(
                    f"| {r['scenario']} | {r['cell']} | {version} | ok | {data} (n={r['train_samples']}) "
                    f"| {spread} | {r['relative']:.2f}x | {r['ms_per_step']:.3f} | {warm} "
                    f"| {acc} | {reload} | {_pct(r['efficiency'])} "
                    f"| {_util(r['peak_cpu'], r['peak_gpu'])} |"
                )
            else:
                reason = (r["reason"] or "").replace("|", "/")
                if len(reason) > 90:
                    long_reasons.append(
                        f"- {r['scenario']}/{r['cell']} under {r['backend']}: {reason}"
                    )
                    reason = reason[:87].rstrip() + "..."
                lines.append(
                    f"| {r['scenario']} | {r['cell']} | {version} | {r['status']} | {data} "
                    f"| {reason} | | | | | | | |"
                )
    if long_reasons:
        lines += ["", "## Why cells did not run", ""] + long_reasons
    lines += ["", _environment_notes(docs)]
    if problems:
        lines += ["", "## Unreadable result files", ""] + [f"- {p}" for p in problems]
    return "\n".join(lines).rstrip() + "\n"


def _environment_notes(docs: list[dict]) -> str:
    seen: dict[tuple, list[str]] = {}
    for d in docs:
        env = d.get("environment") or {}
        ident = (
            env.get("hostname"),
            env.get("cpu_model"),
            env.get("keras"),
            d["backend"],
            ", ".join(f"{k} {v}" for k, v in sorted((env.get("backend_versions") or {}).items())),
        )
        seen.setdefault(ident, []).append(d.get("run_id") or "?")
    lines = ["## Environments", ""]
    for (host, cpu, keras, backend, versions), runs in sorted(seen.items(), key=str):
        lines.append(
            f"- {backend}: {versions or '?'} with keras {keras} on {host} ({cpu}); runs: "
            + ", ".join(sorted(set(runs)))
        )
    lines.append("")
    lines.append(
        "Throughput is steady-state training (warm-up fitted and timed apart), median over "
        "repeats with its median absolute deviation; 'noisy' marks a coefficient of variation "
        "above 10%. 'matmul peak': achieved training FLOP/s as a share of what the backend's own "
        "matmul reaches at the model's shape on the same device. CPU / GPU peak: system CPU "
        "and GPU SM utilization during the measured fits."
    )
    return "\n".join(lines)


CSV_COLUMNS = [
    "scenario", "cell", "backend", "backend_version", "status", "reason", "dataset", "pipeline",
    "batch_size", "optimizer", "device", "samples_per_sec", "samples_per_sec_mad",
    "samples_per_sec_cv", "relative", "ms_per_step", "warmup_seconds", "test_accuracy",
    "predict_accuracy", "reload_ok", "efficiency", "peak_cpu", "peak_gpu", "run_id",
]  # fmt: skip


def render_csv(docs: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in rows(docs):
        writer.writerow(r)
    return buf.getvalue()


def render_json(docs: list[dict]) -> str:
    return json.dumps(rows(docs), indent=1) + "\n"


RENDERERS = {"md": render_markdown, "csv": render_csv, "json": render_json}
