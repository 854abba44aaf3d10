"""The regression gate's statistics on hand-made data, with exact expected answers."""

from __future__ import annotations

import collections
import itertools
import math
import random
import statistics
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest
from conftest import STUB_CLI, STUB_HARNESS, run_cli, stub_env
from factories import result

from harness import results
from harness.gate import calibrate, check, stats, verdicts

ROOT = Path(__file__).resolve().parent.parent


def test_parse_limit():
    assert verdicts.parse_limit("5%") == 0.05
    assert verdicts.parse_limit("0.1") == 0.1
    assert verdicts.parse_limit(" 12.5 % ") == 0.125
    for bad in ("five", "150%", "0", "-5%"):
        with pytest.raises(verdicts.LimitError):
            verdicts.parse_limit(bad)


def test_u_distribution_and_exact_p_values():
    # 2 vs 2 without ties: U = 0, 1, 2, 3, 4 in 1, 1, 2, 1, 1 of the 6 arrangements
    cases = (([1, 2], [3, 4], 1), ([1, 3], [2, 4], 2), ([1, 4], [2, 3], 4), ([3, 4], [1, 2], 6))
    for x, y, at_most in cases:
        assert stats.mann_whitney_less(x, y) == pytest.approx(at_most / 6)
    assert stats.min_p_value(3, 3) == pytest.approx(1 / 20)
    assert stats.min_p_value(5, 5) == pytest.approx(1 / 252)
    assert stats.mann_whitney_less([1, 2, 3], [4, 5, 6]) == pytest.approx(0.05)
    assert stats.mann_whitney_less([4, 5, 6], [1, 2, 3]) == 1.0
    # one swap: x = 1, 2, 5 vs y = 3, 4, 6 -> U = 2 (5 beats 3 and 4); P(U <= 2) = 4/20
    assert stats.mann_whitney_less([1, 2, 5], [3, 4, 6]) == pytest.approx(4 / 20)


def _tie_aware_p(x, y):
    """P(U <= observed) over every split of the pooled values into samples of len(x) and
    len(y), tied values kept: the exact permutation distribution, by brute force."""

    def u(a, b):
        return sum(Fraction(1) if p > q else Fraction(1, 2) if p == q else 0 for p in a for q in b)

    pool, observed, hits, total = x + y, u(x, y), 0, 0
    for idx in itertools.combinations(range(len(pool)), len(x)):
        rest = [v for i, v in enumerate(pool) if i not in idx]
        hits += u([pool[i] for i in idx], rest) <= observed
        total += 1
    return Fraction(hits, total)


def test_tied_values_get_the_exact_tie_aware_p():
    # U = 1.5 (three 96s tie with the baseline's 96). By hand: of the 70 ways to give four of
    # 92, 96, 96, 96, 96, 99, 100, 104 to x, only 92 with three of the four 96s reach
    # U <= 1.5, so p = 4/70. The old code rounded U down to 1 in the no-ties table and gave
    # 2/70 = 0.0286: significant at 95%, which it is not.
    x, y = [92.0, 96.0, 96.0, 96.0], [96.0, 99.0, 100.0, 104.0]
    assert _tie_aware_p(x, y) == Fraction(4, 70)
    assert stats.mann_whitney_less(x, y) == pytest.approx(4 / 70, rel=1e-12)
    # so the old code called this -3.5% a regression at a 3% limit; it is too noisy to judge
    v = verdicts.judge("c", x, y, max_slowdown=0.03)
    assert v.status == "noisy" and "p=0.0571 >= 0.05" in v.why
    # more ties, other sizes (old values: 0.05, 0.0571, 0.0159, 1.0): exact, and repeatable
    for x, y in (
        ([1, 2, 3], [3, 4, 5]),  # 2/20
        ([90, 95, 100, 100], [100, 100, 105, 110]),  # 6/70
        ([1, 2, 3, 4, 5], [4, 5, 6, 7, 8]),  # 5/252
        ([5, 5, 5, 5, 5], [5, 5, 5, 5, 5, 5, 5]),  # all tied: no evidence at all
    ):
        p = stats.mann_whitney_less(x, y)
        assert p == pytest.approx(float(_tie_aware_p(x, y)), rel=1e-12)
        assert stats.mann_whitney_less(x, y) == p


