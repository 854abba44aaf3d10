"""Proof of power of the regression gate, side by side, on this runner.

    python benchmarks/gate_power.py [--jobs 3] [--rounds 8] [--backend jax] [--delay-ms 0.19]
    python benchmarks/gate_power.py --from results/gate-power   # analyse earlier jobs again

Two ways to gate, each judged on (a) two measurements of the same code, which must not be
called a regression, and (b) a real slowdown (``step_delay_ms``: a wait after every step,
once the device has finished it), which must be caught:

- ``harness ab`` (interleaved, one worker process per round and side): JOBS A/A runs and JOBS
  runs whose candidate has the delay (scenarios/gate.toml syncs every step on both sides, so
  only the wait differs), each judged as ``harness ab`` judges it.
- separate runs against a lone stored baseline, the way most CI gates work: the first
  baseline worker of each A/A job is one run (its repeats, in one process), minutes apart from
  the others; every ordered pair is judged, and the runs are calibrated.

Prints how often each was called a regression, the slowdown really measured, and the
calibration (noise floor, smallest slowdown caught) of this runner. Interleaved jobs are
judged on both gate metrics (``--metric throughput`` and ``typical``), each with how far its
workers spread and the rounds that would catch 10% at the limit.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness import results  # noqa: E402
from harness.gate import calibrate, stats, verdicts  # noqa: E402

SCENARIO = ROOT / "scenarios" / "gate.toml"


def start_ab(out: Path, args, candidate_set: list[str]) -> Path:
    before = set(out.glob("ab-*")) if out.exists() else set()
    cmd = [sys.executable, "-m", "harness", "ab", str(SCENARIO), "--rounds", str(args.rounds)]
    cmd += ["--out", str(out), "--max-slowdown", args.max_slowdown]
    if args.backend:
        cmd += ["--backend", args.backend]
    for s in candidate_set:
        cmd += ["--candidate-set", s]
    if args.repeats:
        for side in ("--baseline-set", "--candidate-set"):
            cmd += [side, f"repeats={args.repeats}"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode not in (0, 1):
        sys.exit(f"harness ab failed ({proc.returncode}): {proc.stderr[-2000:]}")
    (run_dir,) = set(out.glob("ab-*")) - before
    return run_dir


def analyse(run_dir: Path, limit: float) -> dict:
    """One A/B job, judged as `harness ab` judges it."""
    sides = {}
    for side in ("baseline", "candidate"):
        docs, problems = results.load_results([run_dir / side], latest=False)
        if problems or not docs or any(d["status"] != "ok" for d in docs):
            sys.exit(
                f"{run_dir}/{side}: unusable results: {problems or [d.get('reason') for d in docs]}"
            )
        docs.sort(key=lambda d: d["ab"]["round"])
        sides[side] = docs
    all_docs = sides["baseline"] + sides["candidate"]
    found, spreads = {}, {}
    for metric in verdicts.METRICS:
        found_now, refusals = verdicts.check(
            sides["candidate"], sides["baseline"], max_slowdown=limit, allow_mismatch=True,
            metric=metric, allow_workload_change=True,
        )  # fmt: skip
        if refusals or len(found_now) != 1:
            sys.exit(f"{run_dir}: the gate cannot judge it: {refusals or found_now}")
        (found[metric],) = found_now
        # how far one side's workers spread (log sd), from which the rounds a slowdown needs
        by_side = verdicts.values_by_side(all_docs, metric)
        spreads[metric] = stats.log_spread([v for c in by_side.values() for v in c.values()])
    meta = json.loads((run_dir / "ab.json").read_text())
    return {
        "dir": run_dir.name,
        "delayed": any(x.startswith("step_delay_ms=") for x in meta["set"]["candidate"]),
        "verdicts": found,
        "spreads": spreads,
        "first_run": sides["baseline"][0]["train"]["samples_per_sec"]["values"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=3, help="A/A runs, and as many delayed runs")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--backend", default=None)
    parser.add_argument("--delay-ms", type=float, default=0.19)
    parser.add_argument("--repeats", type=int, help="repeats per worker (default: the scenario's)")
    parser.add_argument("--max-slowdown", default="5%")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "gate-power")
    parser.add_argument(
        "--from", dest="reuse", type=Path, help="analyse the ab-* jobs in this folder"
    )
    args = parser.parse_args()
    limit = verdicts.parse_limit(args.max_slowdown)

    if args.reuse:
        dirs = sorted(p for p in args.reuse.glob("ab-*") if (p / "ab.json").exists())
    else:
        dirs = []
        for k in range(args.jobs):
            for delayed in (False, True):
                sets = [f"step_delay_ms={args.delay_ms:g}"] if delayed else []
                dirs.append(start_ab(args.out, args, sets))
                v = analyse(dirs[-1], limit)["verdicts"]["throughput"]
                what = "delay" if delayed else "A/A"
                print(f"{what} job {k + 1}: {v.status} (ratio {v.ratio:.3f})", flush=True)
    jobs = [analyse(d, limit) for d in dirs]
    aa = [j for j in jobs if not j["delayed"]]

    for metric in verdicts.METRICS:
        judged = [j for j in jobs if j["verdicts"][metric].ratio is not None]
        if not judged:
            print(f"\n(--metric {metric}: not recorded in these results)")
            continue
        print(f"\n== interleaved (harness ab --metric {metric}, limit -{limit:.0%}) ==")
        for j in judged:
            v, spread = j["verdicts"][metric], j["spreads"][metric]
            print(
                f"  {j['dir']} {'delay' if j['delayed'] else 'A/A  '}  {v.status:<9} "
                f"ratio {v.ratio:.3f} (one-sided bounds {v.ci[0]:.3f}-{v.ci[1]:.3f}, p {v.p_slower:.3g}, "
                f"n {v.n[0]}/{v.n[1]}; workers spread {spread:.1%}: "
                f"{stats.rounds_needed(spread, 0.1, limit)} rounds catch 10%)"
            )
        aa_m = [j["verdicts"][metric] for j in judged if not j["delayed"]]
        slow_m = [j["verdicts"][metric] for j in judged if j["delayed"]]
        print(
            f"A/A called a regression: {sum(v.status == 'regressed' for v in aa_m)} of {len(aa_m)}"
        )
        if slow_m:
            slowdowns = [1 - v.ratio for v in slow_m]
            print(
                f"delay: measured slowdown median {statistics.median(slowdowns):.1%} (range "
                f"{min(slowdowns):.1%} to {max(slowdowns):.1%}); caught "
                f"{sum(v.status == 'regressed' for v in slow_m)} of {len(slow_m)}"
            )
    runs = [j["first_run"] for j in aa]
    if len(runs) >= 2:
        pairs = [(a, b) for i, a in enumerate(runs) for j, b in enumerate(runs) if i != j]
        alarms = sum(
            verdicts.judge("aa", a, b, max_slowdown=limit).status == "regressed" for a, b in pairs
        )
        ratios = [statistics.median(a) / statistics.median(b) for a, b in pairs]
        print(f"\n== separate runs ({len(runs[0])} repeats in one process each, minutes apart) ==")
        print(
            f"A/A called a regression: {alarms} of {len(pairs)} ordered pairs; ratios {min(ratios):.3f} to {max(ratios):.3f}"
        )
        # The same runs, each against a stored baseline of all the others (harness baseline
        # --add), whose spread gives the prediction bound that check applies.
        if len(runs) >= 3:
            held = []
            for i, cur in enumerate(runs):
                rest = [r for j, r in enumerate(runs) if j != i]
                allowance = stats.run_allowance(rest)
                pooled = [x for r in rest for x in r]
                v = verdicts.judge(
                    "aa",
                    cur,
                    pooled,
                    max_slowdown=limit,
                    run_allowance=allowance,
                    baseline_runs=len(rest),
                )
                held.append((v.status == "regressed", 1 - math.exp(-allowance)))
            print(
                f"against a stored baseline of the other {len(runs) - 1} runs: A/A called a regression "
                f"{sum(h[0] for h in held)} of {len(held)}; the baseline's spread lets a run land "
                f"{min(h[1] for h in held):.0%} to {max(h[1] for h in held):.0%} lower by chance"
            )
        cal = calibrate.calibrate(runs)
        if cal["min_p"] >= cal["level"]:
            print(
                f"(with {cal['repeats']} repeats per run no rank test reaches p < {cal['level']:g}: "
                "these separate-run verdicts can never be 'regressed' and say nothing)"
            )
        det = "none within 50%" if cal["detectable"] is None else f"{cal['detectable']:.1%}"
        lim = "none within 50%" if cal["max_slowdown"] is None else f"{cal['max_slowdown']:.1%}"
        print(
            f"calibration: noise floor {cal['noise_floor']:.1%}, false-alarm-free limit {lim}, "
            f"smallest slowdown caught against every baseline of the other runs {det}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
