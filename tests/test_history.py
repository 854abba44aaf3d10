"""History across commits: step detection on synthetic histories with known steps and
outliers, its false-step rate on flat noisy ones, `harness history`, and the gate judging a
run against a window of stored runs of the same machine."""

from __future__ import annotations

import json
import random

from conftest import run_cli
from factories import result

from harness import results
from harness.gate import step_detect


def noisy(n: int, seed: int, level: float = 1000.0, cv: float = 0.03) -> list[float]:
    rng = random.Random(seed)
    return [level * (1 + rng.gauss(0, cv)) for _ in range(n)]


def test_a_lasting_step_is_found_where_it_is_and_outliers_are_not_steps():
    values = noisy(60, seed=1)
    values = values[:35] + [v * 0.85 for v in values[35:]]  # 15% slower from run 35 on
    values[12] *= 0.6  # one very slow run
    values[50] *= 1.5  # one very fast run
    values[20] *= 0.7  # and two slow ones in a row
    values[21] *= 0.7
    (step,) = step_detect.detect(values)
    assert step.index == 35
    assert -0.17 < step.change < -0.13


def test_two_steps_up_and_down():
    values = noisy(90, seed=2)
    values = values[:30] + [v * 1.2 for v in values[30:70]] + values[70:]
    assert [s.index for s in step_detect.detect(values)] == [30, 70]


def test_a_step_in_the_last_runs_waits_for_confirmation():
    values = noisy(40, seed=3)
    two = values[:38] + [v * 0.7 for v in values[38:]]  # the last two runs only
    assert step_detect.detect(two) == []
    three = values[:37] + [v * 0.7 for v in values[37:]]  # three confirm it
    assert [s.index for s in step_detect.detect(three)] == [37]


def test_false_step_rate_on_flat_noisy_histories_of_100_runs():
    flat = [noisy(100, seed=1000 + i, cv=0.05) for i in range(200)]
    false = sum(bool(step_detect.detect(v)) for v in flat)
    print(f"false-step rate: {false}/200 flat histories of 100 runs (5% noise)")
    assert false <= 2  # measured: 0 of 500 at beta 3 (step_detect.BETA)


def _history(
    tmp_path, machine="Test CPU", runs=16, step_at=8, factor=0.8, name="hist", batch_from=99
):
    """Result files of `runs` runs, one per commit, slower by `factor` from `step_at` on, and
    with batch_size 64 (another workload) from `batch_from` on."""
    for i in range(runs):
        scale = factor if i >= step_at else 1.0
        vals = [v * scale for v in noisy(5, seed=i, cv=0.01)]
        doc = result("jax", vals, run_id=f"run{i:02d}")
        if i >= batch_from:
            doc["cell"]["batch_size"] = 64
        doc["environment"]["cpu_model"] = machine
        doc["environment"]["git"] = {
            "commit": f"c{i:04d}" + "0" * 36,
            "dirty": False,
            "date": f"2026-11-{i + 1:02d}T12:00:00+00:00",
        }
        doc["started"] = f"2026-11-{i + 1:02d}T13:00:00Z"
        run = f"run{i:02d}-{machine.replace(' ', '')}"
        results.write_json_atomic(tmp_path / name / run / "sweep" / "bs32--jax.json", doc)
    return tmp_path / name


def test_history_cli_orders_by_commit_marks_steps_and_keeps_machines_apart(tmp_path):
    folder = _history(tmp_path)
    _history(tmp_path, machine="Other CPU", step_at=99, name="hist")  # same folder, no step
    proc = run_cli("history", str(folder))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.count("## Machine ") == 2  # never one line for two machines
    (line,) = [ln for ln in out.splitlines() if "c0008" in ln]
    assert line.startswith("| sweep/bs32--jax | 16 | ")
    assert line.endswith(" | c000800000 (2026-11-09): -20.1% (1,001 -> 799) | none |")
    assert out.count("| none | none |") == 1  # the other machine's flat series
    html_out = tmp_path / "h.html"
    proc = run_cli("history", str(folder), "--format", "html", "--out", str(html_out))
    assert proc.returncode == 0, proc.stderr
    page = html_out.read_text()
    assert page.count("<svg") == 2 and page.count('class="step"') == 1
    assert "-20.1% at c000800" in page


def test_check_against_a_window_of_stored_runs(tmp_path):
    history = _history(tmp_path, step_at=99)  # 16 steady runs
    slow = result("jax", [v * 0.85 for v in noisy(5, seed=99, cv=0.01)], run_id="now")
    results.write_json_atomic(tmp_path / "now" / "sweep" / "bs32--jax.json", slow)
    proc = run_cli("check", str(tmp_path / "now"), "--baseline-history", str(history),
                   "--window", "10", "--format", "md")  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "| sweep/bs32--jax | REGRESSED |" in proc.stdout
    n = proc.stdout.splitlines()[4].split("|")[7].strip()  # values compared: current / baseline
    assert n == "5/50"  # the last 10 runs of 5 repeats each
    # stored in the history already, the run is never its own baseline
    results.write_json_atomic(history / "now" / "sweep" / "bs32--jax.json", slow)
    again = run_cli("check", str(history / "now"), "--baseline-history", str(history),
                    "--window", "20", "--format", "md")  # fmt: skip
    # all 16 stored runs, not 17
    assert again.returncode == 1 and again.stdout.splitlines()[4].split("|")[7].strip() == "5/80"
    same = result("jax", noisy(5, seed=98, cv=0.01), run_id="same")
    results.write_json_atomic(tmp_path / "same" / "sweep" / "bs32--jax.json", same)
    proc = run_cli("check", str(tmp_path / "same"), "--baseline-history", str(history))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # only the same machine's runs are a baseline
    other = json.loads(json.dumps(slow))
    other["environment"]["cpu_model"] = "Elsewhere"
    results.write_json_atomic(tmp_path / "else" / "sweep" / "bs32--jax.json", other)
    proc = run_cli("check", str(tmp_path / "else"), "--baseline-history", str(history))
    assert proc.returncode == 2 and proc.stderr == (
        f"harness: --baseline-history {history}: no ok run of these cells on this machine (the "
        "same hardware and versions) is stored there\n"
    )
    proc = run_cli(
        "check", str(tmp_path / "now"), "--baseline-history", str(history), "--window", "1"
    )
    assert proc.returncode == 2 and proc.stderr.startswith("harness: --window 1: at least 2")


