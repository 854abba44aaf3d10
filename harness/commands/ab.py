"""``harness ab``: baseline and candidate interleaved round by round, then the gate."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common_args import gate_options

HELP = "baseline and candidate interleaved round by round, then the regression gate"
PARENTS = ("runs", "resume", "skips", "ranks", "verdicts")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenarios", nargs="+", type=Path, help="scenario TOML files")
    p.add_argument(
        "--rounds", type=int, default=8, help="worker processes per side, even, >= 4 (8)"
    )
    for side, example in (("baseline", ""), ("candidate", ", e.g. step_delay_ms=0.3")):
        p.add_argument(f"--{side}-python", help=f"interpreter of the {side} (default: this one)")
        p.add_argument(f"--{side}-set", action="append", default=[], metavar="KEY=VALUE",
                       help=f"scenario setting for the {side} side (repeatable){example}")  # fmt: skip


def main(args: argparse.Namespace) -> int:
    from ..orchestrate import ab

    return ab.main(
        scenarios=args.scenarios, backend=args.backend, out=args.out, resume=args.resume,
        retry_failed=args.retry_failed, keras_verbose=args.keras_verbose,
        fail_on_skip=args.fail_on_skip, rounds=args.rounds,
        baseline_python=args.baseline_python, candidate_python=args.candidate_python,
        baseline_set=args.baseline_set, candidate_set=args.candidate_set, **gate_options(args),
    )  # fmt: skip