def _normal_p(x, y):
    """The normal approximation of P(U <= observed), with the tie and continuity corrections,
    written out from the textbook formula."""
    n1, n2 = len(x), len(y)
    n = n1 + n2
    u = sum(1 if a > b else 0.5 if a == b else 0 for a in x for b in y)
    ties = sum(t**3 - t for t in collections.Counter(x + y).values())
    sd = math.sqrt(n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1))))
    return statistics.NormalDist().cdf((u - n1 * n2 / 2 + 0.5) / sd)


def test_large_samples_use_the_normal_approximation():
    rng = random.Random(3)
    # 30 vs 30 with ties (values rounded to whole samples/s): too many splits to enumerate
    x = [float(round(rng.gauss(97, 3))) for _ in range(30)]
    y = [float(round(rng.gauss(100, 3))) for _ in range(30)]
    assert len(set(x + y)) < 60
    assert stats.mann_whitney_less(x, y) == pytest.approx(_normal_p(x, y), rel=1e-9)
    # 60 vs 60 without ties, fully separated: exact would be 1 / C(120, 60), about 1e-35
    x, y = [float(i) for i in range(60)], [float(i) for i in range(60, 120)]
    assert stats.mann_whitney_less(x, y) == pytest.approx(_normal_p(x, y), rel=1e-9)
    # up to 100 values without ties the p stays exact
    x, y = [float(i) for i in range(20)], [float(i) for i in range(20, 40)]
    assert stats.mann_whitney_less(x, y) == pytest.approx(1 / math.comb(40, 20), rel=1e-9)
    assert stats.min_p_value(20, 20) == 1 / math.comb(40, 20)


def test_t_quantile_at_three_degrees_of_freedom():
    # tables: 4.5407; the old Cornish-Fisher expansion gave 4.4537, 2% low
    assert stats.t_quantile(0.99, 3) == pytest.approx(4.5407, abs=1e-4)
    assert stats.t_quantile(0.5, 7) == pytest.approx(0.0, abs=1e-12)


def test_parse_confidence():
    for text, value in (("0.95", 0.95), ("0.99", 0.99), ("95%", 0.95), ("99.5%", 0.995)):
        assert verdicts.parse_confidence(text) == value
    assert verdicts.parse_confidence(" 50 % ") == 0.5
    for text, hint in (
        ("95", " (did you mean 95%?)"),
        ("99.9", " (did you mean 99.9%?)"),
        ("1.0", ""),
        ("1", ""),
        ("0.3", ""),
        ("100%", ""),
        ("120", ""),
    ):
        with pytest.raises(verdicts.LimitError) as info:
            verdicts.parse_confidence(text)
        assert str(info.value) == (
            f"--confidence: must be from 0.5 (50%) to below 1 (100%), got {text!r}{hint}"
        )
    for text in ("abc", "", "-0.95", "0.9.5"):
        with pytest.raises(verdicts.LimitError, match=r"^--confidence: expected a fraction"):
            verdicts.parse_confidence(text)


def test_confidence_outside_the_range_is_refused_by_the_gate():
    runs = [BASE, [x * 1.01 for x in BASE]]
    for bad in (1.0, 95.0, 0.3, math.nan):
        with pytest.raises(ValueError, match="confidence must be from 0.5"):
            verdicts.judge("c", BASE, BASE, confidence=bad)
        with pytest.raises(ValueError, match="confidence must be from 0.5"):
            verdicts.check([result("jax", BASE)], [result("jax", BASE)], confidence=bad)
        with pytest.raises(ValueError, match="confidence must be from 0.5"):
            calibrate.calibrate(runs, confidence=bad)
    assert verdicts.judge("c", BASE, BASE, confidence=0.5).status == "unchanged"


