"""The report's rows as CSV or JSON: one row per (scenario, cell, backend)."""

from __future__ import annotations

import csv
import io
import json

from .rows import rows

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
