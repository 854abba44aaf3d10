"""`harness ab`: its plan (ABBA rounds, min_time's epochs chosen once), its one-line errors,
the real interleaved gate catching a known delay and passing the same code, and
benchmarks/gate_power.py reading its jobs."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import ROOT, STUB_CLI, STUB_HARNESS, run_cli, stub_env

from harness import results


def test_ab_plan_without_a_backend(tmp_path):
    from harness import scenario
    from harness.orchestrate import ab

    path = tmp_path / "g.toml"
    path.write_text('name = "g"\n[defaults]\nbatch_size = 64\n')
    sc = scenario.load(path)
    pythons = {"baseline": "/envs/main/bin/python", "candidate": "/envs/pr/bin/python"}
    jobs = ab.plan("ab-1", {"baseline": [sc], "candidate": [sc]}, pythons, ["jax"], 4, tmp_path)
    # min_time's epochs chosen first; then ABBA: round 1 baseline first, round 2 candidate...
    assert [j.subdir for j in jobs] == [
        "calibration/baseline",
        "baseline/round-01", "candidate/round-01", "candidate/round-02", "baseline/round-02",
        "baseline/round-03", "candidate/round-03", "candidate/round-04", "baseline/round-04",
    ]  # fmt: skip
    for j in jobs:
        side = j.subdir.split("/")[-1 if j.subdir.startswith("calibration") else 0]
        assert j.python == pythons[side] and j.options.ab.python == pythons[side]
        assert j.options.train_only is True and j.options.ab.id == "ab-1"
    # the calibrating worker chooses min_time's epochs, every measured one takes them
    assert sc.cells[0].min_time > 0 and jobs[0].options.calibrate_only is True
    chosen = str(tmp_path / "calibration/baseline/g/default--jax.json")
    assert jobs[0].options.epochs_from is None
    assert all(j.options.epochs_from == chosen for j in jobs[1:])
    assert not any(j.options.calibrate_only for j in jobs[1:])
    # a side that measures other work chooses apart; one without min_time measures epochs
    for setting, theirs in (("batch_size=32", "calibration/candidate"), ("min_time=0", None)):
        other = scenario.override(sc, [setting], "--candidate-set")
        jobs = ab.plan("ab-1", {"baseline": [sc], "candidate": [other]}, pythons, ["jax"], 4,
                       tmp_path)  # fmt: skip
        assert [j.subdir for j in jobs if j.options.calibrate_only] == [
            "calibration/baseline",
            *([theirs] if theirs else []),
        ]
        for j in jobs:
            took = j.options.epochs_from
            if j.subdir.startswith("candidate"):
                assert took == (str(tmp_path / theirs / "g/default--jax.json") if theirs else None)
            elif j.subdir.startswith("baseline"):
                assert took == chosen
    # without a run folder (an older caller) each worker calibrates for itself
    jobs = ab.plan("ab-1", {"baseline": [sc], "candidate": [sc]}, pythons, ["jax"], 4)
    assert len(jobs) == 8 and not any(j.options.epochs_from for j in jobs)


@pytest.mark.backend
def test_ab_on_real_runs_catches_a_delay_and_passes_the_same_code(once, tmp_path):
    """`harness ab`: baseline and candidate interleaved, one worker per round and side.
    A 3 ms sleep after every ~1 ms step must be caught at 5%; the same code on both sides
    must pass."""
    backend = once
    scenario = tmp_path / "gate.toml"
    scenario.write_text(
        'name = "gate"\n[defaults]\ntrain_samples = 512\ntest_samples = 64\nbatch_size = 32\n'
        "epochs = 1\nrepeats = 2\nwarmup_steps = 2\nmin_time = 0.1\n"
    )
    out = tmp_path / "r"
    common = ["ab", str(scenario), "--rounds", "4", "--backend", backend, "--out", str(out)]
    proc = run_cli(*common, "--candidate-set", "step_delay_ms=3")
    assert proc.returncode == 1, proc.stdout + proc.stderr[-3000:]
    assert f"gate/default--{backend}  REGRESSED" in proc.stdout
    assert "  4/4  " in proc.stdout  # four workers per side, each one value (its median)
    (ab_dir,) = out.iterdir()
    files = sorted(p.relative_to(ab_dir).as_posix() for p in ab_dir.rglob("default--*.json"))
    assert files == sorted(
        [f"{side}/round-0{r}/gate/default--{backend}.json" for side in ("baseline", "candidate")
         for r in range(1, 5)] + [f"calibration/baseline/gate/default--{backend}.json"]
    )  # fmt: skip
    docs, problems = results.load_results([ab_dir], latest=False)
    assert not problems and len(docs) == 8
    # ABBA: round 1 starts with the baseline, round 2 with the candidate
    start = {(d["ab"]["side"], d["ab"]["round"]): d["started"] for d in docs}
    assert (
        start["baseline", 1] < start["candidate", 1] < start["candidate", 2] < start["baseline", 2]
    )
    cand = [d for d in docs if d["ab"]["side"] == "candidate"]
    assert all(d["cell"]["step_delay_ms"] == 3 for d in cand)
    assert all(len(d["train"]["samples_per_sec"]["values"]) == 2 for d in docs)
    assert all("evaluate" not in d and d["phases_skipped"] for d in docs)
    # The same work on both sides and in every worker (step_delay_ms is the slowdown under
    # test, never part of the workload): one identity, so the gate judges it.
    assert len({d["workload"]["id"] for d in docs}) == 1
    assert docs[0]["workload"]["parts"]["model"]["params"] == 101770
    # min_time: one worker chose the epochs first, and is no value for the gate; every
    # measured worker of either side measured that many (a slowed candidate that chose for
    # itself would choose fewer: other work than the baseline's)
    chosen = results.read_result(
        ab_dir / "calibration" / "baseline" / "gate" / f"default--{backend}.json"
    )
    assert chosen["train"]["calibration"] and chosen["train"]["repeats"] == 1
    assert {d["train"]["epochs"] for d in docs} == {chosen["train"]["epochs"]} != {1}
    assert all(d["train"]["epochs_from"] == chosen["_path"] for d in docs)
    assert not any(d["train"]["calibration"] for d in docs)
    # The rounds render as a report too (no accuracy: the A/B workers only train).
    proc = run_cli("compare", str(ab_dir))
    assert proc.returncode == 0, proc.stderr
    # Rerunning the gate on the files gives the same verdict, without the one-run warning.
    proc = run_cli("check", str(ab_dir / "candidate"), "--baseline", str(ab_dir / "baseline"))
    assert proc.returncode == 1 and "REGRESSED" in proc.stdout
    assert "baseline holds one run" not in proc.stderr
    proc = run_cli("baseline", str(ab_dir), "--into", str(tmp_path / "b"))
    assert proc.returncode == 2 and "an A/B run holds its own baseline side" in proc.stderr
    # --resume refuses to finish the job as a different experiment
    proc = run_cli(*common, "--resume", str(ab_dir))
    assert proc.returncode == 2 and "was started with set = " in proc.stderr

    # The same code on both sides passes: the stub's workers (no backend) report equal
    # throughput, so the whole pass path (plan, rounds, gate, exit 0) runs in seconds.
    proc = run_cli(*common[:-1], str(tmp_path / "aa"), module=STUB_HARNESS)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert f"gate/default--{backend}  unchanged" in proc.stdout


def test_ab_bad_input_is_one_line(tmp_path):
    scenario = tmp_path / "g.toml"
    scenario.write_text("[defaults]\nbatch_size = 32\n")
    for args, msg in (
        (
            ["--candidate-set", "step_dlay_ms=1"],
            "--candidate-set: key 'step_dlay_ms': unknown key (did you mean 'step_delay_ms'?)",
        ),
        (["--candidate-set", "step_delay_ms=-1"], "--candidate-set: key 'step_delay_ms':"),
        (["--baseline-set", "batch_size"], "--baseline-set: expected KEY=VALUE"),
        (["--rounds", "2"], "--rounds: an even number, at least 4, got 2"),
        (["--rounds", "5"], "--rounds: an even number, at least 4, got 5"),
        (["--candidate-python", str(tmp_path / "nope")], "--candidate-python:"),
    ):
        proc = run_cli("ab", str(scenario), "--out", str(tmp_path / "o"), *args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert proc.stderr.startswith("harness: " + msg), proc.stderr
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()  # nothing ran, nothing written


def test_gate_power_analyses_earlier_ab_jobs(once, tmp_path):
    """benchmarks/gate_power.py --from: the README's proof of the gate's power reads A/B jobs
    with the gate's own functions (here a stub job: the same values on both sides)."""
    scenario = tmp_path / "g.toml"
    scenario.write_text('name = "g"\n[defaults]\ntrain_samples = 256\nrepeats = 2\n')
    proc = subprocess.run(
        [*STUB_CLI, "ab", str(scenario), "--rounds", "4", "--backend",
         once, "--out", str(tmp_path / "r")],
        cwd=ROOT, env=stub_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gate_power.py"), "--from", str(tmp_path / "r")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "A/A  " in proc.stdout and "unchanged" in proc.stdout
    assert "A/A called a regression: 0 of 1" in proc.stdout