def test_render_check_shows_bounds_and_adjusted_p_and_the_header_the_correction():
    found = [
        verdicts.Verdict(
            "s/a--jax", "unchanged", 1.0, (0.98, 1.02), 0.5, 0.5, "+0.0%", (5, 5), 1.0
        ),
        verdicts.Verdict(
            "s/b--jax", "regressed", 0.9, (0.0, 0.92), 0.004, 1.0, "-10%", (5, 5), 0.008
        ),
        verdicts.Verdict("s/c--jax", "not compared", why="not in the baseline"),
        verdicts.Verdict("s/d--jax", "workload changed", why="batch_size: 32 -> 64"),
    ]
    assert check.render_check(found) == (
        "cell      verdict           ratio  bounds       p (slower)  p adj  n    why\n"
        "s/b--jax  REGRESSED         0.900  ...-0.920    0.004       0.008  5/5  -10%\n"
        "s/d--jax  WORKLOAD CHANGED                                              batch_size: 32 -> 64\n"
        "s/a--jax  unchanged         1.000  0.980-1.020  0.5         1      5/5  +0.0%\n"
        "s/c--jax  not compared                                                  not in the baseline\n"
    )
    assert check.render_check(found, markdown=True).splitlines()[:3] == [
        "| cell | verdict | ratio | bounds | p (slower) | p adj | n | why |",
        "|---|---|---|---|---|---|---|---|",
        "| s/b--jax | REGRESSED | 0.900 | ...-0.920 | 0.004 | 0.008 | 5/5 | -10% |",
    ]
    assert check.header(found, 0.99, "holm") == (
        "Gate at 99% confidence; correction Holm-Bonferroni: at most 1% chance of any false "
        "alarm over the 2 judged cells. p adj: the p-value after the correction; bounds: of the "
        "ratio, each one-sided at the level its test was held to."
    )
    assert "Benjamini-Hochberg" in check.header(found, 0.95, "bh")
    assert "each of the 2 judged cells tested at 5% alone" in check.header(found, 0.95, "none")


BASE = [100.0, 103.0, 97.0, 101.0, 99.0]


def test_aa_pair_is_unchanged():
    v = verdicts.judge("c", [99.0, 102.0, 98.0, 100.5, 101.0], BASE, max_slowdown=0.05)
    assert v.status == "unchanged"
    assert v.ratio == pytest.approx(100.5 / 100)


def test_clear_ten_percent_slowdown_regresses():
    v = verdicts.judge("c", [x * 0.9 for x in BASE], BASE, max_slowdown=0.05)
    assert v.status == "regressed"
    assert v.ratio == pytest.approx(0.9)
    assert v.p_slower == pytest.approx(1 / 252)
    assert "-10.0%" in v.why and "p=0.00397" in v.why


def test_slowdown_within_noise_is_not_called():
    # 10% slower in the median, but the samples overlap heavily: not a regression.
    v = verdicts.judge("c", [90.0, 120.0, 80.0, 101.0, 70.0], BASE, max_slowdown=0.05)
    assert v.status == "noisy"
    assert v.p_slower > 0.05


def test_three_repeats_cannot_reach_95_percent():
    v = verdicts.judge("c", [80.0, 81.0, 82.0], [100.0, 101.0, 102.0], max_slowdown=0.05)
    assert v.status == "noisy"  # the smallest p with 3 vs 3 is exactly 0.05
    assert v.p_slower == pytest.approx(0.05)


def test_small_significant_slowdown_below_the_limit_passes():
    v = verdicts.judge("c", [x * 0.97 for x in BASE], BASE, max_slowdown=0.05)
    assert v.status == "unchanged"


def test_improvement():
    v = verdicts.judge("c", [x * 1.2 for x in BASE], BASE)
    assert v.status == "improved"


