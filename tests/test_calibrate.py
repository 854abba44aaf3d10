"""`harness calibrate`: how small a slowdown the gate catches on a runner, from A/A gates
judged exactly as `harness check` and `harness ab` judge them; on hand-made runs, and the
interleaved flow end to end with the stub's workers."""

from __future__ import annotations

import random
import subprocess

import pytest
from conftest import ROOT, STUB_CLI, stub_env
from factories import result

from harness.gate import calibrate, verdicts


def test_calibrate_on_hand_made_runs():
    runs = [
        [100.0, 101.0, 99.0, 100.5, 100.2],
        [98.0, 99.0, 97.5, 98.5, 98.2],  # median 98.2: 1.8% below the first
        [101.0, 102.0, 100.0, 101.5, 100.8],
    ]
    cal = calibrate.calibrate(runs)
    # Each run against a stored baseline of the other two, as harness check judges it: run 2
    # (98.2) against runs 1 and 3 pooled (median 100.65) is the largest gap...
    assert cal["gates"] == 3
    assert cal["noise_floor"] == pytest.approx(1 - 98.2 / 100.65, abs=1e-12)
    # ... a significant -2.4%, but within what two baseline runs 0.8% apart allow (4.3%):
    # noisy, so no limit raises a false alarm...
    assert cal["max_slowdown"] == 0.01
    # ... and run 1 against runs 2 and 3 (2.8% apart) allows 14.3%: 15% is the smallest
    # slowdown caught against every such baseline. check applies that allowance too.
    assert cal["detectable"] == 0.15
    assert cal["min_p"] == pytest.approx(1 / 3003)
    # 5 repeats against a baseline of 2 runs of 5: p can reach 1/3003; the fewest repeats
    # that could is 3 (3 against 6: 1/84; 2 against 4: 1/15)
    assert (cal["level"], cal["repeats_needed"]) == (0.05, 3)
    with pytest.raises(ValueError):
        calibrate.calibrate(runs[:1])
    # Interleaved, as many on both sides: at 99% the smallest that can reach p < 0.01 is 5 a
    # side (4 against 4: 1/70 = 0.014)
    pairs = [(runs[0], runs[1]), (runs[1], runs[0])]
    assert calibrate.calibrate([], pairs=pairs, confidence=0.99)["repeats_needed"] == 5


def test_calibrate_aligns_runs_when_a_cell_failed_in_one():
    """Each A/A gate holds the cells of one run (they shared its moment); a cell that failed
    in run 1 is absent from gate 1 and from the others' baselines, never replaced."""
    a = [[100.0 + r + k / 10 for k in range(5)] for r in range(3)]
    b = [[200.0 + r + k / 10 for k in range(5)] for r in range(3)]
    runs = [{"a": a[0]}, {"a": a[1], "b": b[1]}, {"a": a[2], "b": b[2]}]
    gates = calibrate.gates_of_runs(runs)
    assert [[s.key for s in g] for g in gates] == [["a"], ["a", "b"], ["a", "b"]]
    (b1,) = [s for s in gates[1] if s.key == "b"]
    assert b1.current == b[1] and b1.runs == [b[2]]


def test_calibrate_judges_exactly_as_check_does():
    """calibrate's figures are check's verdicts: at the detectable slowdown every run against a
    stored baseline of the others regresses in check, 0.5% less does not in every one."""
    runs = [  # no value twice: tied values make each rank test an enumeration (slow)
        [100.1, 101.0, 99.0, 100.5, 100.2],
        [98.0, 99.1, 97.5, 98.5, 98.2],
        [101.1, 102.0, 100.0, 101.5, 100.8],
        [99.2, 100.3, 98.8, 99.6, 99.9],
    ]
    cal = calibrate.calibrate(runs)
    limit, detect = cal["max_slowdown"], cal["detectable"]
    assert limit is not None and detect is not None

    def statuses(slowdown):
        out = []
        for i, cur in enumerate(runs):
            base = [result("jax", r, run_id=f"b{j}") for j, r in enumerate(runs) if j != i]
            now = result("jax", [x * (1 - slowdown) for x in cur], run_id="now")
            (v,), refusals = verdicts.check([now], base, max_slowdown=limit)
            assert refusals == []
            out.append(v.status)
        return out

    assert "regressed" not in statuses(0.0)
    assert statuses(detect) == ["regressed"] * 4
    assert statuses(round(detect - 0.005, 4)) != ["regressed"] * 4


