"""``harness compare``: a report from result files, in the format asked for."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..report.build import FORMATS

HELP = "render a comparison report from result files"
PARENTS = ()


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("results", nargs="+", type=Path, help="result files or folders")
    p.add_argument("--format", choices=sorted(FORMATS), default="md")
    p.add_argument("--out", type=Path)
    p.add_argument("--all", action="store_true", help="every result, not only the newest per cell")
    p.add_argument("--tee", action="store_true", help="with --out, print the report too")


def main(args: argparse.Namespace) -> int:
    from ..report import build

    return build.main(
        results=args.results, fmt=args.format, out=args.out, every=args.all, tee=args.tee
    )
