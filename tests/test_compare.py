"""The regression gate's statistics on hand-made data, with exact expected answers."""

from __future__ import annotations

import pytest
from conftest import run_cli
from factories import result

from harness import compare, report, results


def test_parse_limit():
    assert compare.parse_limit("5%") == 0.05
    assert compare.parse_limit("0.1") == 0.1
    assert compare.parse_limit(" 12.5 % ") == 0.125
    for bad in ("five", "150%", "0", "-5%"):
        with pytest.raises(compare.LimitError):
            compare.parse_limit(bad)


def test_u_distribution_and_exact_p_values():
    assert compare._u_counts(2, 2) == (1, 1, 2, 1, 1)
    assert compare.min_p_value(3, 3) == pytest.approx(1 / 20)
    assert compare.min_p_value(5, 5) == pytest.approx(1 / 252)
    assert compare.mann_whitney_less([1, 2, 3], [4, 5, 6]) == pytest.approx(0.05)
    assert compare.mann_whitney_less([4, 5, 6], [1, 2, 3]) == 1.0
    # one swap: x = 1, 2, 5 vs y = 3, 4, 6 -> U = 2 (5 beats 3 and 4); P(U <= 2) = 4/20
    assert compare.mann_whitney_less([1, 2, 5], [3, 4, 6]) == pytest.approx(4 / 20)


def test_bootstrap_interval_brackets_the_ratio():
    lo, hi = compare.bootstrap_ratio_ci([90, 91, 89, 90, 92], [100, 101, 99, 100, 98])
    assert lo <= 0.90 <= hi
    assert lo > 0.86 and hi < 0.94


BASE = [100.0, 103.0, 97.0, 101.0, 99.0]


def test_aa_pair_is_unchanged():
    v = compare.judge("c", [99.0, 102.0, 98.0, 100.5, 101.0], BASE, max_slowdown=0.05)
    assert v.status == "unchanged"
    assert v.ratio == pytest.approx(100.5 / 100)


def test_clear_ten_percent_slowdown_regresses():
    v = compare.judge("c", [x * 0.9 for x in BASE], BASE, max_slowdown=0.05)
    assert v.status == "regressed"
    assert v.ratio == pytest.approx(0.9)
    assert v.p_slower == pytest.approx(1 / 252)
    assert "-10.0%" in v.why and "p=0.00397" in v.why


def test_slowdown_within_noise_is_not_called():
    # 10% slower in the median, but the samples overlap heavily: not a regression.
    v = compare.judge("c", [90.0, 120.0, 80.0, 101.0, 70.0], BASE, max_slowdown=0.05)
    assert v.status == "noisy"
    assert v.p_slower > 0.05


def test_three_repeats_cannot_reach_95_percent():
    v = compare.judge("c", [80.0, 81.0, 82.0], [100.0, 101.0, 102.0], max_slowdown=0.05)
    assert v.status == "noisy"  # the smallest p with 3 vs 3 is exactly 0.05
    assert v.p_slower == pytest.approx(0.05)


def test_small_significant_slowdown_below_the_limit_passes():
    v = compare.judge("c", [x * 0.97 for x in BASE], BASE, max_slowdown=0.05)
    assert v.status == "unchanged"


def test_improvement():
    v = compare.judge("c", [x * 1.2 for x in BASE], BASE)
    assert v.status == "improved"


def test_check_refuses_other_hardware_unless_allowed():
    cur = result("jax", [90.0] * 5)
    base = result("jax", BASE)
    base["environment"]["cpu_model"] = "Other CPU"
    verdicts, refusals = compare.check([cur], [base])
    assert verdicts == []
    assert refusals == [
        "sweep/bs32--jax: different machine or versions (cpu_model: Other CPU -> Test CPU); "
        "use --allow-mismatch to compare anyway"
    ]
    verdicts, refusals = compare.check([cur], [base], allow_mismatch=True)
    assert refusals == [] and [v.status for v in verdicts] == ["regressed"]


