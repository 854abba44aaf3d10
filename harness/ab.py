"""Interleaved A/B runs: the baseline and the candidate measured in alternation.

On a shared runner, two runs of the same code minutes apart differ by more than the 5% a gate
should catch: whatever else the machine does drifts slowly, and every repeat inside one run
shares its moment. Interleaving takes the drift out: round by round, one worker of each side,
each a fresh process (as pyperf spawns processes, so per-process luck such as memory
layout is sampled too), in ABBA order so a steady trend favours neither side. Each worker runs the cell's
repeats; its median is one value for the gate, so the rounds of a side are independent samples
measured under the same conditions as the other side's, and the rank test of ``harness check``
is valid on them.

A side is an interpreter (``--baseline-python`` / ``--candidate-python``: two environments
with different versions, the usual CI question "did this build make training slower?") plus
scenario settings (``--candidate-set step_delay_ms=0.3``: a known slowdown, to prove the gate's
power). Layout: ``OUT/<ab-id>/{baseline,candidate}/round-NN/<scenario>/<cell>--<backend>.json``.
"""

from __future__ import annotations

from .runner import Job
from .scenario import Scenario

SIDES = ("baseline", "candidate")


def order(rounds: int) -> list[tuple[int, str]]:
    """(round, side) in ABBA order: AB, BA, AB, ... so a linear drift cancels in pairs."""
    out = []
    for r in range(rounds):
        sides = SIDES if r % 2 == 0 else SIDES[::-1]
        out += [(r + 1, side) for side in sides]
    return out


def plan(
    ab_id: str,
    scenarios: dict[str, list[Scenario]],
    pythons: dict[str, str],
    backends: list[str],
    rounds: int,
) -> list[Job]:
    """Every worker to start, in the order to start them.

    Args:
        ab_id: the name of this A/B run (its folder).
        scenarios: per side, the scenarios with that side's settings applied; the cells of
            both sides must have the same ids.
        pythons: per side, the interpreter that runs its workers.
        backends: backends to run, each side alike.
        rounds: worker processes per side; each runs the cell's repeats, and the gate takes
            its median as one value (repeats in one process share its luck).
    """
    jobs = []
    for rnd, side in order(rounds):
        for backend in backends:
            for sc in scenarios[side]:
                for cell in sc.cells_for(backend):
                    jobs.append(
                        Job(
                            sc,
                            cell,
                            backend,
                            subdir=f"{side}/round-{rnd:02d}",
                            python=pythons[side],
                            extra={
                                "train_only": True,
                                "ab": {
                                    "id": ab_id,
                                    "side": side,
                                    "round": rnd,
                                    "python": pythons[side],
                                },
                            },
                        )
                    )
    return jobs
