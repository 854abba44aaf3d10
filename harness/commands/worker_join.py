"""``harness worker-join``: this host's process of each multi-process cell of a run started
on another host."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "join the multi-process cells of a run started on another host, as one process of each"
PARENTS = ("runs",)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenarios", nargs="+", type=Path, help="the scenario files that run was given")
    p.add_argument("--coordinator", metavar="HOST:PORT", required=True,
                   help="the address that run was given with --coordinator")  # fmt: skip
    p.add_argument("--process-id", type=int, required=True, metavar="I",
                   help="this host's process of each cell, 1 to processes - 1")  # fmt: skip
    p.add_argument("--shard", metavar="K/N", help="the --shard that run was given")
    p.add_argument("--wait", type=float, default=600.0, metavar="SECONDS",
                   help="how long to wait for the coordinator to reach each cell (600)")  # fmt: skip


def main(args: argparse.Namespace) -> int:
    from ..orchestrate import join

    return join.main(
        scenarios=args.scenarios, backend=args.backend, out=args.out,
        coordinator=args.coordinator, process_id=args.process_id, shard_spec=args.shard,
        wait=args.wait,
    )  # fmt: skip
