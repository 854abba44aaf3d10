"""``harness env``: what the harness sees: versions, CPU, GPU, NVML."""

from __future__ import annotations

import argparse

HELP = "what the harness sees: versions, CPU, GPU, NVML"
PARENTS = ()


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="everything, as JSON")


def main(args: argparse.Namespace) -> int:
    from .. import environment

    return environment.main(as_json=args.json)
