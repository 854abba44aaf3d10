"""``harness monitor``: nvidia-smi dmon style live utilization lines, plus CPU% and RSS."""

from __future__ import annotations

import argparse

HELP = "nvidia-smi dmon style live utilization lines"
PARENTS = ()


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--pid", type=int, default=None, help="process to report pcpu/rss for (default: none)"
    )
    p.add_argument(
        "--interval", type=_positive_float, default=1.0, help="seconds between samples (1)"
    )
    p.add_argument(
        "--count", type=_positive_int, default=None, help="stop after N samples (default: never)"
    )


def main(args: argparse.Namespace) -> int:
    from .. import dmon

    return dmon.run(pid=args.pid, interval=args.interval, count=args.count)
