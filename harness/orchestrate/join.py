"""``harness worker-join``: this host's process of each multi-process cell of a run that
another host started with ``harness run --coordinator HOST:PORT``.

It plans the same jobs from the same scenario files (and ``--backend``, ``--shard``), keeps the
multi-process cells, and runs process ``--process-id`` of each, in the same order, with the
environment that ``keras.distribution.initialize`` reads (KERAS_DISTRIBUTION_JOB_ADDRESSES,
KERAS_DISTRIBUTION_NUM_PROCESSES, KERAS_DISTRIBUTION_PROCESS_ID). Each process's result, with
its own utilization, goes to ``logs/`` of a ``join-*`` folder here; the throughput of the cell
is the coordinator's, in the run on the first host.
"""

from __future__ import annotations

import argparse
import sys

from .. import scenario
from ..backends import resolve_backends
from ..environment import environment
from ..errors import UsageError
from ..results import write_json_atomic
from . import runner, shard
from .manifest import run_dir_for
from .run import check_address


def main(args: argparse.Namespace) -> int:
    scenarios = scenario.load_all(args.scenarios)
    backends = resolve_backends(args.backend)
    jobs, _ = runner.plan(scenarios, backends)
    if args.shard is not None:
        jobs = shard.select(jobs, *shard.parse(args.shard))
    jobs = [j for j in jobs if j.cell.data_parallel_processes > 1]
    check_address(args.coordinator, jobs)
    if not jobs:
        raise UsageError(
            "no multi-process cell (data_parallel_processes > 1) to join in these scenarios "
            f"under {', '.join(backends)}"
        )
    for job in jobs:
        procs = job.cell.data_parallel_processes
        if not 0 < args.process_id < procs:
            raise UsageError(
                f"--process-id {args.process_id}: {job.scenario.name}/{job.cell.id} has "
                f"{procs} processes; join as 1 to {procs - 1} (process 0 is the coordinator's)"
            )
    run_dir = run_dir_for(
        argparse.Namespace(resume=None, out=args.out),
        backends,
        prefix="join-",
        what="join folder",
        manifest="join.json",
    )
    env = environment()
    write_json_atomic(
        run_dir / "join.json",
        {
            "run_id": run_dir.name,
            "argv": sys.argv,
            "backends": backends,
            "coordinator": args.coordinator,
            "process_id": args.process_id,
            "cells": [shard.key(j) for j in jobs],
            "environment": env,
        },
    )
    print(
        f"joining {len(jobs)} multi-process cell(s) at {args.coordinator} as process "
        f"{args.process_id} -> {run_dir}",
        file=sys.stderr,
    )
    run = runner.Runner(
        jobs,
        run_dir,
        environment=env,
        coordinator=args.coordinator,
        processes_here=[args.process_id],
    )
    docs = run.run()
    if run.interrupted:
        return 130
    return 1 if any(d["status"] == "failed" for d in docs) else 0  # as `harness run`
