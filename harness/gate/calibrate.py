"""``harness calibrate``: run the same code several times and say how small a slowdown the
gate can catch on this runner.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .. import scenario
from ..backends import resolve_backends
from ..environment import environment
from ..errors import UsageError
from ..orchestrate import ab, runner
from ..results import CALIBRATION_SUFFIX, cell_key, load_results, make_dir
from . import verdicts
from .stats import log_spread, min_p_value, rounds_needed, run_noise


def calibrate(
    runs: list[list[float]],
    *,
    confidence: float = 0.95,
    grid: tuple[float, ...] | None = None,
    pairs: list[tuple[list[float], list[float]]] | None = None,
) -> dict[str, Any]:
    """How small a slowdown can this runner catch, from repeated runs of the same code?

    Args:
        runs: per-repeat rates (throughput or typical) of one cell, one list per run (at
            least two runs);
            every ordered pair of them is an A/A comparison.
        confidence: of the gate's rank test.
        grid: candidate slowdowns, ascending (default 1% to 50% in 0.5% steps).
        pairs: the A/A comparisons to use instead of every pair of ``runs`` (interleaved
            A/A jobs: each job's two sides, in both orders).

    Returns:
        ``noise_floor``: the largest |median ratio - 1| between two runs of the same code;
        ``max_slowdown``: the smallest allowed slowdown at which no A/A pair is called a
        regression; ``detectable``: the smallest real slowdown that the gate, with that
        limit, calls a regression for every ordered pair of runs (None if none in the grid);
        ``min_p``: the smallest p the rank test can reach with these repeat counts;
        ``spread``: the pooled standard deviation of log values within a run or side.

    Raises:
        ValueError: fewer than two runs, or ``confidence`` outside [0.5, 1).
    """
    verdicts.check_confidence(confidence)
    if pairs is None:
        if len(runs) < 2:
            raise ValueError("calibration needs at least two runs of the same code")
        pairs = [(a, b) for i, a in enumerate(runs) for j, b in enumerate(runs) if i != j]
    else:
        runs = [r for pair in pairs for r in pair]
    grid = grid or tuple(round(0.01 + 0.005 * i, 4) for i in range(99))
    noise = max(run_noise([a, b]) for a, b in pairs)
    limit = next(
        (
            m
            for m in grid
            if all(
                verdicts.judge("aa", a, b, max_slowdown=m, confidence=confidence).status
                != "regressed"
                for a, b in pairs
            )
        ),
        None,
    )
    detectable = None
    if limit is not None:
        for d in grid:
            if d <= limit:
                continue
            if all(
                verdicts.judge(
                    "d", [x * (1 - d) for x in a], b, max_slowdown=limit, confidence=confidence
                ).status
                == "regressed"
                for a, b in pairs
            ):
                detectable = d
                break
    n = min(len(r) for r in runs)
    return {
        "runs": len(runs),
        "pairs": len(pairs),
        "repeats": n,
        "noise_floor": noise,
        "max_slowdown": limit,
        "detectable": detectable,
        "min_p": min_p_value(n, n),
        "alpha": verdicts.alpha(confidence),
        "spread": log_spread(runs),
    }


def main(args: argparse.Namespace) -> int:
    """Runs a scenario several times and says how small a slowdown the gate can catch here.

    Separate runs (the default) calibrate ``harness check`` against a stored baseline;
    ``--interleaved`` runs A/A jobs of ``harness ab`` and calibrates that.
    """
    scenarios = scenario.load_all([args.scenario])
    backends = resolve_backends(args.backend)
    jobs, _ = runner.plan(scenarios, backends)
    if not jobs:
        raise UsageError("no cells to run")
    if args.interleaved and args.rounds < 2:
        raise UsageError("--rounds: at least 2 (the rank test needs several per side)")
    confidence = verdicts.parse_confidence(args.confidence)
    make_dir(Path(args.out), f"--out {args.out}")
    env = environment()
    # per cell: the A/A comparisons, each (values of one measurement, values of the other)
    per_cell: dict[str, list[list[float]]] = {}
    pairs: dict[str, list[tuple[list[float], list[float]]]] = {}
    if args.interleaved:
        pythons = dict.fromkeys(ab.SIDES, sys.executable)
    for k in range(args.runs):
        if args.interleaved:
            run_dir = (
                Path(args.out) / f"ab-{runner.new_run_id(backends)}{CALIBRATION_SUFFIX}{k + 1}"
            )
            print(f"calibration A/A job {k + 1}/{args.runs} -> {run_dir}", file=sys.stderr)
            sides = {side: scenarios for side in ab.SIDES}
            plan = ab.plan(run_dir.name, sides, pythons, backends, args.rounds, run_dir.absolute())
            run = runner.Runner(plan, run_dir, environment=env)
        else:
            run_dir = Path(args.out) / f"{runner.new_run_id(backends)}{CALIBRATION_SUFFIX}{k + 1}"
            print(f"calibration run {k + 1}/{args.runs} -> {run_dir}", file=sys.stderr)
            run = runner.Runner(jobs, run_dir, environment=env)
        run.run()
        if run.interrupted:  # Ctrl-C ends the calibration, not just this run of it
            print(f"interrupted; calibration runs so far are in {args.out}", file=sys.stderr)
            return 130
        if args.interleaved:
            docs, _ = load_results([run_dir], latest=False)
            values = verdicts.values_by_side(docs, args.metric)
            for key, by_side in values.items():
                if len(by_side) == 2:
                    a, b = by_side["candidate"], by_side["baseline"]
                    pairs.setdefault(key, []).extend([(a, b), (b, a)])
        else:
            docs, _ = load_results([run_dir])
            for d in docs:
                if d["status"] == "ok" and verdicts.has_metric(d, args.metric):
                    per_cell.setdefault(cell_key(d), []).append(
                        d["train"][verdicts.METRICS[args.metric]]["values"]
                    )
    unit = "rounds" if args.interleaved else "repeats"
    cal = None
    print(f"\n{'cell':<40} {'noise floor':>11} {'--max-slowdown':>14} {'detects':>8}")
    for key in sorted(set(per_cell) | set(pairs)):
        if args.interleaved:
            cal = calibrate([], pairs=pairs[key], confidence=confidence)
        elif len(per_cell[key]) < 2:
            print(f"{key:<40} fewer than two ok runs")
            continue
        else:
            cal = calibrate(per_cell[key], confidence=confidence)
        limit = "-" if cal["max_slowdown"] is None else f"{cal['max_slowdown']:.1%}"
        detects = "-" if cal["detectable"] is None else f"{cal['detectable']:.1%}"
        print(f"{key:<40} {cal['noise_floor']:>11.1%} {limit:>14} {detects:>8}")
        if cal["min_p"] >= cal["alpha"]:
            print(f"  with {cal['repeats']} {unit} the rank test cannot reach p < {cal['alpha']:g}: "
                  f"raise {unit} to at least 4")  # fmt: skip
        if args.interleaved:
            n10, n5 = (rounds_needed(cal["spread"], d, d / 2, confidence) for d in (0.1, 0.05))
            print(f"  workers spread by {cal['spread']:.1%}: about {n10} rounds catch a 10% "
                  f"slowdown 4 times in 5 with --max-slowdown 5%, {n5} a 5% one with "
                  "--max-slowdown 2.5%")  # fmt: skip
    if cal is None:
        return 1
    what = "A/A jobs" if args.interleaved else "runs"
    print(f"\nnoise floor: largest difference between two {what} of the same code; "
          "--max-slowdown: the smallest limit with no false alarm among them; detects: the "
          f"smallest real slowdown the gate then catches for every pair ({cal['pairs']} pairs, "
          f"{cal['repeats']} {unit} each).")  # fmt: skip
    return 0
