"""``harness run``: plan the cells, record the plan, run a worker per cell, report."""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import UsageError
from ..report.markdown import render_markdown
from ..results import Status, load_results, write_text
from ..results import fail_on_skip as report_not_run
from . import setup, shard
from .jobs import Job
from .manifest import RUN, plan_record


def check_address(address: str, jobs: list[Job]) -> None:
    """HOST:PORT for --coordinator, with a port for each multi-process cell (PORT, PORT + 1,
    ...), or one line naming it."""
    host, sep, port = address.rpartition(":")
    bare = host.strip("[]")
    if (
        not sep
        or not bare
        or any(c.isspace() or c in ",/" for c in host)  # keras splits addresses at commas
        or (":" in bare and not (host.startswith("[") and host.endswith("]")))  # IPv6: [::1]
        or not port.isdigit()
        or int(port) == 0
    ):
        raise UsageError(
            f"--coordinator {address}: expected HOST:PORT (a port from 1), e.g. 10.0.0.1:1234 "
            "or [::1]:1234"
        )
    cells = sum(1 for j in jobs if j.cell.data_parallel_processes > 1)
    if int(port) > 65536 - max(cells, 1):
        raise UsageError(
            f"--coordinator {address}: the {cells} multi-process cell(s) take ports {port} to "
            f"{int(port) + max(cells, 1) - 1}, beyond 65535"
        )


def main(
    *,
    backend,
    coordinator,
    fail_on_skip,
    keras_verbose,
    out,
    report,
    resume,
    retry_failed,
    scenarios,
    shard_spec,
) -> int:
    """``harness run``: every cell of the scenarios under each backend, then the reports."""
    planned = setup.plan(scenarios, backend, notes=True)
    backends, jobs = planned.backends, planned.jobs
    part = None
    if shard_spec is not None:  # an empty --shard "$VAR" is a mistake, not "no sharding"
        k, n = shard.parse(shard_spec)
        part = f"{k}/{n}"
        jobs = shard.select(jobs, k, n)
        print(f"shard {part}: {len(jobs)} of {len(planned.jobs)} cell(s)", file=sys.stderr)
        if not jobs:  # more runners than cells: this one has nothing to do, and that is fine
            print(f"shard {part} holds no cell of this plan; nothing to run", file=sys.stderr)
            return 0
    if coordinator is not None:
        check_address(coordinator, jobs)

    def record(jobs: list[Job]) -> dict:
        settings = plan_record(jobs)
        return {
            "backends": backends,
            "scenarios": [sc.path for sc in planned.scenarios],
            "cells": list(settings),  # the keys alone, as older manifests have them
            "settings": settings,
            "shard": part,
        }

    run = setup.start(
        RUN,
        backends,
        jobs,
        out=out,
        resume=resume,
        # Shards of a CI matrix start in the same second: their folders must differ when merged.
        suffix=f"-shard{part.replace('/', 'of')}" if part else "",
        # The user's model and dataset functions, tried once before anything is written
        check=[setup.References(planned.scenarios, [j.cell for j in jobs])],
        outputs={"--report": report},
        record=record,
        verbose=keras_verbose,
        retry_failed=retry_failed,
        coordinator=coordinator,
        processes_here=[0] if coordinator is not None else None,
        shard=part,
    )
    run_dir = run.run_dir
    print(
        f"run {run_dir.name}: {len(jobs)} cell(s) under {', '.join(backends)} -> {run_dir}",
        file=sys.stderr,
    )
    docs = run.run()
    print(render_markdown(docs))
    if report:
        all_docs, problems = load_results([Path(out)], runs_only=True)
        text = render_markdown(all_docs, problems)
        write_text(Path(report), text, f"--report {report}")
        print(f"\nreport over every run under {out}: {report}\n", file=sys.stderr)
        print(text)
    if run.interrupted:
        print(f"interrupted; finish with: harness run ... --resume {run_dir}", file=sys.stderr)
        return 130
    code = 0
    failed = [d for d in docs if d["status"] == Status.FAILED]
    if failed:
        print(
            f"{len(failed)} cell(s) failed; see the reasons above and {run_dir}/logs",
            file=sys.stderr,
        )
        code = 1
    if fail_on_skip:  # after every result and report is written: nothing is lost
        code = max(code, report_not_run(docs))
    return code
