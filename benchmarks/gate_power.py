"""Proof of power of the regression gate, side by side, on this runner.

    python benchmarks/gate_power.py [--runs 4] [--backend jax] [--max-slowdown 5%]

Runs scenarios/gate.toml (one cell without, one with a fixed sleep before every step) RUNS
times, then judges (a) every ordered pair of runs of the undelayed cell, which is the same
code and must not be called a regression, and (b) every delayed run against every undelayed
one, which is a real slowdown and must be caught. Prints the measured slowdown and the
verdicts, and the calibration (noise floor, smallest detectable slowdown) of this runner.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness import compare, report  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--backend", default=None)
    parser.add_argument("--max-slowdown", default="5%")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "gate-power")
    args = parser.parse_args()
    limit = compare.parse_limit(args.max_slowdown)
    plain, delayed = [], []
    for k in range(args.runs):
        cmd = [
            sys.executable,
            "-m",
            "harness",
            "run",
            str(ROOT / "scenarios" / "gate.toml"),
            "--out",
            str(args.out),
        ]
        if args.backend:
            cmd += ["--backend", args.backend]
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if proc.returncode != 0:
            print(proc.stderr[-2000:])
            return 1
        run_dir = max(
            (p for p in args.out.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime
        )
        docs, _ = report.load_results([run_dir])
        by_id = {
            d["cell"]["id"]: d["train"]["samples_per_sec"]["values"]
            for d in docs
            if d["status"] == "ok"
        }
        plain.append(by_id["delay0ms"])
        delayed.append(by_id["delay0.3ms"])
        print(
            f"run {k + 1}: plain {statistics.median(plain[-1]):,.0f}, delayed {statistics.median(delayed[-1]):,.0f} samples/s"
        )
    aa = [
        compare.judge("aa", a, b, max_slowdown=limit)
        for i, a in enumerate(plain)
        for j, b in enumerate(plain)
        if i != j
    ]
    slow = [compare.judge("slow", d, p, max_slowdown=limit) for d in delayed for p in plain]
    false_alarms = sum(v.status == "regressed" for v in aa)
    caught = sum(v.status == "regressed" for v in slow)
    slowdowns = [1 - v.ratio for v in slow]
    print(
        f"\nA/A (same code): {false_alarms} of {len(aa)} ordered pairs called a regression at -{limit:.0%}"
    )
    print(f"  ratios: {', '.join(f'{v.ratio:.3f}' for v in aa)}")
    print(
        f"delayed vs plain: measured slowdown median {statistics.median(slowdowns):.1%} "
        f"(range {min(slowdowns):.1%} to {max(slowdowns):.1%}); caught in {caught} of {len(slow)} pairs"
    )
    cal = compare.calibrate(plain)
    det = "none within 50%" if cal["detectable"] is None else f"{cal['detectable']:.1%}"
    print(
        f"calibration: noise floor {cal['noise_floor']:.1%}, false-alarm-free limit "
        f"{cal['max_slowdown']:.1%}, smallest slowdown caught for every pair {det} "
        f"({cal['repeats']} repeats, {cal['runs']} runs)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