def test_check_refuses_other_hardware_unless_allowed():
    cur = result("jax", [90.0] * 5)
    base = result("jax", BASE)
    base["environment"]["cpu_model"] = "Other CPU"
    found, refusals = verdicts.check([cur], [base])
    assert found == []
    assert refusals == [
        "sweep/bs32--jax: different machine or versions (cpu_model: Other CPU -> Test CPU); "
        "use --allow-mismatch to compare anyway"
    ]
    found, refusals = verdicts.check([cur], [base], allow_mismatch=True)
    assert refusals == [] and [v.status for v in found] == ["regressed"]


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
    assert "note: the baseline holds one run" in proc.stderr
    proc = run_cli("check", str(slow), "--baseline", str(base), "--format", "md")
    assert proc.returncode == 1
    assert proc.stdout.splitlines()[0].startswith("Gate at 95% confidence; correction Holm")
    assert proc.stdout.splitlines()[4].startswith("| sweep/bs32--torch | REGRESSED | 0.900 |")
    proc = run_cli("check", str(slow), "--baseline", str(base), "--max-slowdown", "15%")
    assert proc.returncode == 0
    proc = run_cli("check", str(slow), "--baseline", str(base), "--max-slowdown", "lots")
    assert proc.returncode == 2 and proc.stderr.startswith("harness: --max-slowdown: expected")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "r.json").write_text("{")
    proc = run_cli("check", str(tmp_path / "junk"), "--baseline", str(base))
    assert proc.returncode == 2 and "corrupt result file" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_baseline_keeps_several_runs_per_machine(tmp_path):
    into = tmp_path / "results" / "baselines"
    for name, values in (("run1", BASE), ("run2", [x * 1.1 for x in BASE])):
        doc = result("jax", values, run_id=name)
        results.write_json_atomic(tmp_path / "results" / name / "sweep" / "bs32--jax.json", doc)
    run1, run2 = str(tmp_path / "results" / "run1"), str(tmp_path / "results" / "run2")
    proc = run_cli("baseline", run1, "--into", str(into))
    assert proc.returncode == 0, proc.stderr
    assert "1 run(s): run1" in proc.stdout and "tip: add two more runs" in proc.stdout
    # A second run is refused unless it is meant to join (or replace) the baseline.
    proc = run_cli("baseline", run2, "--into", str(into))
    assert proc.returncode == 2 and "pass --add" in proc.stderr
    proc = run_cli("baseline", run2, "--into", str(into), "--add")
    assert proc.returncode == 0, proc.stderr
    assert "2 run(s): run1, run2" in proc.stdout
    stored = sorted(p.relative_to(into).parts[1:] for p in into.rglob("*.json"))
    assert stored == [("run1", "sweep", "bs32--jax.json"), ("run2", "sweep", "bs32--jax.json")]
    proc = run_cli("baseline", run2, "--into", str(into), "--add")
    assert proc.returncode == 2 and "already in the baseline" in proc.stderr
    proc = run_cli("baseline", run2, "--into", str(into), "--replace")
    assert proc.returncode == 0 and "1 run(s): run2" in proc.stdout
    # The gate reads the stored runs as one baseline with its run-to-run noise.
    proc = run_cli("baseline", run1, "--into", str(into), "--add")
    proc = run_cli("check", run1, "--baseline", str(next(into.iterdir())))
    assert proc.returncode == 0 and "  5/10  " in proc.stdout, proc.stdout + proc.stderr


def test_run_to_run_noise_of_the_baseline_protects_the_gate():
    # Three baseline runs of the same code, medians 100, 110 and 105: one more run may land
    # about 15% below them by chance (one-sided 95% t prediction bound on the log medians).
    spread = [1.0, 1.1, 1.05]
    runs = [result("jax", [x * f for x in BASE], run_id=f"b{i}") for i, f in enumerate(spread)]
    allowance = stats.run_allowance([[x * f for x in BASE] for f in spread])
    assert 1 - math.exp(-allowance) == pytest.approx(0.1484, abs=1e-4)
    assert stats.run_allowance([BASE]) == 0.0
    # A significant 10% drop is within that: noisy, not a regression...
    cur = result("jax", [x * 0.9 * 1.05 for x in BASE], run_id="new")  # pooled median 105
    (v,), _ = verdicts.check([cur], runs)
    assert v.n == (5, 15) and v.ratio == pytest.approx(0.9)
    assert v.status == "noisy" and "baseline's 3 runs" in v.why and "14.8% lower" in v.why
    # ... a drop beyond it is still called ...
    (v,), _ = verdicts.check([result("jax", [x * 0.8 for x in BASE], run_id="new")], runs)
    assert v.status == "regressed"
    # ... and so is the same 10% against a single baseline run, which shows no run-to-run
    # noise (the CLI warns about that; see test_check_cli_exit_codes).
    (v,), _ = verdicts.check([result("jax", [x * 0.9 for x in BASE], run_id="new")], runs[:1])
    assert v.status == "regressed"
    # A fast moment is not an improvement either.
    (v,), _ = verdicts.check([result("jax", [x * 1.1 * 1.05 for x in BASE], run_id="new")], runs)
    assert v.status == "unchanged"


def test_t_quantiles_match_tables():
    for df, table in ((1, 6.314), (2, 2.920), (3, 2.353), (5, 2.015), (10, 1.812), (30, 1.697)):
        assert stats.t_quantile(0.95, df) == pytest.approx(table, rel=0.004)


