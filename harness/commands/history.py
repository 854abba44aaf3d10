"""``harness history``: throughput across commits per machine and cell, with its steps."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "throughput across commits per machine and cell, with the steps where it moved"
PARENTS = ()


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("results", nargs="+", type=Path, help="result folders (a stored history)")
    p.add_argument("--format", choices=["md", "html"], default="md")
    p.add_argument("--out", type=Path)


def main(args: argparse.Namespace) -> int:
    from ..report import history

    return history.main(results=args.results, fmt=args.format, out=args.out)
