"""``harness calibrate``: run the same code several times (separate runs, or interleaved A/A
jobs) and say how small a slowdown the gate can catch on this runner; the judgement is the
gate's own (gate/calibrate.py).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from ..environment import environment
from ..errors import UsageError
from ..gate import verdicts
from ..gate.calibrate import calibrate_gates, gates_of_jobs, gates_of_runs
from ..gate.stats import log_spread, rounds_needed
from ..results import CALIBRATION_SUFFIX, Status, cell_key, load_results, make_dir
from . import ab, setup
from .jobs import Job
from .manifest import AB, RUN


def main(
    *, backend, confidence, correction, interleaved, metric, out, rounds, runs, scenario_file
) -> int:
    """Runs a scenario several times and says how small a slowdown the gate can catch here.

    Separate runs (the default) calibrate ``harness check`` against a stored baseline;
    ``--interleaved`` runs A/A jobs of ``harness ab`` and calibrates that.
    """
    planned = setup.plan([scenario_file], backend, empty=False)
    backends = planned.backends
    if not planned.jobs:
        raise UsageError("no cells to run")
    if interleaved and rounds < 2:
        raise UsageError("--rounds: at least 2 (the rank test needs several per side)")
    confidence = verdicts.parse_confidence(confidence)
    make_dir(Path(out), f"--out {out}")
    env = environment()
    # separate runs: per cell, one list of values per run; interleaved: per A/A job, per
    # cell, the values of its two sides
    per_run: list[dict[str, list[float]]] = []
    aa_jobs: list[dict[str, tuple[list[float], list[float]]]] = []
    jobs: list[Job] | Callable[[Path], list[Job]] = planned.jobs
    if interleaved:  # A/A: both sides the same scenarios, in this interpreter
        pythons = dict.fromkeys(ab.SIDES, sys.executable)
        sides = dict.fromkeys(ab.SIDES, planned.scenarios)

        def aa_jobs_in(run_dir: Path) -> list[Job]:
            return ab.plan(run_dir.name, sides, pythons, backends, rounds, run_dir.absolute())

        jobs = aa_jobs_in
    for k in range(runs):
        run = setup.start(
            AB if interleaved else RUN,
            backends,
            jobs,
            out=out,
            suffix=f"{CALIBRATION_SUFFIX}{k + 1}",
            environment=env,
        )
        run_dir = run.run_dir
        what = "A/A job" if interleaved else "run"
        print(f"calibration {what} {k + 1}/{runs} -> {run_dir}", file=sys.stderr)
        run.run()
        if run.interrupted:  # Ctrl-C ends the calibration, not just this run of it
            print(f"interrupted; calibration runs so far are in {out}", file=sys.stderr)
            return 130
        if interleaved:
            docs, _ = load_results([run_dir], latest=False)
            values = verdicts.values_by_side(docs, metric)
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
                    cell_key(d): d["train"][verdicts.METRICS[metric]]["values"]
                    for d in docs
                    if d["status"] == Status.OK and verdicts.has_metric(d, metric)
                }
            )
    unit = "rounds" if interleaved else "repeats"
    for key in sorted({k for run in per_run for k in run}):
        if sum(key in run for run in per_run) < 2:
            print(f"{key}: fewer than two ok runs, left out", file=sys.stderr)
    gates = gates_of_jobs(aa_jobs) if interleaved else gates_of_runs(per_run)
    gates = [g for g in gates if g]
    if not gates:
        print("no cell ran ok often enough to calibrate", file=sys.stderr)
        return 1
    cal = calibrate_gates(gates, confidence=confidence, correction=correction)
    print(f"\n{'cell':<40} {'noise floor':>11} {'--max-slowdown':>14} {'detects':>8}")
    for key, c in cal["cells"].items():
        limit = "-" if c["max_slowdown"] is None else f"{c['max_slowdown']:.1%}"
        detects = "-" if c["detectable"] is None else f"{c['detectable']:.1%}"
        print(f"{key:<40} {c['noise_floor']:>11.1%} {limit:>14} {detects:>8}")
        if interleaved:
            sides = [side for job in aa_jobs if key in job for side in job[key]]
            spread = log_spread(sides)
            n10, n5 = (rounds_needed(spread, d, d / 2, confidence) for d in (0.1, 0.05))
            print(f"  workers spread by {spread:.1%}: about {n10} rounds catch a 10% "
                  f"slowdown 4 times in 5 with --max-slowdown 5%, {n5} a 5% one with "
                  "--max-slowdown 2.5%")  # fmt: skip
    gate_limit = "none in 1%-50%" if cal["max_slowdown"] is None else f"{cal['max_slowdown']:.1%}"
    cells = len(cal["cells"])
    print(f"\nthe whole gate ({cells} cell{'s' * (cells != 1)}, {correction} correction): "
          f"--max-slowdown {gate_limit} raises no false alarm in these {cal['gates']} A/A gates")  # fmt: skip
    if cal["min_p"] >= cal["level"]:
        print(f"with {cal['repeats']} {unit} no rank test reaches p < "
              f"{cal['level']:.3g} (the level a lone slowed cell is held to at "
              f"{verdicts.percent(confidence)} over {cells} cell{'s' * (cells != 1)}): a slowdown cannot be "
              f"shown; use at least {cal['repeats_needed']} {unit}")  # fmt: skip
    what = "A/A jobs (each side against the other)" if interleaved else (
        "runs (each against a baseline of the others, as harness check judges a stored one)"
    )  # fmt: skip
    print(f"\nnoise floor: largest difference between two {what} of the same code; "
          "--max-slowdown: the smallest limit at which the cell is never called a regression; "
          "detects: the smallest real slowdown of the cell that the gate, at the whole gate's "
          f"limit, catches in every A/A gate ({cal['gates']} gates, {cal['repeats']} {unit} "
          "or more a side).")  # fmt: skip
    return 0
