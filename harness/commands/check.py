"""``harness check``: the regression gate over stored results (exit 0, 1 or 2)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common_args import gate_options

HELP = "regression gate: exit 1 when a cell got slower beyond noise"
PARENTS = ("ranks", "verdicts", "skips")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("current", nargs="+", type=Path, help="result files or run folders under test")
    base = p.add_mutually_exclusive_group(required=True)
    base.add_argument("--baseline", nargs="+", type=Path, help="baseline results or folders")
    base.add_argument(
        "--baseline-history",
        type=Path,
        metavar="DIR",
        help="judge each cell against the last --window runs of it on this machine (the same "
        "hardware and versions, the same workload) stored under DIR, not against one earlier run",
    )
    p.add_argument("--window", type=int, default=20, help="runs of --baseline-history (20)")
    p.add_argument("--allow-mismatch", action="store_true", help="compare across machines/versions")
    p.add_argument(
        "--allow-workload-change",
        action="store_true",
        help="judge cells whose workload (settings, model, data, backend settings) differs "
        "from the baseline's; without it they are 'workload changed' and the gate exits 2",
    )


def main(args: argparse.Namespace) -> int:
    from ..gate import check

    return check.main(
        current_paths=args.current, baseline_paths=args.baseline,
        baseline_history=args.baseline_history, window=args.window,
        allow_mismatch=args.allow_mismatch, allow_workload_change=args.allow_workload_change,
        fail_on_skip=args.fail_on_skip, **gate_options(args),
    )  # fmt: skip
