"""``harness COMMAND``: argument parsing and dispatch, nothing else.

Each command is a ``main(args)`` in the module that owns its workflow, imported only when it
runs (so ``--help`` stays fast). A user error is one line on stderr and exit code 2, never a
traceback. Nothing here imports keras or a backend: those live only in the worker process.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

from . import scenario
from .backends import NAMES
from .errors import UserError
from .gate.verdicts import CORRECTIONS, METRICS
from .report.build import FORMATS
from .results import write_text

DEFAULT_RESULTS = Path("results")
METRIC_HELP = (
    "what the gate ranks: throughput (samples/s over each repeat's measured epochs, the "
    "default) or typical (batch size / the median 10-step chunk's time per step: a burst of "
    "other work on a shared runner slows some chunks, not the median one; blind to slowdowns "
    "that hit only some steps)"
)


def _parents() -> dict[str, argparse.ArgumentParser]:
    """Options that several commands share, each defined once."""
    runs = argparse.ArgumentParser(add_help=False)
    runs.add_argument(
        "--backend",
        help=f"{', '.join(NAMES)}, a comma list, or all "
        "(default: $KERAS_BACKEND, else the only one installed)",
    )
    runs.add_argument(
        "--out", default=DEFAULT_RESULTS, type=Path, help="results root (default results/)"
    )
    resume = argparse.ArgumentParser(add_help=False)
    resume.add_argument(
        "--resume", metavar="RUN_DIR", help="finish the unfinished cells of an earlier run"
    )
    resume.add_argument(
        "--retry-failed",
        action="store_true",
        help="with --resume, also run again the cells that finished failed",
    )
    resume.add_argument(
        "--keras-verbose",
        action="store_true",
        help="show Keras' per-epoch output (its progress logger syncs every step)",
    )
    skips = argparse.ArgumentParser(add_help=False)
    skips.add_argument(
        "--fail-on-skip",
        action="store_true",
        help="exit 1 when a cell ended skipped or unsupported, naming each (after every result "
        "and report is written): on a GPU runner, a cell skipped for want of a GPU means the "
        "job compared nothing, and must not pass",
    )
    ranks = argparse.ArgumentParser(add_help=False)
    ranks.add_argument(
        "--confidence",
        default="0.95",
        help="of the rank test, from 0.5 to below 1, e.g. 0.95 (the default) or 99%%",
    )
    ranks.add_argument("--metric", choices=sorted(METRICS), default="throughput", help=METRIC_HELP)
    ranks.add_argument(
        "--correction",
        choices=list(CORRECTIONS),
        default="holm",
        help="how the error rate is held over all the gate's cells: holm (Holm-Bonferroni, the "
        "default: at most 1 - confidence chance of any false alarm in the whole gate), bh "
        "(Benjamini-Hochberg: that share of false alarms among the alarms) or none (each cell "
        "alone: a 20-cell gate at 95%% then raises a false alarm most of the time)",
    )
    verdicts = argparse.ArgumentParser(add_help=False)
    verdicts.add_argument(
        "--max-slowdown", default="5%", help="allowed slowdown, e.g. 5%% (default)"
    )
    verdicts.add_argument("--format", choices=["text", "md"], default="text")
    verdicts.add_argument(
        "--junit",
        type=Path,
        metavar="PATH",
        help="also write the verdicts as JUnit XML, a testcase per cell: failed where it fails "
        "the gate (regressed, missing), skipped where it cannot be judged (noisy, not compared)"
        "; with $GITHUB_STEP_SUMMARY set, the markdown table is appended there too",
    )
    return {
        "runs": runs,
        "resume": resume,
        "skips": skips,
        "ranks": ranks,
        "verdicts": verdicts,
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="harness", description="Benchmark one Keras 3 model under TensorFlow, JAX and PyTorch."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    shared = _parents()

    def command(name: str, target: str, help: str, *parents: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, parents=[shared[k] for k in parents])
        p.set_defaults(target=target)
        return p

    p = command(
        "run",
        "harness.orchestrate.run:main",
        "run scenario files under a backend, one worker per cell",
        "runs",
        "resume",
        "skips",
    )
    p.add_argument("scenarios", nargs="+", type=Path, help="scenario TOML files")
    p.add_argument(
        "--report", metavar="PATH", help="also write a report over every run under --out"
    )
    p.add_argument(
        "--shard",
        metavar="K/N",
        help="run only shard K of N: a deterministic 1/N of the cells, balanced by expected "
        "cost, the same on every machine given the same scenarios and --backend (a CI matrix "
        "of N runners covers every cell once; `harness compare` merges their results)",
    )
    p.add_argument(
        "--coordinator",
        metavar="HOST:PORT",
        help="multi-process cells (data_parallel_processes > 1) start only their process 0 "
        "here, listening on HOST:PORT; the others join from other hosts with `harness "
        "worker-join` (default: every process here, on loopback)",
    )

    p = command(
        "worker-join",
        "harness.orchestrate.join:main",
        "join the multi-process cells of a run started on another host, as one process of each",
        "runs",
    )
    p.add_argument("scenarios", nargs="+", type=Path, help="the scenario files that run was given")
    p.add_argument("--coordinator", metavar="HOST:PORT", required=True,
                   help="the address that run was given with --coordinator")  # fmt: skip
    p.add_argument("--process-id", type=int, required=True, metavar="I",
                   help="this host's process of each cell, 1 to processes - 1")  # fmt: skip
    p.add_argument("--shard", metavar="K/N", help="the --shard that run was given")
    p.add_argument("--wait", type=float, default=600.0, metavar="SECONDS",
                   help="how long to wait for the coordinator to reach each cell (600)")  # fmt: skip

    p = command(
        "compare", "harness.report.build:main", "render a comparison report from result files"
    )
    p.add_argument("results", nargs="+", type=Path, help="result files or folders")
    p.add_argument("--format", choices=sorted(FORMATS), default="md")
    p.add_argument("--out", type=Path)
    p.add_argument("--all", action="store_true", help="every result, not only the newest per cell")
    p.add_argument("--tee", action="store_true", help="with --out, print the report too")

    p = command(
        "check",
        "harness.gate.check:main",
        "regression gate: exit 1 when a cell got slower beyond noise",
        "ranks",
        "verdicts",
        "skips",
    )
    p.add_argument("current", nargs="+", type=Path, help="result files or run folders under test")
    base = p.add_mutually_exclusive_group(required=True)
    base.add_argument("--baseline", nargs="+", type=Path, help="baseline results or folders")
    base.add_argument(
        "--baseline-history",
        type=Path,
        metavar="DIR",
        help="judge each cell against the last --window runs of it on this machine (the same "
        "hardware and versions) stored under DIR, not against one earlier run",
    )
    p.add_argument("--window", type=int, default=20, help="runs of --baseline-history (20)")
    p.add_argument("--allow-mismatch", action="store_true", help="compare across machines/versions")
    p.add_argument(
        "--allow-workload-change",
        action="store_true",
        help="judge cells whose workload (settings, model, data, backend settings) differs "
        "from the baseline's; without it they are 'workload changed' and the gate exits 2",
    )

    p = command(
        "history",
        "harness.gate.history:main",
        "throughput across commits per machine and cell, with the steps where it moved",
    )
    p.add_argument("results", nargs="+", type=Path, help="result folders (a stored history)")
    p.add_argument("--format", choices=["md", "html"], default="md")
    p.add_argument("--out", type=Path)

    p = command(
        "ab",
        "harness.orchestrate.ab:main",
        "baseline and candidate interleaved round by round, then the regression gate",
        "runs",
        "resume",
        "skips",
        "ranks",
        "verdicts",
    )
    p.add_argument("scenarios", nargs="+", type=Path, help="scenario TOML files")
    p.add_argument(
        "--rounds", type=int, default=8, help="worker processes per side, even, >= 4 (8)"
    )
    for side, example in (("baseline", ""), ("candidate", ", e.g. step_delay_ms=0.3")):
        p.add_argument(f"--{side}-python", help=f"interpreter of the {side} (default: this one)")
        p.add_argument(f"--{side}-set", action="append", default=[], metavar="KEY=VALUE",
                       help=f"scenario setting for the {side} side (repeatable){example}")  # fmt: skip

    p = command(
        "calibrate",
        "harness.orchestrate.calibrate:main",
        "measure this runner's noise floor and the smallest slowdown the gate catches",
        "runs",
        "ranks",
    )
    p.add_argument("scenario", type=Path)
    p.add_argument("--runs", type=int, default=3, help="runs (or A/A jobs) of the same code (3)")
    p.add_argument("--interleaved", action="store_true", help="calibrate `harness ab` instead")
    p.add_argument("--rounds", type=int, default=8, help="with --interleaved: rounds per side")

    p = command(
        "baseline", "harness.gate.baseline:main", "store a run as the baseline for this machine"
    )
    p.add_argument("run", type=Path, help="a run folder (results/RUN_ID)")
    p.add_argument("--into", type=Path, default=DEFAULT_RESULTS / "baselines")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--add", action="store_true", help="add this run to the stored baseline")
    group.add_argument("--replace", action="store_true", help="start the baseline over")

    p = command(
        "portability",
        "harness.orchestrate.portability:main",
        "load each saved .keras model under the other backends",
    )
    p.add_argument("results", type=Path, help="results root (default layout: results/)")
    p.add_argument("--backend", help="target backends installed here (default: all of them)")
    p.add_argument("--python", action="append", default=[], metavar="BACKEND=PATH",
                   help="also load under BACKEND with this interpreter (another environment's; "
                   "repeatable; a path not there yet is noted and skipped)")  # fmt: skip
    p.add_argument("--trust-code", action="store_true",
                   help="import the model modules that results name (import references: the "
                   "user's own code, which registers custom layers); only for results you trust, "
                   "never downloaded ones (without it, such models are not checked)")  # fmt: skip

    p = command(
        "validate",
        "harness.cli:validate",
        "check scenario files without running them (import references: in a quick worker)",
    )
    p.add_argument("scenarios", nargs="+", type=Path)
    p.add_argument(
        "--backend",
        choices=NAMES,
        help="check import references under this backend (default: jax where installed)",
    )

    p = command("schema", "harness.cli:schema", "print the JSON Schema of scenario files")
    p.add_argument("--out", type=Path)
    p.add_argument(
        "--markdown", action="store_true", help="the table of every key (docs/scenarios.md)"
    )

    p = command(
        "env", "harness.environment:main", "what the harness sees: versions, CPU, GPU, NVML"
    )
    p.add_argument("--json", action="store_true", help="everything, as JSON")

    from . import dmon  # light: psutil, and pynvml only when it runs

    p = command("monitor", "harness.dmon:run", "nvidia-smi dmon style live utilization lines")
    dmon.build_parser(p)
    return parser


def validate(args: argparse.Namespace) -> int:
    scenarios = scenario.load_all(args.scenarios)
    from .orchestrate import refcheck

    if refcheck.tasks(scenarios):
        from .backends import installed_backends

        backends = [args.backend] if args.backend else installed_backends()
        if backends:
            refcheck.check(scenarios, backends)
        else:
            print("note: import references not checked: no Keras backend installed here",
                  file=sys.stderr)  # fmt: skip
    for sc in scenarios:
        print(f"{sc.path}: ok, {len(sc.cells)} cell(s): " + ", ".join(c.id for c in sc.cells))
    return 0


def schema(args: argparse.Namespace) -> int:
    if args.markdown:  # the key table of docs/scenarios.md
        text = scenario.keys_table() + "\n"
    else:
        text = json.dumps(scenario.json_schema(), indent=2) + "\n"
    if args.out:
        write_text(args.out, text, f"--out {args.out}")
    else:
        sys.stdout.write(text)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    module, _, function = args.target.partition(":")
    try:
        return getattr(importlib.import_module(module), function)(args)
    except UserError as exc:
        print(f"harness: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("harness: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
