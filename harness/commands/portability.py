"""``harness portability``: each saved .keras model loaded under the other backends."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "load each saved .keras model under the other backends"
PARENTS = ()


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("results", type=Path, help="results root (default layout: results/)")
    p.add_argument("--backend", help="target backends installed here (default: all of them)")
    p.add_argument("--python", action="append", default=[], metavar="BACKEND=PATH",
                   help="also load under BACKEND with this interpreter (another environment's; "
                   "repeatable; a path not there yet is noted and skipped)")  # fmt: skip
    p.add_argument("--trust-code", action="store_true",
                   help="import the model modules that results name (import references: the "
                   "user's own code, which registers custom layers); only for results you trust, "
                   "never downloaded ones (without it, such models are not checked)")  # fmt: skip


def main(args: argparse.Namespace) -> int:
    from ..orchestrate import portability

    return portability.main(
        results_dir=args.results, backend=args.backend, pythons=args.python,
        trust_code=args.trust_code,
    )  # fmt: skip
