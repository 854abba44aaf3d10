"""``harness COMMAND``: builds the parser from the command modules (harness/commands/) and
dispatches to the chosen one's ``main(args)``.

The work of a command is imported only when it runs, so ``--help`` stays fast. A user error is
one line on stderr and exit code 2, never a traceback. Nothing here imports keras or a
backend: those live only in the worker process.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .commands import COMMANDS
from .commands.common_args import parents
from .errors import UserError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="harness", description="Benchmark one Keras 3 model under TensorFlow, JAX and PyTorch."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    shared = parents()
    for name, module_name in COMMANDS:
        module = importlib.import_module(f"harness.commands.{module_name}")
        p = sub.add_parser(name, help=module.HELP, parents=[shared[k] for k in module.PARENTS])
        module.add_arguments(p)
        p.set_defaults(run_command=module.main)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run_command(args)
    except UserError as exc:
        print(f"harness: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("harness: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