def test_check_refuses_a_baseline_that_mixes_machines():
    cur = result("jax", BASE, run_id="new")
    other = result("jax", BASE, run_id="b2")
    other["environment"]["cpu_model"] = "Other CPU"
    _, refusals = verdicts.check([cur], [result("jax", BASE, run_id="b1"), other])
    assert len(refusals) == 1 and "cpu_model: Other CPU -> Test CPU" in refusals[0]


def test_interleaved_sides_are_judged_by_the_rank_test_alone():
    def side(name, values):
        docs = []
        for k, x in enumerate(values, 1):
            d = result("jax", [x], run_id=f"round-{k:02d}")
            d["ab"] = {"id": "ab-1", "side": name, "round": k}
            docs.append(d)
        return docs

    base = side("baseline", BASE)
    cand = side("candidate", [x * 0.92 for x in BASE])
    (v,), _ = verdicts.check(cand, base)
    # five results (one per worker) per side pooled, no run-to-run allowance between rounds
    assert v.n == (5, 5) and v.status == "regressed"
    assert verdicts.baseline_runs(base) == 1


def test_a_failed_worker_on_either_side_is_missing_not_dropped():
    def side(name, values, failed_round=None):
        docs = []
        for k, x in enumerate(values, 1):
            bad = k == failed_round
            d = result(
                "jax", [x], run_id=f"round-{k:02d}",
                status="failed" if bad else "ok", reason="boom" if bad else None,
            )  # fmt: skip
            d["ab"] = {"id": "ab-1", "side": name, "round": k}
            docs.append(d)
        return docs

    for broken in ("baseline", "candidate"):
        base = side("baseline", BASE, failed_round=3 if broken == "baseline" else None)
        cand = side("candidate", BASE, failed_round=2 if broken == "candidate" else None)
        (v,), _ = verdicts.check(cand, base)
        want = "lost" if broken == "candidate" else "missing"
        extra = "ok in the baseline; " if broken == "candidate" else ""
        assert (v.status, v.why) == (want, f"{extra}{broken} side: failed: boom")
    # a stored baseline whose only run of the cell failed
    failed = result("jax", BASE, run_id="b", status="failed", reason="out of memory")
    (v,), _ = verdicts.check([result("jax", BASE, run_id="new")], [failed])
    assert (v.status, v.why) == ("missing", "baseline: failed: out of memory")
    # ... but a failed run among ok runs of a stored baseline is left out of the pool
    ok = [result("jax", BASE, run_id="b1"), result("jax", BASE, run_id="b2")]
    (v,), _ = verdicts.check([result("jax", BASE, run_id="new")], [*ok, failed])
    assert v.status == "unchanged" and v.n == (5, 10)


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


def test_ab_whose_baseline_side_failed_in_every_round_is_missing():
    def side(name, status, reason=None):
        docs = []
        for k in range(1, 5):
            d = result("jax", BASE, run_id=f"round-{k:02d}", status=status, reason=reason)
            d["ab"] = {"id": "ab-1", "side": name, "round": k}
            docs.append(d)
        return docs

    base = side("baseline", "failed", "ImportError: x")
    (v,), _ = verdicts.check(side("candidate", "ok"), base)
    assert (v.status, v.why) == ("missing", "baseline side: failed: ImportError: x")
    (v,), _ = verdicts.check(side("candidate", "failed", "boom"), base)
    assert v.why == "baseline side: failed: ImportError: x; current: failed: boom"


def test_check_metric_typical_cli(tmp_path):
    def write(folder, typical):
        d = result("jax", BASE, run_id=folder)
        if typical is not None:
            d["train"]["typical_samples_per_sec"] = stats.summarize(typical)
        results.write_json_atomic(tmp_path / folder / "r.json", d)

    write("base", BASE)
    write("new", [x * 0.85 for x in BASE])
    write("old", None)
    args = ["--metric", "typical", "--max-slowdown", "5%"]
    proc = run_cli("check", str(tmp_path / "new"), "--baseline", str(tmp_path / "base"), *args)
    assert proc.returncode == 1 and "REGRESSED" in proc.stdout, proc.stderr
    proc = run_cli("check", str(tmp_path / "new"), "--baseline", str(tmp_path / "base"))
    assert proc.returncode == 0 and "unchanged" in proc.stdout  # same throughput
    proc = run_cli("check", str(tmp_path / "new"), "--baseline", str(tmp_path / "old"), *args)
    assert proc.returncode == 1 and "missing" in proc.stdout
    assert "has no train.typical_samples_per_sec" in proc.stdout


