"""A cell's result once its workers are gone: the worker's own, or a skeleton that records
why there is none (keeping what was measured); a multi-process cell's processes merged into
one result; what a worker's log says of the CUDA libraries quoted in the reason."""

from __future__ import annotations

import dataclasses
import re
import signal
import subprocess
from pathlib import Path
from typing import Any

from .. import results
from ..results import Status
from .jobs import Job
from .processes import phase_name

# Lines of a worker's log that say why the GPU could not be used. TensorFlow names the CUDA
# libraries it could not load only there (device_env has a TensorFlow GPU cell log them): the
# reason of a cell that failed in its device phase quotes them.
LIBRARY_LINES = re.compile(
    r"Could not (?:load dynamic library|find cuda drivers)|Cannot dlopen some GPU libraries"
    r"|failed call to cuInit|kernel driver does not appear to be running"
)
# What TensorFlow's C++ log puts before a message: "2026-01-01 10:00:00.1: W path/file.cc:64] "
# or "W0000 00:00:1.2 1234 file.cc:64] ".
_LOG_PREFIX = re.compile(r"^.*?\.cc:\d+\]\s*")


def skeleton(
    job: Job, run_id: str, environment: dict[str, Any], shard: str | None
) -> dict[str, Any]:
    """A result for a cell whose worker wrote none (or never started)."""
    doc = results.new_result(job.cell.to_json(), job.backend, {"name": job.scenario.name})
    doc["run_id"] = run_id
    doc["environment"] = environment
    if shard:
        doc["shard"] = shard
    if job.options.ab:
        doc["ab"] = dataclasses.asdict(job.options.ab)
    return doc


def finalize(
    path: Path,
    returncode: int | None,
    outcome: str | None,
    state: dict[str, Any],
    log_path: Path,
    blank: dict[str, Any],
) -> dict[str, Any]:
    """Reads the worker's result, or records why there is none (keeping partial data).

    Args:
        path: the worker's result file.
        returncode: the worker's exit code (negative: the signal that killed it).
        outcome: why the worker was stopped (``processes.watch``), None if it exited itself.
        state: its latest phase event (``processes.follow_events``).
        log_path: its log, whose last lines a failure quotes.
        blank: the cell's result where the worker wrote none (``skeleton``).
    """
    doc = None
    if path.exists():
        try:
            doc = results.read_result(path)
            doc.pop("_path", None)
        except results.ResultError:
            doc = None
    complete = doc is not None and doc.get("finished") is not None and outcome is None
    if complete and returncode == 0:
        doc["_path"] = str(path)
        return doc
    if doc is None:
        doc = blank
    # The event stream is more current than the file (saved only after some phases).
    if state.get("phase") != "starting":
        doc["phase"] = state["phase"]
        phase = phase_name(state)
    else:
        phase = doc.get("phase") or "startup"
    if outcome == "interrupted":
        doc["status"] = Status.INTERRUPTED
        doc["reason"] = f"interrupted by the user during {phase}"
    elif outcome:
        doc["status"], doc["reason"] = Status.FAILED, f"{outcome} (during {phase})"
    elif returncode is not None and returncode < 0:
        name = signal.Signals(-returncode).name
        doc["status"], doc["reason"] = Status.FAILED, f"worker killed by {name} during {phase}"
    else:
        doc["status"] = Status.FAILED
        doc["reason"] = f"worker exited with code {returncode} during {phase}: " + tail(log_path)
    doc["finished"] = results.utc_now()
    doc["log"] = str(log_path)
    results.write_json_atomic(path, doc, overwrite=True)
    doc["_path"] = str(path)
    return doc


def merge_processes(
    job: Job,
    doc: dict[str, Any],
    record: Path,
    running: list[tuple[int, subprocess.Popen, Path]],
    logs: list[Path],
) -> dict[str, Any]:
    """One result for a multi-process cell: process 0's (its clock gives the
    throughput), with what every process here recorded, utilization included.

    Args:
        job: the cell.
        doc: the result of the first process here, as ``finalize`` gave it.
        record: its file, rewritten with the merged result.
        running: (process id, worker, its result file) of each process here.
        logs: each one's log, in the same order.
    """
    views = []
    for (i, proc, out), log in zip(running, logs, strict=True):
        view: dict[str, Any] = {"process_id": i, "result": str(out), "log": str(log)}
        try:
            other = doc if out == record else results.read_result(out)
        except results.ResultError as exc:
            view.update(status=Status.FAILED, reason=f"no result: {exc}")
        else:
            sps = (other.get("train") or {}).get("samples_per_sec") or {}
            view.update(
                status=other.get("status"),
                reason=other.get("reason"),
                samples_per_sec=sps.get("median"),
                # its utilization over the measured fits (all of it stays in its file)
                fit_utilization=((other.get("monitor") or {}).get("phases") or {}).get("fit"),
            )
        if proc.returncode not in (0, None) and view.get("status") == Status.OK:
            view["status"] = Status.FAILED
        views.append(view)
    procs = job.cell.data_parallel_processes
    dist = doc.setdefault("distribution", {"processes": procs})
    dist["process_results"] = views
    dist["processes_elsewhere"] = sorted(set(range(procs)) - {v["process_id"] for v in views})
    bad = next((v for v in views if v["status"] != Status.OK), None)
    if doc.get("status") == Status.OK and bad is not None:
        doc["status"] = Status.FAILED
        doc["reason"] = f"process {bad['process_id']} of {procs}: {bad.get('reason')}"
    _rewrite(record, doc)
    return doc


def quote_log(doc: dict[str, Any], path: Path, log_path: Path) -> None:
    """Adds to the reason of a cell that failed in its device phase what its worker's log says
    of the CUDA libraries (LIBRARY_LINES), and rewrites its result."""
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return
    lines: list[str] = []
    for line in text.splitlines():
        if LIBRARY_LINES.search(line):
            said = " ".join(_LOG_PREFIX.sub("", line.strip(), count=1).split())[:300]
            if said not in lines:
                lines.append(said)
    if not lines:
        return
    doc["reason"] = f"{doc.get('reason')}; the worker's log: " + " | ".join(lines[:6])
    _rewrite(path, doc)


def _rewrite(path: Path, doc: dict[str, Any]) -> None:
    """Writes a result again, without the in-memory ``_path`` it carries."""
    results.write_json_atomic(path, {k: v for k, v in doc.items() if k != "_path"},
                              overwrite=True)  # fmt: skip


def tail(log_path: Path, lines: int = 3) -> str:
    """The last lines of a worker's log, on one line."""
    try:
        text = log_path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    tail = " | ".join(line.strip() for line in text[-lines:] if line.strip())
    return re.sub(r"\s+", " ", tail)[:400] or "(empty log)"
