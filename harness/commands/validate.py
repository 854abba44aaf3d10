"""``harness validate``: check scenario files (and their import references) without running."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..backends import NAMES

HELP = "check scenario files without running them (import references: in a quick worker)"
PARENTS = ()


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenarios", nargs="+", type=Path)
    p.add_argument(
        "--backend",
        choices=NAMES,
        help="check import references under this backend (default: jax where installed)",
    )


def main(args: argparse.Namespace) -> int:
    from ..orchestrate import refcheck

    return refcheck.validate(args.scenarios, backend=args.backend)