def test_current_side_is_the_newest_run_of_each_cell():
    base = result("jax", BASE, run_id="b")
    old = result("jax", [x * 0.5 for x in BASE], run_id="old", started="2026-11-26T00:00:00Z")
    new = result("jax", BASE, run_id="new", started="2026-11-27T01:00:00Z")
    (v,), _ = verdicts.check([new, old], [base])
    assert v.status == "unchanged" and v.n == (5, 5)


def test_cells_that_ran_on_neither_side_are_not_compared():
    def cell(run_id, status, reason=None, cell_id="gpu"):
        return result("jax", BASE, run_id=run_id, status=status, reason=reason, cell_id=cell_id)

    cases = [
        # (current, baseline(s), status, why)
        ("skipped", "no GPU", [("skipped", "no GPU")], "not compared",
         "skipped on both sides: no GPU"),
        ("unsupported", "jit=False", [("unsupported", "jit=False")] * 2, "not compared",
         "unsupported on both sides: jit=False"),
        ("skipped", "no GPU", [("skipped", "no CUDA")], "missing",
         "baseline: skipped: no CUDA; current: skipped: no GPU"),
        ("skipped", "no GPU", [("unsupported", "no GPU")], "missing",
         "baseline: unsupported: no GPU; current: skipped: no GPU"),
        ("skipped", "no GPU", [("skipped", "no GPU"), ("skipped", "other")], "missing",
         "baseline: skipped: no GPU, skipped: other; current: skipped: no GPU"),
        ("failed", "boom", [("failed", "boom")], "missing",
         "baseline: failed: boom; current: failed: boom"),
        ("interrupted", "SIGTERM", [("skipped", "no GPU")], "missing",
         "baseline: skipped: no GPU; current: interrupted: SIGTERM"),
        ("ok", None, [("skipped", "no GPU")], "missing", "baseline: skipped: no GPU"),
        # ok in the baseline, not now: lost (a GPU runner whose CUDA broke must not pass)
        ("skipped", "no GPU", [("ok", None)], "lost", "ok in the baseline; current run: skipped: no GPU"),
        ("unsupported", "x", [("ok", None)], "lost", "ok in the baseline; current run: unsupported: x"),
        ("failed", "boom", [("ok", None)], "lost", "ok in the baseline; current run: failed: boom"),
    ]  # fmt: skip
    for status, reason, base, want, why in cases:
        baseline = [cell(f"b{i}", s, r) for i, (s, r) in enumerate(base)]
        (v,), refusals = verdicts.check([cell("new", status, reason)], baseline)
        assert (v.status, v.why, refusals) == (want, why, []), (status, reason, base)
        assert verdicts.gate_fails([v]) is (want in ("missing", "lost"))


def test_a_cell_absent_from_the_baseline_is_not_compared_unless_it_crashed():
    new = result("jax", BASE, run_id="new", cell_id="bs64")
    failed = result("jax", BASE, run_id="new", cell_id="bs128", status="failed", reason="boom")
    found, _ = verdicts.check([result("jax", BASE, run_id="new"), new], [result("jax", BASE)])
    assert [(v.key, v.status, v.why) for v in found] == [
        ("sweep/bs32--jax", "unchanged", "+0.0%, within ±5% or not significant"),
        ("sweep/bs64--jax", "not compared", "not in the baseline"),
    ]
    assert not verdicts.gate_fails(found)
    # A new cell that crashed is news whatever the baseline holds.
    found, _ = verdicts.check([result("jax", BASE, run_id="new"), failed], [result("jax", BASE)])
    assert [(v.key, v.status, v.why) for v in found][1] == (
        "sweep/bs128--jax",
        "missing",
        "not in the baseline; current: failed: boom",
    )
    assert verdicts.gate_fails(found)


