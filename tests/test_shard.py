"""``harness run --shard K/N``: every cell exactly once over the N shards, the same split on
every machine, balanced by expected cost; the report merges the shards and says when their
hardware differs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import ROOT, STUB_HARNESS, run_cli, stub_env

from harness import backends, scenario
from harness.errors import UsageError
from harness.orchestrate import jobs as planning
from harness.orchestrate import shard

SHIPPED = sorted((ROOT / "scenarios").glob("*.toml"))


def plan() -> list[planning.Job]:
    jobs, _ = planning.plan(scenario.load_all(SHIPPED), list(backends.NAMES))
    return jobs


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_shards_of_the_shipped_scenarios_run_every_cell_exactly_once(n):
    jobs = plan()
    assert len(jobs) > 50
    keys = [j.key for j in jobs]
    assert len(set(keys)) == len(keys)
    parts = [[j.key for j in shard.select(jobs, k, n)] for k in range(1, n + 1)]
    flat = [k for part in parts for k in part]
    assert sorted(flat) == sorted(keys)  # all of them, none twice
    # each shard keeps the plan's order
    assert all(part == [k for k in keys if k in set(part)] for part in parts)
    # a fresh plan splits the same way (the golden split below pins it across machines)
    assert [[j.key for j in shard.select(plan(), k, n)] for k in range(1, n + 1)] == parts
    loads = [
        sum(shard.expected_seconds(j) for j in shard.select(jobs, k, n)) for k in range(1, n + 1)
    ]
    assert max(loads) - min(loads) <= max(shard.expected_seconds(j) for j in jobs)


def test_assign_balances_by_cost_longest_first():
    jobs = plan()[:6]
    costs = [shard.expected_seconds(j) for j in jobs]
    out = shard.assign(jobs, 2)
    loads = [sum(c for c, s in zip(costs, out, strict=True) if s == i) for i in (0, 1)]
    assert abs(loads[0] - loads[1]) <= max(costs)


@pytest.mark.parametrize("text", ["0/2", "3/2", "2", "a/b", "1/0", ""])
def test_bad_shard_is_one_line(text):
    with pytest.raises(UsageError, match=r"^--shard .*expected K/N"):
        shard.parse(text)


def _run(sc: Path, out: Path, *more: str, **opts):
    env = stub_env(**opts)
    return run_cli(
        "run", str(sc), "--backend", "jax", "--out", str(out), *more, env=env, module=STUB_HARNESS
    )


def test_shards_merge_into_one_report_that_flags_other_hardware(tmp_path):
    sc = tmp_path / "s.toml"
    sc.write_text("[defaults]\nrepeats = 1\n[matrix]\nseed = [0, 1, 2, 3, 4]\n")
    for k in (1, 2):
        proc = _run(sc, tmp_path / f"shard{k}", "--shard", f"{k}/2")
        assert proc.returncode == 0, proc.stderr
        assert f"shard {k}/2: " in proc.stderr
    files = sorted(tmp_path.glob("shard*/*/s/*.json"))
    assert sorted(f.stem for f in files) == [f"seed{i}--jax" for i in range(5)]
    manifest = json.loads(next(tmp_path.glob("shard1/*/run.json")).read_text())
    assert manifest["shard"] == "1/2"
    report = run_cli("compare", str(tmp_path / "shard1"), str(tmp_path / "shard2"))
    assert report.returncode == 0, report.stderr
    assert "## Shards\n\nShards 1/2, 2/2, all on the same hardware (" in report.stdout
    for i in range(5):
        assert f"| seed{i} |" in report.stdout
    # one shard on another machine: the report says so
    for other in tmp_path.glob("shard2/*/s/*.json"):
        doc = json.loads(other.read_text())
        doc["environment"]["cpu_model"] = "Other CPU"
        other.write_text(json.dumps(doc))
    report = run_cli("compare", str(tmp_path / "shard1"), str(tmp_path / "shard2"))
    assert "Warning: the shards ran on different hardware (1/2 on " in report.stdout
    assert "2/2 on Other CPU x" in report.stdout
    # a shard missing from the report
    report = run_cli("compare", str(tmp_path / "shard1"))
    assert "No results here from shard(s) 2/2 of 2 (not run yet, not given" in report.stdout


def test_a_shard_with_no_cells_runs_nothing_and_succeeds(tmp_path):
    sc = tmp_path / "s.toml"
    sc.write_text("[defaults]\nrepeats = 1\n")
    proc = _run(sc, tmp_path / "r", "--shard", "2/3")
    assert proc.returncode == 0, proc.stderr
    assert "shard 2/3 holds no cell of this plan; nothing to run" in proc.stderr
    assert not (tmp_path / "r").exists()
    for bad in ("4/3", ""):  # an empty --shard "$VAR" of a CI matrix is a mistake
        proc = _run(sc, tmp_path / "r", "--shard", bad)
        assert proc.returncode == 2 and proc.stderr.strip().startswith(f"harness: --shard {bad}")


def test_the_split_is_fixed_by_the_plan_alone(tmp_path):
    """The same split on every machine: a golden split of a fixed plan (costs from repeats and
    min_time), which no machine, clock or seed may change."""
    sc = tmp_path / "s.toml"
    sc.write_text("[defaults]\nmin_time = 2\n[matrix]\nrepeats = [1, 5, 2, 3]\nseed = [0, 1]\n")
    jobs, _ = planning.plan([scenario.load(sc)], ["jax", "torch"])
    assert [shard.expected_seconds(j) for j in jobs[:4]] == [16.0, 16.0, 24.0, 24.0]
    assert shard.assign(jobs, 3) == GOLDEN


# longest first (r5, r3, r2, r1), each to the least-loaded shard, ties to the lower one
GOLDEN = [1, 0, 0, 2, 0, 2, 1, 1, 2, 1, 1, 0, 1, 0, 2, 2]
