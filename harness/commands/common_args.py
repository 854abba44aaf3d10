"""Options that several commands share, each declared once (as asv's common_args.py): a
command names the groups it takes in its PARENTS."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..backends import NAMES
from ..gate.verdicts import CORRECTIONS, METRICS

DEFAULT_RESULTS = Path("results")
METRIC_HELP = (
    "what the gate ranks: throughput (samples/s over each repeat's measured epochs, the "
    "default) or typical (batch size / the median 10-step chunk's time per step: a burst of "
    "other work on a shared runner slows some chunks, not the median one; blind to slowdowns "
    "that hit only some steps)"
)


def parents() -> dict[str, argparse.ArgumentParser]:
    """The shared option groups, by name."""
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
        help="of the whole gate, from 0.5 to below 1, e.g. 0.95 (the default) or 99%%",
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
        "the gate (regressed, lost, missing), errored where its workload changed, skipped where "
        "it cannot be judged (noisy, not compared); with $GITHUB_STEP_SUMMARY set, the "
        "markdown table is appended there too",
    )
    return {"runs": runs, "resume": resume, "skips": skips, "ranks": ranks, "verdicts": verdicts}


def gate_options(args: argparse.Namespace) -> dict:
    """The gate's options as keywords, for the commands that judge (check, ab)."""
    return {
        "max_slowdown": args.max_slowdown,
        "confidence": args.confidence,
        "metric": args.metric,
        "correction": args.correction,
        "fmt": args.format,
        "junit": args.junit,
    }
