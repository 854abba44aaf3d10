"""``harness worker-join``: this host's process of each multi-process cell of a run that
another host started with ``harness run --coordinator HOST:PORT``.

It plans the same jobs from the same scenario files (and ``--backend``, ``--shard``), keeps the
multi-process cells, and runs process ``--process-id`` of each, in the same order, with the
environment that ``keras.distribution.initialize`` reads (KERAS_DISTRIBUTION_JOB_ADDRESSES,
KERAS_DISTRIBUTION_NUM_PROCESSES, KERAS_DISTRIBUTION_PROCESS_ID). The k-th multi-process cell
meets at PORT + k - 1: before each cell it waits for the coordinator to listen there, and skips
the cells the coordinator is already past (a run resumed on the first host, a cell it skipped),
so the two hosts never drift a cell apart. Each process's result, with its own utilization,
goes to ``logs/`` of a ``join-*`` folder here; the throughput of the cell is the coordinator's,
in the run on the first host.
"""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..results import Status
from . import setup, shard
from .jobs import Job
from .manifest import JOIN
from .run import check_address
from .runner import Runner


class JoinRunner(Runner):
    """A runner that meets the coordinator cell by cell (see the module's docstring)."""

    def __init__(self, *args, wait: float, **kwargs):
        super().__init__(*args, **kwargs)
        self.wait = wait

    def run_job(self, index: int, job: Job, path: Path) -> dict[str, Any]:
        behind = self.catch_up(job)
        if behind:
            return self.skip(index, job, path, behind, "join")
        return super().run_job(index, job, path)

    def catch_up(self, job: Job, clock=time.monotonic) -> str | None:
        """Waits until the coordinator listens at this cell's port or at a later cell's;
        None to run this cell, else why it is skipped."""
        multi = self.multi
        here = next(n for n, j in enumerate(multi) if j is job)
        deadline = clock() + self.wait
        while True:
            for later in range(here, len(multi)):
                address = self.address(multi[later])
                if _listening(address):
                    if later == here:
                        return None
                    return (
                        f"the coordinator is already at {multi[later].key} "
                        f"({address}): this cell of the run is behind it"
                    )
            if clock() > deadline:
                return f"no coordinator listened at {self.address(job)} within {self.wait:g} s"
            time.sleep(0.5)


def _listening(address: str) -> bool:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=0.5):
            return True
    except OSError:
        return False


def main(*, backend, coordinator, out, process_id, scenarios, shard_spec, wait) -> int:
    planned = setup.plan(scenarios, backend, empty=False)
    backends, jobs = planned.backends, planned.jobs
    if shard_spec is not None:
        jobs = shard.select(jobs, *shard.parse(shard_spec))
    jobs = [j for j in jobs if j.cell.data_parallel_processes > 1]
    check_address(coordinator, jobs)
    if not jobs:
        raise UsageError(
            "no multi-process cell (data_parallel_processes > 1) to join in these scenarios "
            f"under {', '.join(backends)}"
        )
    for job in jobs:
        procs = job.cell.data_parallel_processes
        if not 0 < process_id < procs:
            raise UsageError(
                f"--process-id {process_id}: {job.scenario.name}/{job.cell.id} has "
                f"{procs} processes; join as 1 to {procs - 1} (process 0 is the coordinator's)"
            )
    if not wait > 0:
        raise UsageError(f"--wait {wait}: must be a number of seconds > 0")
    run = setup.start(
        JOIN,
        backends,
        jobs,
        out=out,
        record=lambda jobs: {
            "backends": backends,
            "coordinator": coordinator,
            "process_id": process_id,
            "cells": [j.key for j in jobs],
        },
        runner=JoinRunner,
        coordinator=coordinator,
        processes_here=[process_id],
        wait=wait,
    )
    print(
        f"joining {len(jobs)} multi-process cell(s) at {coordinator} as process "
        f"{process_id} -> {run.run_dir}",
        file=sys.stderr,
    )
    docs = run.run()
    if run.interrupted:
        return 130
    return 1 if any(d["status"] == Status.FAILED for d in docs) else 0  # as `harness run`
