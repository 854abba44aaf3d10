"""``harness calibrate``: this runner's noise floor and the smallest slowdown the gate catches."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "measure this runner's noise floor and the smallest slowdown the gate catches"
PARENTS = ("runs", "ranks")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenario", type=Path)
    p.add_argument("--runs", type=int, default=3, help="runs (or A/A jobs) of the same code (3)")
    p.add_argument("--interleaved", action="store_true", help="calibrate `harness ab` instead")
    p.add_argument("--rounds", type=int, default=8, help="with --interleaved: rounds per side")


def main(args: argparse.Namespace) -> int:
    from ..orchestrate import calibrate

    return calibrate.main(
        scenario_file=args.scenario, backend=args.backend, out=args.out, runs=args.runs,
        interleaved=args.interleaved, rounds=args.rounds, confidence=args.confidence,
        metric=args.metric, correction=args.correction,
    )  # fmt: skip