def test_results_record_the_commit_and_its_date_in_utc():
    import datetime

    from harness.environment import git_commit

    git = git_commit()
    if git["commit"] is None:  # not a checkout: nothing to order by, and it says so
        assert git == {"commit": None, "dirty": None, "date": None}
        return
    assert len(git["commit"]) == 40
    assert datetime.datetime.fromisoformat(git["date"]).utcoffset() == datetime.timedelta(0)


def test_a_workload_change_is_a_labelled_break_never_a_step(tmp_path):
    """Runs 8 on are 20% slower because their batch size changed: a new segment, named, and
    no step; a speed change inside a segment is still a step."""
    folder = _history(tmp_path, step_at=8, batch_from=8)
    proc = run_cli("history", str(folder))
    assert proc.returncode == 0, proc.stderr
    (line,) = [ln for ln in proc.stdout.splitlines() if ln.startswith("| sweep/bs32--jax")]
    assert line.endswith(" | c000800000 (2026-11-09): batch_size: 32 -> 64 |"), line
    assert "-20" not in line  # the 20% drop at the change is not a step
    html_out = tmp_path / "h.html"
    run_cli("history", str(folder), "--format", "html", "--out", str(html_out))
    page = html_out.read_text()
    assert page.count('class="break"') == 1 and "-20" not in page
    assert "workload changed: batch_size: 32 -&gt; 64" in page
    # a real slowdown after the change is found within the new segment
    folder = _history(tmp_path, runs=24, step_at=16, batch_from=8, name="two")
    proc = run_cli("history", str(folder))
    (line,) = [ln for ln in proc.stdout.splitlines() if ln.startswith("| sweep/bs32--jax")]
    assert "| c001600000 (2026-11-17): -20." in line and "batch_size: 32 -> 64 |" in line


def test_a_run_whose_date_cannot_be_parsed_is_left_out_with_a_warning(tmp_path):
    folder = _history(tmp_path, runs=8, step_at=99)
    bad = folder / "run07-TestCPU" / "sweep" / "bs32--jax.json"
    doc = json.loads(bad.read_text())
    doc["environment"]["git"]["date"] = "last tuesday"
    bad.write_text(json.dumps(doc))
    proc = run_cli("history", str(folder))
    assert proc.returncode == 0, proc.stderr
    assert "| sweep/bs32--jax | 7 | " in proc.stdout  # not sorted first: left out
    assert proc.stderr == (
        f"harness: warning: {bad}: its date (commit 'last tuesday', started "
        "'2026-11-08T13:00:00Z') cannot be parsed; left out of the history\n"
    )


def test_check_against_history_takes_only_runs_of_the_same_workload(tmp_path):
    """The last runs of the current workload are its baseline, however recent the others;
    where none did the same work, the change is named (exit 2), never judged."""
    history = _history(tmp_path, step_at=99, batch_from=12)  # 12 runs at 32, then 4 at 64
    now = result("jax", noisy(5, seed=97, cv=0.01), run_id="now")
    results.write_json_atomic(tmp_path / "now" / "sweep" / "bs32--jax.json", now)
    proc = run_cli("check", str(tmp_path / "now"), "--baseline-history", str(history),
                   "--window", "10", "--format", "md")  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[4].split("|")[7].strip() == "5/50"  # runs 2-11, at 32
    history = _history(tmp_path, step_at=99, batch_from=0, runs=6, name="all64")
    proc = run_cli("check", str(tmp_path / "now"), "--baseline-history", str(history))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "WORKLOAD CHANGED" in proc.stdout and "batch_size: 64 -> 32" in proc.stdout


def test_a_cell_ok_in_the_history_and_skipped_now_is_lost(tmp_path):
    """A skipped cell records no device (nor, skipped before its worker, versions): it is
    still matched to its history on the same hardware, and lost, never "not compared"."""
    history = _history(tmp_path, step_at=99)
    skipped = result("jax", [1.0], run_id="now", status="skipped", reason="no GPU")
    del skipped["environment"]["keras"]
    results.write_json_atomic(tmp_path / "now" / "sweep" / "bs32--jax.json", skipped)
    proc = run_cli("check", str(tmp_path / "now"), "--baseline-history", str(history))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "sweep/bs32--jax  LOST" in proc.stdout
    assert "ok in the baseline; current run: skipped: no GPU" in proc.stdout


def test_a_change_of_model_across_an_older_run_is_still_a_break():
    """A (model A), an older result recording its settings alone, B (model B): neither
    neighbour differs on what both record, but A and B did other work."""
    from harness.gate.history import series
    from harness.workload import record

    docs = []
    for i, params in enumerate([100, 100, None, 200, 200]):
        doc = result("jax", [1000.0 + i], run_id=f"r{i}", started=f"2026-11-0{i + 1}T00:00:00Z")
        if params is not None:
            model = {"params": params}
            doc["workload"] = record(doc["cell"], model=model, data={}, backend={})
        docs.append(doc)
    (s,) = series(docs)
    assert [(b.index, b.label) for b in s.breaks] == [
        (3, "workload changed: model.params: 100 -> 200")
    ]
