"""``harness run``: run scenario files under a backend, one worker per cell."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "run scenario files under a backend, one worker per cell"
PARENTS = ("runs", "resume", "skips")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenarios", nargs="+", type=Path, help="scenario TOML files")
    p.add_argument(
        "--report", metavar="PATH", help="also write a report over every run under --out"
    )
    p.add_argument(
        "--shard",
        metavar="K/N",
        help="run only shard K of N: a deterministic 1/N of the cells, balanced by expected "
        "cost, the same on every machine given the same scenarios and --backend (a CI matrix "
        "of N runners covers every cell once; `harness compare` merges their results)",
    )
    p.add_argument(
        "--coordinator",
        metavar="HOST:PORT",
        help="multi-process cells (data_parallel_processes > 1) start only their process 0 "
        "here, listening on HOST:PORT; the others join from other hosts with `harness "
        "worker-join` (default: every process here, on loopback)",
    )


def main(args: argparse.Namespace) -> int:
    from ..orchestrate import run

    return run.main(
        scenarios=args.scenarios, backend=args.backend, out=args.out, resume=args.resume,
        retry_failed=args.retry_failed, keras_verbose=args.keras_verbose,
        fail_on_skip=args.fail_on_skip, report=args.report, shard_spec=args.shard,
        coordinator=args.coordinator,
    )  # fmt: skip
