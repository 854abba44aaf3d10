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

import dataclasses
import shutil
import sys
from pathlib import Path

from .. import scenario
from ..backends import resolve_backends
from ..errors import UsageError
from ..gate import ci
from ..gate.check import load_pair, run_gate
from ..gate.verdicts import parse_confidence, parse_limit
from ..protocol import ABRole, Options
from ..results import CALIBRATION
from ..scenario import Scenario
from . import setup
from .jobs import Job
from .manifest import AB, plan_record

SIDES = ("baseline", "candidate")


def order(rounds: int) -> list[tuple[int, str]]:
    """(round, side) in ABBA order: AB, BA, AB, ... so a linear drift cancels in pairs."""
    out = []
    for r in range(rounds):
        sides = SIDES if r % 2 == 0 else SIDES[::-1]
        out += [(r + 1, side) for side in sides]
    return out


# What decides how much work an epoch is: sides that differ here calibrate apart (each key
# declares it: harness/scenario/keys.py).
WORK = scenario.CALIBRATION_FIELDS


def plan(
    ab_id: str,
    scenarios: dict[str, list[Scenario]],
    pythons: dict[str, str],
    backends: list[str],
    rounds: int,
    run_dir: Path | None = None,
) -> list[Job]:
    """Every worker to start, in the order to start them.

    Where a cell calibrates its epochs (min_time), one worker does that first and measures
    nothing for the gate (``CALIBRATION/<side>/``, left out of every report), and every
    worker of both sides measures the epochs it chose (``epochs_from``: its result in
    ``run_dir``): both sides time the same work (a slower side would otherwise calibrate
    fewer epochs, with a larger share of per-fit overhead), and every measured worker starts
    alike (none has calibration fits behind it). Sides whose cells differ in ``WORK``
    calibrate apart.

    Args:
        ab_id: the name of this A/B run (its folder).
        scenarios: per side, the scenarios with that side's settings applied; the cells of
            both sides must have the same ids.
        pythons: per side, the interpreter that runs its workers.
        backends: backends to run, each side alike.
        rounds: worker processes per side; each runs the cell's repeats, and the gate takes
            its median as one value (repeats in one process share its luck).
        run_dir: the A/B run's folder; without it each worker calibrates for itself.
    """
    jobs: list[Job] = []
    chosen: dict[tuple, Path] = {}  # the cell's work -> the result that chose its epochs
    for rnd, side in order(rounds):
        for backend in backends:
            for sc in scenarios[side]:
                for cell in sc.cells_for(backend):
                    role = ABRole(ab_id, side, rnd, pythons[side])
                    options = Options(train_only=True, ab=role)
                    if cell.min_time > 0 and run_dir is not None:
                        work = (sc.name, cell.id, backend, *(getattr(cell, k) for k in WORK))
                        if work not in chosen:
                            calibration = Job(
                                sc, cell, backend, subdir=f"{CALIBRATION}/{side}",
                                python=pythons[side],
                                options=Options(train_only=True, calibrate_only=True,
                                                ab=dataclasses.replace(role, round=0)),
                            )  # fmt: skip
                            jobs.append(calibration)
                            chosen[work] = run_dir / calibration.relpath
                        options = dataclasses.replace(options, epochs_from=str(chosen[work]))
                    jobs.append(Job(sc, cell, backend, subdir=f"{side}/round-{rnd:02d}",
                                    python=pythons[side], options=options))  # fmt: skip
    return jobs


def main(
    *,
    backend,
    baseline_python,
    baseline_set,
    candidate_python,
    candidate_set,
    confidence,
    correction,
    fail_on_skip,
    fmt,
    junit,
    keras_verbose,
    max_slowdown,
    metric,
    out,
    resume,
    retry_failed,
    rounds,
    scenarios,
) -> int:
    """Baseline and candidate interleaved, one worker per round and side, then the gate."""
    if rounds < 4 or rounds % 2:
        raise UsageError(
            f"--rounds: an even number, at least 4, got {rounds} (ABBA pairs; with fewer "
            "than 4 per side no rank test can reach 95%)"
        )
    pythons: dict[str, str] = {}  # per side, the interpreter (default: this one)
    for side, py in (("baseline", baseline_python), ("candidate", candidate_python)):
        found = shutil.which(py) if py else sys.executable
        if not found:
            raise UsageError(f"--{side}-python: {py}: no such interpreter")
        pythons[side] = str(Path(found).absolute())
    limit = parse_limit(max_slowdown)
    confidence = parse_confidence(confidence)
    ci.check_junit_path(junit)  # before the rounds, not after them
    loaded = scenario.load_all(scenarios)
    sides = {
        "baseline": [scenario.override(sc, baseline_set, "--baseline-set") for sc in loaded],
        "candidate": [scenario.override(sc, candidate_set, "--candidate-set") for sc in loaded],
    }
    backends = resolve_backends(backend)
    settings = {
        "rounds": rounds,
        "backends": backends,
        "scenarios": [sc.path for sc in loaded],
        "python": pythons,
        "set": {"baseline": baseline_set, "candidate": candidate_set},
    }

    def record(jobs: list[Job]) -> dict:
        calibrating = any(j.options.calibrate_only for j in jobs)
        return {
            **settings,
            "settings": plan_record(jobs),
            "order": "ABBA: each round one worker process per side; its median is one value"
            + (" (min_time's epochs chosen first, in calibration/)" if calibrating else ""),
        }

    run = setup.start(
        AB,
        backends,
        lambda run_dir: plan(run_dir.name, sides, pythons, backends, rounds, run_dir.absolute()),
        out=out,
        resume=resume,
        # each side's references, in its own interpreter
        check=[setup.References(sides[side], python=pythons[side]) for side in SIDES],
        same=settings,  # --resume: the rest of the job must be the same experiment
        record=record,
        verbose=keras_verbose,
        retry_failed=retry_failed,
    )
    run_dir, jobs = run.run_dir, run.jobs
    measured = [j for j in jobs if not j.options.calibrate_only]
    print(
        f"ab {run_dir.name}: {rounds} round(s) x 2 sides x "
        f"{len(measured) // (2 * rounds)} cell(s), one worker each"
        + (f", after {len(jobs) - len(measured)} calibrating min_time" if measured != jobs else "")
        + f" -> {run_dir}",
        file=sys.stderr,
    )
    docs = run.run()
    if run.interrupted:
        print(f"interrupted; finish with: harness ab ... --resume {run_dir}", file=sys.stderr)
        return 130
    current, baseline = load_pair([run_dir / "candidate"], [run_dir / "baseline"])
    again = (
        f"harness check {run_dir / 'candidate'} --baseline {run_dir / 'baseline'} "
        f"--max-slowdown {max_slowdown} --confidence {confidence:g} "
        f"--metric {metric} --correction {correction} --allow-mismatch "
        "--allow-workload-change"
    )
    print(f"\ncandidate vs baseline (again: {again}):", file=sys.stderr)
    # Two interpreters may hold different versions on purpose, and --baseline-set /
    # --candidate-set may change the work on purpose: that is the question asked, so it is
    # judged, and each verdict lists what differs.
    return run_gate(
        current, baseline, limit, confidence, True, fmt, metric,
        junit=junit, suite="harness ab", correction=correction,
        sides_may_differ=True, fail_on_skip=fail_on_skip, ran=docs,
    )  # fmt: skip
