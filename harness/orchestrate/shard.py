"""``--shard K/N``: a deterministic 1/N of a run's cells, so that N identical runners of a CI
matrix cover a long scenario set in parallel and every cell runs exactly once.

The split depends only on the planned jobs (the scenario files and ``--backend``), never on the
machine, the clock or a random seed: every runner given the same arguments computes the same
split. Jobs are balanced by their expected cost (longest first, each to the shard with the least
so far, ties to the lower shard), and each shard runs its jobs in the plan's order.
"""

from __future__ import annotations

import re

from ..errors import UsageError
from ..results import MAX_SHARDS
from .jobs import Job

# Seconds a worker spends outside its measured fits: interpreter and backend import, data,
# build and compile, evaluate, save and reload (about what this machine's CPU cells take).
STARTUP_SECONDS = 12.0
# Each process of a multi-process cell imports and joins; they share the machine's cores.
PROCESS_SECONDS = 6.0


def parse(text: str) -> tuple[int, int]:
    """``"2/4"`` -> (2, 4); anything else is one line naming ``--shard``."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not m or not 1 <= int(m.group(1)) <= int(m.group(2)) <= MAX_SHARDS:
        raise UsageError(f"--shard {text}: expected K/N with 1 <= K <= N <= {MAX_SHARDS}, e.g. 1/2")
    return int(m.group(1)), int(m.group(2))


def expected_seconds(job: Job) -> float:
    """A cell's expected wall time: startup, then every fit it measures (at least min_time
    each, plus the first fit that calibrates) and its warm-up."""
    cell = job.cell
    fits = (cell.repeats + 1) * max(cell.min_time, 0.5)
    return STARTUP_SECONDS + fits + PROCESS_SECONDS * (cell.data_parallel_processes - 1)


def assign(jobs: list[Job], n: int) -> list[int]:
    """The shard (0 to n - 1) of each job, balanced by expected cost."""
    load = [0.0] * n
    shard = [0] * len(jobs)
    order = sorted(range(len(jobs)), key=lambda i: (-expected_seconds(jobs[i]), jobs[i].key))
    for i in order:
        target = min(range(n), key=lambda s: (load[s], s))
        shard[i] = target
        load[target] += expected_seconds(jobs[i])
    return shard


def select(jobs: list[Job], k: int, n: int) -> list[Job]:
    """Shard ``k`` of ``n`` (1-based), in plan order."""
    return [job for job, s in zip(jobs, assign(jobs, n), strict=True) if s == k - 1]
