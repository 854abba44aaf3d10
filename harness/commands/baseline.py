"""``harness baseline``: keep a run's ok results as (part of) this machine's baseline."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common_args import DEFAULT_RESULTS

HELP = "store a run as the baseline for this machine"
PARENTS = ()


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", type=Path, help="a run folder (results/RUN_ID)")
    p.add_argument("--into", type=Path, default=DEFAULT_RESULTS / "baselines")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--add", action="store_true", help="add this run to the stored baseline")
    group.add_argument("--replace", action="store_true", help="start the baseline over")


def main(args: argparse.Namespace) -> int:
    from ..gate import baseline

    return baseline.main(run=args.run, into=args.into, add=args.add, replace=args.replace)
