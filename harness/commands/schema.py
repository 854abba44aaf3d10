"""``harness schema``: the JSON Schema of scenario files, or the docs' table of every key."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HELP = "print the JSON Schema of scenario files"
PARENTS = ()


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path)
    p.add_argument(
        "--markdown", action="store_true", help="the table of every key (docs/scenarios.md)"
    )


def main(args: argparse.Namespace) -> int:
    from .. import scenario
    from ..results import write_text

    if args.markdown:  # the key table of docs/scenarios.md
        text = scenario.keys_table() + "\n"
    else:
        text = json.dumps(scenario.json_schema(), indent=2) + "\n"
    if args.out:
        write_text(args.out, text, f"--out {args.out}")
    else:
        sys.stdout.write(text)
    return 0