def test_check_cli_exit_codes(tmp_path):
    base = tmp_path / "base"
    same = tmp_path / "same"
    slow = tmp_path / "slow"
    results.write_json_atomic(base / "r.json", result("torch", BASE))
    results.write_json_atomic(same / "r.json", result("torch", [101.0, 98.0, 100.0, 102.0, 99.5]))
    results.write_json_atomic(slow / "r.json", result("torch", [x * 0.9 for x in BASE]))
    proc = run_cli("check", str(same), "--baseline", str(base))
    assert proc.returncode == 0, proc.stderr
    assert "sweep/bs32--torch  unchanged" in proc.stdout
    proc = run_cli("check", str(slow), "--baseline", str(base), "--format", "md")
    assert proc.returncode == 1
    assert proc.stdout.splitlines()[2].startswith("| sweep/bs32--torch | REGRESSED | 0.900 |")
    proc = run_cli("check", str(slow), "--baseline", str(base), "--max-slowdown", "15%")
    assert proc.returncode == 0
    proc = run_cli("check", str(slow), "--baseline", str(base), "--max-slowdown", "lots")
    assert proc.returncode == 2 and proc.stderr.startswith("harness: --max-slowdown: expected")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "r.json").write_text("{")
    proc = run_cli("check", str(tmp_path / "junk"), "--baseline", str(base))
    assert proc.returncode == 2 and "corrupt result file" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_baseline_command_stores_by_machine(tmp_path):
    run = tmp_path / "results" / "run1"
    results.write_json_atomic(run / "sweep" / "bs32--jax.json", result("jax", BASE))
    into = tmp_path / "results" / "baselines"
    proc = run_cli("baseline", str(run), "--into", str(into))
    assert proc.returncode == 0, proc.stderr
    stored = list(into.rglob("*.json"))
    assert len(stored) == 1 and stored[0].name == "bs32--jax.json"
    proc = run_cli("baseline", str(run), "--into", str(into))
    assert proc.returncode == 2 and "--replace" in proc.stderr


@pytest.mark.backend
def test_gate_on_real_runs_passes_aa_and_catches_injected_delay(backend, tmp_path):
    """Real result files: two identical cells run back to back must not be called a
    regression; the same cell with a fixed 2 ms sleep before every step must be."""
    scenario = tmp_path / "gate.toml"
    scenario.write_text(
        "[defaults]\ntrain_samples = 1024\ntest_samples = 64\nbatch_size = 32\nepochs = 2\n"
        "repeats = 7\nwarmup_steps = 2\n[matrix]\nstep_delay_ms = [0, 0, 2]\n"
    )
    out = tmp_path / "r"
    proc = run_cli("run", str(scenario), "--backend", backend, "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    docs, problems = report.load_results([out])
    assert not problems
    by_id = {d["cell"]["id"]: d["train"]["samples_per_sec"]["values"] for d in docs}
    assert set(by_id) == {"delay0ms", "delay0ms-1", "delay2ms"}
    # 20%: what `harness calibrate` finds this shared 2-core machine needs between runs.
    aa = compare.judge("aa", by_id["delay0ms-1"], by_id["delay0ms"], max_slowdown=0.20)
    assert aa.status != "regressed", aa
    slow = compare.judge("slow", by_id["delay2ms"], by_id["delay0ms"], max_slowdown=0.05)
    assert slow.status == "regressed", slow


def test_calibrate_on_hand_made_runs():
    runs = [
        [100.0, 101.0, 99.0, 100.5, 100.2],
        [98.0, 99.0, 97.5, 98.5, 98.2],  # median 98.2: 1.8% below the first
        [101.0, 102.0, 100.0, 101.5, 100.8],
    ]
    cal = compare.calibrate(runs)
    # largest A/A gap: run 3 (median 101.0) over run 2 (median 98.2)
    assert cal["noise_floor"] == pytest.approx(101.0 / 98.2 - 1)
    # run 2 vs run 3 is a significant -2.8%: a 2.5% limit would raise a false alarm
    assert cal["max_slowdown"] == 0.03
    assert cal["detectable"] == 0.06  # a 6% slowdown is caught for all six ordered pairs
    assert cal["min_p"] == pytest.approx(1 / 252)
    with pytest.raises(ValueError):
        compare.calibrate(runs[:1])
