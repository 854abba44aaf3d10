"""How small a slowdown the gate catches on this runner, from A/A comparisons (the same code
on both sides), judged exactly as ``harness check`` and ``harness ab`` judge. Pure: the runs
themselves are made by ``harness calibrate`` (orchestrate/calibrate.py).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from . import judge
from .options import check_confidence
from .stats import log_spread, min_p_value

# Candidate limits and slowdowns: 1% to 50% in 0.5% steps.
GRID = tuple(round(0.01 + 0.005 * i, 4) for i in range(99))


def gates_of_runs(runs: list[dict[str, list[float]]]) -> list[list[judge.Sample]]:
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
                gate.append(judge.Sample(key, values, others))
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
                    judge.Sample(key, b if flip else a, [a if flip else b], interleaved=True)
                    for key, (a, b) in sorted(job.items())
                ]
            )
    return gates


def calibrate_gates(
    gates: list[list[judge.Sample]],
    *,
    confidence: float = 0.95,
    correction: str = "holm",
    grid: tuple[float, ...] = GRID,
) -> dict[str, Any]:
    """How small a slowdown can this runner's gate catch, from A/A gates (the same code on
    both sides), each judged as the gate that runs judges it (:func:`judge.judge_family`:
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
    check_confidence(confidence)
    if not gates:
        raise ValueError("calibration needs at least one A/A comparison")

    def judged(gate, limit) -> tuple[set[str], set[str]]:
        """The cells of this gate that check calls regressed, and those it refuses as a
        slowdown no rank test could show (exit 2): either way the gate does not pass."""
        level = judge.lone_level(len(gate), confidence, correction)
        refused = {s.key for s in gate if judge.unjudgeable(s, level, limit)}
        found = judge.judge_family(
            [s for s in gate if s.key not in refused], max_slowdown=limit,
            confidence=confidence, correction=correction, bounds=False,
        )  # fmt: skip
        return {v.key for v in found if v.status == judge.VerdictStatus.REGRESSED}, refused

    def alarmed(gate, limit) -> set[str]:
        regressed, refused = judged(gate, limit)
        return regressed | refused

    keys = sorted({s.key for gate in gates for s in gate})
    cells: dict[str, dict[str, Any]] = {}
    alarms = {limit: [alarmed(gate, limit) for gate in gates] for limit in grid}
    for key in keys:
        ratios = [s.ratio for gate in gates for s in gate if s.key == key]
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
    level = judge.lone_level(max(len(g) for g in gates), confidence, correction)
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
        "repeats_needed": judge.min_repeats(level, per_value),
        "spread": log_spread([s.current for gate in gates for s in gate]),
    }


def _slowed(gate: list[judge.Sample], key: str, slowdown: float) -> list[judge.Sample]:
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
        gates = [[judge.Sample("cell", a, [b], interleaved=True)] for a, b in pairs]
    found = calibrate_gates(gates, confidence=confidence, correction=correction, grid=grid)
    return {**found, **found["cells"]["cell"]}