def test_calibrate_on_interleaved_pairs():
    # Two A/A jobs: each job's sides are compared with each other, not across jobs (the
    # second job ran on a 20% slower moment of the machine, which interleaving cancels).
    job1 = ([100.0, 101.0, 99.0, 100.5, 100.2], [99.0, 100.0, 98.5, 99.5, 99.2])
    job2 = ([80.0, 80.8, 79.2, 80.4, 80.2], [80.5, 81.0, 79.6, 80.9, 80.3])
    pairs = [job1, job1[::-1], job2, job2[::-1]]
    cal = calibrate.calibrate([], pairs=pairs)
    assert cal["gates"] == 4 and cal["repeats"] == 5
    assert cal["noise_floor"] == pytest.approx(100.2 / 99.2 - 1)  # job 1's gap, not 20%
    assert cal["max_slowdown"] == 0.01  # no A/A pair is even 1% apart
    assert cal["detectable"] == 0.02
    # The same jobs as calibrate --interleaved reads them: one gate per job and order.
    gates = calibrate.gates_of_jobs([{"s/c--jax": job1}, {"s/c--jax": job2}])
    assert calibrate.calibrate_gates(gates)["cells"]["s/c--jax"]["detectable"] == 0.02


def test_calibrating_several_cells_holds_the_error_rate_over_the_gate():
    """With the Holm correction over 20 cells a lone slowed cell must reach p < 0.05 / 20:
    5 against 5 values (smallest p 1/252 = 0.004) cannot, 8 against 8 can; without it each
    cell is tested at 0.05."""

    rng = random.Random(1)
    jobs = [
        {
            f"s/c{i}--jax": tuple([rng.gauss(100, 1) for _ in range(5)] for _ in "ab")
            for i in range(20)
        }
        for _ in range(2)
    ]
    grid = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3)
    cal = calibrate.calibrate_gates(calibrate.gates_of_jobs(jobs), grid=grid)
    assert cal["level"] == pytest.approx(0.0025) and cal["repeats_needed"] == 6
    assert cal["min_p"] >= cal["level"]
    assert all(c["detectable"] is None for c in cal["cells"].values())
    alone = calibrate.calibrate_gates(calibrate.gates_of_jobs(jobs), grid=grid, correction="none")
    assert alone["level"] == pytest.approx(0.05)
    assert all(c["detectable"] is not None for c in alone["cells"].values())


def test_calibrate_interleaved_cli(once, tmp_path):
    """The calibration flow end to end, its workers the stub (the real A/B test above runs
    real ones through the same runner)."""
    backend = once
    scenario = tmp_path / "cal.toml"
    scenario.write_text(
        'name = "cal"\n[defaults]\ntrain_samples = 256\ntest_samples = 64\nbatch_size = 64\n'
        "epochs = 1\nrepeats = 2\nwarmup_steps = 1\n"
    )
    proc = subprocess.run(
        [*STUB_CLI, "calibrate", str(scenario), "--interleaved", "--runs",
         "1", "--rounds", "2", "--backend", backend, "--out", str(tmp_path / "r")],
        cwd=ROOT, env=stub_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert f"cal/default--{backend}" in proc.stdout
    assert (
        "with 2 rounds no rank test reaches p < 0.05 (the level a lone slowed cell is "
        "held to at 95% over 1 cell): a slowdown cannot be shown; use at least 4 rounds"
    ) in proc.stdout
    assert "(2 gates, 2 rounds or more a side)" in proc.stdout
    # 2 rounds x 2 sides, after the worker that chose min_time's epochs (as `harness ab`)
    files = [
        f.relative_to(tmp_path / "r").parts[1] for f in (tmp_path / "r").rglob("default--*.json")
    ]
    assert sorted(files) == ["baseline"] * 2 + ["calibration"] + ["candidate"] * 2