def test_a_cell_the_current_run_lacks_is_missing_unless_its_scenario_was_left_out():
    """A run stopped halfway, or a scenario that lost cells, must not pass the gate; a
    scenario (or backend) not run at all is a choice of what to gate."""
    base = [
        result("jax", BASE),
        result("jax", BASE, cell_id="bs64"),
        result("jax", BASE, scenario="other"),
        result("torch", BASE),
    ]
    found, _ = verdicts.check([result("jax", BASE, run_id="new")], base)
    assert sorted((v.key, v.status, v.why) for v in found) == [
        ("other/bs32--jax", "not compared", "its scenario was not run now"),
        ("sweep/bs32--jax", "unchanged", "+0.0%, within ±5% or not significant"),
        ("sweep/bs32--torch", "not compared", "its scenario was not run now"),
        ("sweep/bs64--jax", "missing", "in the baseline, not in the current run"),
    ]
    # What the current run's manifest planned and never ran is missing, baseline or not.
    planned = {"other/bs32--jax", "late/bs32--jax"}
    found, _ = verdicts.check([result("jax", BASE, run_id="new")], base, planned=planned)
    got = {v.key: (v.status, v.why) for v in found}
    assert got["other/bs32--jax"] == (
        "missing",
        "in the baseline, not in the current run (planned, but it never ran)",
    )
    assert got["late/bs32--jax"] == ("missing", "planned in the current run, never ran")


def test_a_slowdown_the_gate_cannot_judge_is_refused_not_passed():
    """3 repeats against a one-run baseline of 3: the smallest possible p is 1/20 = 0.05,
    never below 0.05, so even a 50% slowdown came out "noisy" and passed. It is refused
    (exit 2); a cell within the limit needs no test, so a run against itself passes."""
    three = [100.0, 110.0, 120.0]
    found, refusals = verdicts.check(
        [result("jax", [50.0, 55.0, 60.0], run_id="new")], [result("jax", three)]
    )
    assert found == []
    assert refusals == [
        "sweep/bs32--jax: -50.0%, but with 3 against 3 values no rank test reaches p < 0.05 "
        "(the smallest possible p is 0.05), so the gate cannot judge it; measure more repeats "
        "(4 or more), keep more baseline runs, or gate interleaved with harness ab"
    ]
    found, refusals = verdicts.check([result("jax", three, run_id="new")], [result("jax", three)])
    assert refusals == [] and [v.status for v in found] == ["unchanged"]
    # At 99.99% even 5 against 5 cannot (smallest p 1/252).
    slow = [x * 0.8 for x in BASE]
    _, refusals = verdicts.check(
        [result("jax", slow, run_id="new")], [result("jax", BASE)], confidence=0.9999
    )
    assert len(refusals) == 1 and "smallest possible p is 0.00397" in refusals[0]


def test_gate_fails_on_regressed_lost_or_missing_only():
    assert verdicts.STATUSES == (
        "regressed", "lost", "workload changed", "improved", "noisy", "unchanged", "missing",
        "not compared",
    )  # fmt: skip
    for status in verdicts.STATUSES:
        v = verdicts.Verdict("k", status)
        assert verdicts.gate_fails([v]) is (status in ("regressed", "lost", "missing")), status
        assert verdicts.gate_fails([verdicts.Verdict("u", "unchanged"), v]) is verdicts.gate_fails(
            [v]
        )
    assert verdicts.gate_fails([]) is False


def test_check_a_run_against_itself_passes(tmp_path):
    run = tmp_path / "run"
    results.write_json_atomic(run / "sweep" / "bs32--jax.json", result("jax", BASE))
    skipped = result("torch", BASE, status="skipped", reason="torch is not installed")
    results.write_json_atomic(run / "sweep" / "bs32--torch.json", skipped)
    proc = run_cli("check", str(run), "--baseline", str(run), "--confidence", "99%")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("Gate at 99% confidence; correction Holm-Bonferroni")
    assert lines[4].startswith("sweep/bs32--torch  not compared  ")
    assert lines[4].endswith("  skipped on both sides: torch is not installed")
    assert "1 unchanged, 1 not compared" in proc.stderr
    proc = run_cli("check", str(run), "--baseline", str(run), "--confidence", "95")
    assert proc.returncode == 2
    assert proc.stderr == (
        "harness: --confidence: must be from 0.5 (50%) to below 1 (100%), got '95' "
        "(did you mean 95%?)\n"
    )


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
    import random

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


