"""``harness calibrate``: run the same code several times and say how small a slowdown the
gate can catch on this runner.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
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
from .stats import log_spread, min_p_value, rounds_needed

# Candidate limits and slowdowns: 1% to 50% in 0.5% steps.
GRID = tuple(round(0.01 + 0.005 * i, 4) for i in range(99))


def gates_of_runs(runs: list[dict[str, list[float]]]) -> list[list[verdicts.Sample]]:
    """The A/A gates that separate runs of the same code give, as ``harness check`` judges
    them against a stored baseline of several runs: each run in turn against all the others
    (``harness baseline --add``), every cell of that run in one gate (they shared its moment
    on the machine).

    Args:
        runs: per run, in run order, each cell's values (a cell that did not run ok is absent
            from that run: never another run's values in its place).
    """
    gates = []
    for i, run in enumerate(runs):
        gate = []
        for key, values in sorted(run.items()):
            others = [r[key] for j, r in enumerate(runs) if j != i and key in r]
            if others:
                gate.append(verdicts.Sample(key, values, others))
        if gate:
            gates.append(gate)
    return gates


def gates_of_jobs(jobs: list[dict[str, tuple[list[float], list[float]]]]) -> list[list]:
    """The A/A gates that interleaved A/A jobs give, as ``harness ab`` judges them: each job's
    two sides against each other, in both orders, every cell of the job in one gate.

    Args:
        jobs: per job, per cell, (one side's values, the other side's values).
    """
    gates = []
    for job in jobs:
        for flip in (False, True):
            gates.append(
                [
                    verdicts.Sample(key, b if flip else a, [a if flip else b], interleaved=True)
                    for key, (a, b) in sorted(job.items())
                ]
            )
    return gates


def calibrate_gates(
    gates: list[list[verdicts.Sample]],
    *,
    confidence: float = 0.95,
    correction: str = "holm",
    grid: tuple[float, ...] = GRID,
) -> dict[str, Any]:
    """How small a slowdown can this runner's gate catch, from A/A gates (the same code on
    both sides), each judged as the gate that runs judges it (:func:`verdicts.judge_family`:
    the run-to-run allowance of a stored baseline, the correction over the gate's cells).

    Returns:
        ``max_slowdown``: the smallest limit of the grid at which no A/A gate fails (None if
        none does); ``cells``: per cell, ``noise_floor`` (its largest |median ratio - 1|
        across the gates), ``max_slowdown`` (the smallest limit at which it never regresses)
        and ``detectable`` (the smallest slowdown of it alone that the gate, at the gate's
        limit, calls a regression in every A/A gate; None if none in the grid); ``gates``,
        ``repeats`` (the fewest values of a side), ``level`` (the p a lone slowed cell must
        reach: alpha, divided by the number of cells under a correction), ``min_p`` (the
        smallest p these value counts can reach) and ``repeats_needed`` (the fewest values
        per side that can reach the level).
    """
    verdicts.check_confidence(confidence)
    if not gates:
        raise ValueError("calibration needs at least one A/A comparison")

    def judged(gate, limit) -> tuple[set[str], set[str]]:
        """The cells of this gate that check calls regressed, and those it refuses as a
        slowdown no rank test could show (exit 2): either way the gate does not pass."""
        level = verdicts.lone_level(len(gate), confidence, correction)
        refused = {s.key for s in gate if verdicts.unjudgeable(s, level, limit)}
        found = verdicts.judge_family(
            [s for s in gate if s.key not in refused], max_slowdown=limit,
            confidence=confidence, correction=correction, bounds=False,
        )  # fmt: skip
        return {v.key for v in found if v.status == "regressed"}, refused

    def alarmed(gate, limit) -> set[str]:
        regressed, refused = judged(gate, limit)
        return regressed | refused

    keys = sorted({s.key for gate in gates for s in gate})
    cells: dict[str, dict[str, Any]] = {}
    alarms = {limit: [alarmed(gate, limit) for gate in gates] for limit in grid}
    for key in keys:
        ratios = [
            statistics.median(s.current) / statistics.median(s.baseline)
            for gate in gates
            for s in gate
            if s.key == key
        ]
        cells[key] = {
            "noise_floor": max(abs(r - 1) for r in ratios),
            "max_slowdown": next((m for m in grid if not any(key in a for a in alarms[m])), None),
        }
    gate_limit = next((m for m in grid if not any(alarms[m])), None)
    for key in keys:
        detectable = None
        if gate_limit is not None:
            for d in (d for d in grid if d > gate_limit):
                if all(
                    key in judged(_slowed(gate, key, d), gate_limit)[0]
                    for gate in gates
                    if any(s.key == key for s in gate)
                ):
                    detectable = d
                    break
        cells[key]["detectable"] = detectable
    level = verdicts.lone_level(max(len(g) for g in gates), confidence, correction)
    samples = [s for gate in gates for s in gate]
    # the cell least able to show a slowdown: its values, and how many it would need
    worst = max(samples, key=lambda s: min_p_value(len(s.current), len(s.baseline)))
    per_value = max(1, round(len(worst.baseline) / len(worst.current)))
    return {
        "gates": len(gates),
        "cells": cells,
        "max_slowdown": gate_limit,
        "repeats": len(worst.current),
        "level": level,
        "min_p": min_p_value(len(worst.current), len(worst.baseline)),
        "repeats_needed": verdicts.min_repeats(level, per_value),
        "spread": log_spread([s.current for gate in gates for s in gate]),
    }


def _slowed(gate: list[verdicts.Sample], key: str, slowdown: float) -> list[verdicts.Sample]:
    """The gate with one cell's current values made ``slowdown`` slower."""
    return [
        dataclasses.replace(s, current=[x * (1 - slowdown) for x in s.current])
        if s.key == key
        else s
        for s in gate
    ]


def calibrate(
    runs: list[list[float]],
    *,
    confidence: float = 0.95,
    grid: tuple[float, ...] = GRID,
    pairs: list[tuple[list[float], list[float]]] | None = None,
    correction: str = "holm",
) -> dict[str, Any]:
    """:func:`calibrate_gates` for one cell: from separate runs of it (each against the
    others), or from interleaved A/A ``pairs`` (each job's two sides, one order per pair).

    Returns:
        The gate's figures with the cell's own (``noise_floor``, ``max_slowdown``,
        ``detectable``) at the top level.

    Raises:
        ValueError: fewer than two runs, or ``confidence`` outside [0.5, 1).
    """
    if pairs is None:
        if len(runs) < 2:
            raise ValueError("calibration needs at least two runs of the same code")
        gates = gates_of_runs([{"cell": r} for r in runs])
    else:
        gates = [[verdicts.Sample("cell", a, [b], interleaved=True)] for a, b in pairs]
    found = calibrate_gates(gates, confidence=confidence, correction=correction, grid=grid)
    return {**found, **found["cells"]["cell"]}


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
    # separate runs: per cell, one list of values per run; interleaved: per A/A job, per
    # cell, the values of its two sides
    per_run: list[dict[str, list[float]]] = []
    aa_jobs: list[dict[str, tuple[list[float], list[float]]]] = []
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
            aa_jobs.append(
                {
                    key: (by_side["candidate"], by_side["baseline"])
                    for key, by_side in values.items()
                    if len(by_side) == 2
                }
            )
        else:
            docs, _ = load_results([run_dir])
            per_run.append(
                {
                    cell_key(d): d["train"][verdicts.METRICS[args.metric]]["values"]
                    for d in docs
                    if d["status"] == "ok" and verdicts.has_metric(d, args.metric)
                }
            )
    unit = "rounds" if args.interleaved else "repeats"
    for key in sorted({k for run in per_run for k in run}):
        if sum(key in run for run in per_run) < 2:
            print(f"{key}: fewer than two ok runs, left out", file=sys.stderr)
    gates = gates_of_jobs(aa_jobs) if args.interleaved else gates_of_runs(per_run)
    gates = [g for g in gates if g]
    if not gates:
        print("no cell ran ok often enough to calibrate", file=sys.stderr)
        return 1
    cal = calibrate_gates(gates, confidence=confidence, correction=args.correction)
    print(f"\n{'cell':<40} {'noise floor':>11} {'--max-slowdown':>14} {'detects':>8}")
    for key, c in cal["cells"].items():
        limit = "-" if c["max_slowdown"] is None else f"{c['max_slowdown']:.1%}"
        detects = "-" if c["detectable"] is None else f"{c['detectable']:.1%}"
        print(f"{key:<40} {c['noise_floor']:>11.1%} {limit:>14} {detects:>8}")
        if args.interleaved:
            sides = [side for job in aa_jobs if key in job for side in job[key]]
            spread = log_spread(sides)
            n10, n5 = (rounds_needed(spread, d, d / 2, confidence) for d in (0.1, 0.05))
            print(f"  workers spread by {spread:.1%}: about {n10} rounds catch a 10% "
                  f"slowdown 4 times in 5 with --max-slowdown 5%, {n5} a 5% one with "
                  "--max-slowdown 2.5%")  # fmt: skip
    gate_limit = "none in 1%-50%" if cal["max_slowdown"] is None else f"{cal['max_slowdown']:.1%}"
    cells = len(cal["cells"])
    print(f"\nthe whole gate ({cells} cell{'s' * (cells != 1)}, {args.correction} correction): "
          f"--max-slowdown {gate_limit} raises no false alarm in these {cal['gates']} A/A gates")  # fmt: skip
    if cal["min_p"] >= cal["level"]:
        print(f"with {cal['repeats']} {unit} no rank test reaches p < "
              f"{cal['level']:.3g} (the level a lone slowed cell is held to at "
              f"{verdicts.percent(confidence)} over {cells} cell{'s' * (cells != 1)}): a slowdown cannot be "
              f"shown; use at least {cal['repeats_needed']} {unit}")  # fmt: skip
    what = "A/A jobs (each side against the other)" if args.interleaved else (
        "runs (each against a baseline of the others, as harness check judges a stored one)"
    )  # fmt: skip
    print(f"\nnoise floor: largest difference between two {what} of the same code; "
          "--max-slowdown: the smallest limit at which the cell is never called a regression; "
          "detects: the smallest real slowdown of the cell that the gate, at the whole gate's "
          f"limit, catches in every A/A gate ({cal['gates']} gates, {cal['repeats']} {unit} "
          "or more a side).")  # fmt: skip
    return 0
