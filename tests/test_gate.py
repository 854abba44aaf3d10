"""The regression gate on hand-made results, with exact expected answers: its settings
(--max-slowdown, --confidence), the rules of a verdict, which results meet (other machines,
baseline runs, A/B sides, failed or missing cells, workload and metric), `harness check` and
`harness baseline` end to end."""

from __future__ import annotations

import math
import statistics
import subprocess
import sys

import pytest
from conftest import ROOT, run_cli
from factories import result

from harness import results
from harness.gate import calibrate, check, stats, verdicts


def test_parse_limit():
    assert verdicts.parse_limit("5%") == 0.05
    assert verdicts.parse_limit("0.1") == 0.1
    assert verdicts.parse_limit(" 12.5 % ") == 0.125
    for bad in ("five", "150%", "0", "-5%"):
        with pytest.raises(verdicts.LimitError):
            verdicts.parse_limit(bad)


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


def test_importing_the_gate_leaves_scipy_unloaded():
    # scipy.stats takes about a second to import: --help and the report commands never need it
    code = "import sys, harness.gate.verdicts, harness.cli; sys.exit('scipy' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