def test_metric_typical_ranks_the_median_chunk_rate():
    def run(run_id, typical):
        d = result("jax", BASE, run_id=run_id)  # the same throughput on both sides
        if typical is not None:
            d["train"]["typical_samples_per_sec"] = stats.summarize(typical)
        return d

    slower = [x * 0.9 for x in BASE]
    cur, base = run("new", slower), run("b", BASE)
    (v,), _ = verdicts.check([cur], [base])
    assert v.status == "unchanged" and v.ratio == 1.0
    (v,), _ = verdicts.check([cur], [base], metric="typical")
    assert v.status == "regressed" and v.ratio == pytest.approx(0.9)
    # a result from before the field existed: the cell cannot be judged on it
    old = run("b", None)
    old["_path"] = "base/r.json"
    (v,), _ = verdicts.check([cur], [old], metric="typical")
    assert v.status == "missing" and v.why.startswith("base/r.json has no train.typical_")


def test_rounds_needed_from_the_spread_of_workers():
    # two sides, each two workers e^0.2 apart: pooled sd of the logs is sqrt(0.02)
    assert stats.log_spread([[1.0, math.exp(0.2)], [5.0, 5 * math.exp(0.2)]]) == (
        pytest.approx(math.sqrt(0.02))
    )
    assert stats.log_spread([[3.0]]) == 0.0
    # the larger of the rank test's 2 * ((z.95 + z) * sd / d)^2 * pi/3 and the limit's
    # pi * (z * sd / (d - limit))^2, d and limit as -ln(1 - x), z = z(sqrt(0.8)); even, >= 4
    assert stats.rounds_needed(0.1, 0.1, 0.05) == 18  # max(15.8, 16.8) -> 17 -> 18
    assert stats.rounds_needed(0.16, 0.1, 0.05) == 44  # max(40.5, 43.0)
    assert stats.rounds_needed(0.16, 0.05, 0.025) == 188
    assert stats.rounds_needed(0.01, 0.1, 0.05) == 4
    # a slowdown of exactly the limit is measured past it only half of the time
    assert stats.rounds_needed(0.1, 0.05, 0.05) is None
    cal = calibrate.calibrate([], pairs=[([1.0, math.exp(0.2)], [5.0, 5 * math.exp(0.2)])])
    assert cal["spread"] == pytest.approx(math.sqrt(0.02))


def test_rounds_needed_is_what_the_gate_needs():
    # Simulated A/B jobs judged as the gate judges them: with the rounds advised, a real 10%
    # slowdown at a 5% limit is called a regression at least 4 times in 5.
    rng = random.Random(7)
    spread = 0.1
    n = stats.rounds_needed(spread, 0.1, 0.05)
    caught = 0
    for _ in range(200):
        base = [math.exp(rng.gauss(0, spread)) for _ in range(n)]
        cand = [math.exp(rng.gauss(math.log(0.9), spread)) for _ in range(n)]
        caught += verdicts.judge("x", cand, base, max_slowdown=0.05).status == "regressed"
    assert caught >= 160, caught


def test_check_of_a_noisy_interleaved_pair_says_how_many_rounds(tmp_path):
    base = [100.0, 130.0, 80.0, 110.0]
    cand = [x * 0.9 for x in (130.0, 80.0, 100.0, 110.0)]
    for name, values in (("baseline", base), ("candidate", cand)):
        for k, x in enumerate(values, 1):
            d = result("jax", [x], run_id=f"round-{k:02d}")
            d["ab"] = {"id": "ab-1", "side": name, "round": k}
            results.write_json_atomic(tmp_path / name / f"round-{k:02d}" / "r.json", d)
    proc = run_cli("check", str(tmp_path / "candidate"), "--baseline", str(tmp_path / "baseline"))
    assert proc.returncode == 0 and "noisy" in proc.stdout
    spread = stats.log_spread([base, cand])
    seen = 1 - statistics.median(cand) / statistics.median(base)
    n = stats.rounds_needed(spread, seen, 0.05)
    assert n > 4
    assert f"workers of one side spread by {spread:.1%}; if the measured {-seen:+.1%}" in (
        proc.stderr
    )
    assert f"about {n} rounds would show it past -5% 4 times in 5 (--rounds {n})" in proc.stderr


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


def test_importing_the_gate_leaves_scipy_unloaded():
    # scipy.stats takes about a second to import: --help and the report commands never need it
    code = "import sys, harness.gate.verdicts, harness.cli; sys.exit('scipy' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


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
