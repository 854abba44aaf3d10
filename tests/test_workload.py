"""The workload identity (harness/workload.py) and the gate that compares like with like
only: a change of work is named, never judged as a change of speed."""

from __future__ import annotations

import copy
import dataclasses

from conftest import run_cli
from factories import result

from harness import results, workload
from harness.gate import ci, verdicts
from harness.scenario import Cell

BASE = [100.0, 103.0, 97.0, 101.0, 99.0]


def recorded(doc: dict, **parts) -> dict:
    """``doc`` with a workload record as the worker writes it, parts overridden."""
    doc = copy.deepcopy(doc)
    model = {"params": 101770, "layers": "Flatten, Dense(100480), Dense(1290)",
             "architecture": "b69f207c35b96d2e"}  # fmt: skip
    data = {"dataset": "synthetic", "train_samples": 1000, "x_dtype": "uint8"}
    backend = {"jit_compile": True, "dtype_policy": "float32"}
    given = {"model": model, "data": data, "backend": backend, **parts}
    doc["workload"] = workload.record(doc["cell"], **given)
    return doc


def test_every_cell_setting_is_work_method_or_neither_once():
    fields = [f.name for f in dataclasses.fields(Cell)]
    placed = [*workload.WORK_FIELDS, *workload.METHOD_FIELDS, *workload.NEITHER_FIELDS]
    assert sorted(placed) == sorted(fields)  # each once: a new key must be placed
    assert "step_delay_ms" not in workload.WORK_FIELDS + workload.METHOD_FIELDS


def test_differences_name_what_changed():
    base = recorded(result("jax", BASE))
    assert workload.differences(base, copy.deepcopy(base)) == []
    bigger = copy.deepcopy(base)
    bigger["cell"]["batch_size"] = 64
    bigger = recorded(bigger, model={"params": 203530, "layers": "x", "architecture": "ff"})
    assert workload.differences(base, bigger) == [
        "batch_size: 32 -> 64",
        "model.architecture: b69f207c35b96d2e -> ff",
        "model.layers: Flatten, Dense(100480), Dense(1290) -> x",
        "model.params: 101770 -> 203530",
    ]
    # an older result (no record) is compared on the settings its cell holds
    older = result("jax", BASE)
    assert "workload" not in older
    assert workload.differences(older, base) == []
    assert workload.differences(older, bigger) == ["batch_size: 32 -> 64"]
    # what is not work is not a difference: the injected slowdown, a host's paths, limits
    same = copy.deepcopy(base)
    same["cell"].update(step_delay_ms=3, time_limit=10, data_path="/x", sample_interval=0.1)
    assert workload.differences(base, recorded(same)) == []
    assert workload.differences(base, recorded(same, backend={"jit_compile": False})) == [
        "backend.jit_compile: True -> False",  # dtype_policy: not recorded there
    ]
    # the same values, but one side records more: not taken for the same work
    more = recorded(same, backend={"jit_compile": True, "dtype_policy": "float32", "x": 1})
    assert workload.differences(base, more) == [
        f"workload recorded differently: id {base['workload']['id']} -> "
        f"{more['workload']['id']} (recorded on one side only: backend.x)"
    ]
    # how it was measured is apart
    method = copy.deepcopy(base)
    method["cell"]["repeats"] = 5
    assert workload.differences(base, recorded(method)) == []
    assert workload.method_differences(base, recorded(method)) == ["repeats: 3 -> 5"]


def test_check_names_a_workload_change_and_judges_it_only_when_allowed():
    base = result("jax", BASE)
    cur = result("jax", [x * 0.8 for x in BASE], run_id="new")
    cur["cell"]["batch_size"] = 64
    (v,), refusals = verdicts.check([cur], [base])
    assert refusals == []
    assert (v.status, v.why, v.ratio) == ("workload changed", "batch_size: 32 -> 64", None)
    assert not verdicts.gate_fails([v])  # not a verdict on speed: the CLI refuses (exit 2)
    (v,), _ = verdicts.check([cur], [base], allow_workload_change=True)
    assert v.status == "regressed"
    assert v.why.endswith("; workload changed (judged as asked): batch_size: 32 -> 64")
    # a change of method is judged, and named
    cur = result("jax", [x * 0.8 for x in BASE], run_id="new")
    cur["cell"]["repeats"] = 5
    (v,), _ = verdicts.check([cur], [base])
    assert v.status == "regressed" and v.why.endswith("; measured otherwise: repeats: 3 -> 5")
    # JUnit: an errored testcase of its own
    xml = ci.junit_xml(
        [verdicts.Verdict("s/c--jax", "workload changed", why="batch_size: 32 -> 64")], "t"
    )
    assert (
        'errors="1"' in xml and '<error message="workload changed: batch_size: 32 -&gt; 64"' in xml
    )


def test_check_cli_exits_2_on_a_workload_change_unless_allowed(tmp_path):
    base, cur = tmp_path / "base", tmp_path / "cur"
    results.write_json_atomic(base / "s" / "c.json", result("jax", BASE))
    doc = result("jax", [x * 0.8 for x in BASE], run_id="new")
    doc["cell"]["model"] = "my_models:build"
    results.write_json_atomic(cur / "s" / "c.json", doc)
    junit = tmp_path / "j.xml"
    proc = run_cli("check", str(cur), "--baseline", str(base), "--junit", str(junit))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "sweep/bs32--jax  WORKLOAD CHANGED" in proc.stdout
    assert "model: mlp -> my_models:build" in proc.stdout
    assert (
        "harness: sweep/bs32--jax: workload changed (model: mlp -> my_models:build): not "
        "judged; a change of work is not a change of speed (--allow-workload-change judges it "
        "anyway)"
    ) in proc.stderr
    assert 'type="workload changed"' in junit.read_text()
    proc = run_cli("check", str(cur), "--baseline", str(base), "--allow-workload-change")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "REGRESSED" in proc.stdout and "workload changed (judged as asked)" in proc.stdout


def test_check_fail_on_skip(tmp_path):
    base, cur = tmp_path / "base", tmp_path / "cur"
    results.write_json_atomic(base / "s" / "c.json", result("jax", BASE))
    results.write_json_atomic(cur / "s" / "c.json", result("jax", BASE, run_id="new"))
    skipped = result("jax", BASE, run_id="new", cell_id="gpu", status="skipped", reason="no GPU")
    results.write_json_atomic(cur / "s" / "gpu.json", skipped)
    results.write_json_atomic(base / "s" / "gpu.json", skipped | {"run_id": "run-a"})
    proc = run_cli("check", str(cur), "--baseline", str(base))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    junit = tmp_path / "j.xml"
    proc = run_cli(
        "check", str(cur), "--baseline", str(base), "--fail-on-skip", "--junit", str(junit)
    )
    assert proc.returncode == 1
    assert "--fail-on-skip: sweep/gpu--jax skipped: no GPU" in proc.stderr
    assert 'failures="1"' in junit.read_text()  # the file agrees with the exit code
    assert "did not run (--fail-on-skip)" in junit.read_text()
    # every cell skipped on both sides: nothing compared, and still a failure naming them
    (cur / "s" / "c.json").unlink()
    (base / "s" / "c.json").unlink()
    proc = run_cli("check", str(cur), "--baseline", str(base))
    assert proc.returncode == 2 and "no cell is present" in proc.stderr
    proc = run_cli(
        "check", str(cur), "--baseline", str(base), "--fail-on-skip", "--junit", str(junit)
    )
    assert proc.returncode == 1, proc.stderr
    assert "--fail-on-skip: sweep/gpu--jax skipped: no GPU" in proc.stderr
    assert 'failures="1"' in junit.read_text()


def _side(name, values, **cell):
    docs = []
    for k, x in enumerate(values, 1):
        d = result("jax", [x], run_id=f"round-{k:02d}")
        d["cell"].update(cell)
        d["ab"] = {"id": "ab-1", "side": name, "round": k}
        docs.append(d)
    return docs


def test_ab_judges_its_sides_differences_but_not_a_side_that_mixes_work():
    base = _side("baseline", BASE)
    cand = _side("candidate", [x * 0.8 for x in BASE], batch_size=64)
    (v,), _ = verdicts.check(cand, base, sides_may_differ=True)
    assert v.status == "regressed"
    assert v.why.endswith("workload changed (judged as asked): batch_size: 32 -> 64")
    # a job resumed after its code changed: its rounds did two kinds of work
    cand[2]["cell"]["batch_size"] = 32
    (v,), _ = verdicts.check(cand, base, sides_may_differ=True)
    assert v.status == "workload changed"
    assert v.why.startswith("runs of one side did other work (a job resumed after a change")
    # so does a stored baseline whose runs did other work than each other
    runs = [result("jax", BASE, run_id="b1"), result("jax", BASE, run_id="b2")]
    runs[1]["cell"]["seed"] = 1
    (v,), _ = verdicts.check([result("jax", BASE, run_id="new")], runs)
    assert (v.status, v.why) == (
        "workload changed",
        "runs of one side did other work (a job resumed after a change, or a baseline stored "
        "across one): seed: 0 -> 1",
    )
    (v,), _ = verdicts.check([result("jax", BASE, run_id="new")], runs, allow_workload_change=True)
    assert v.status == "unchanged" and "seed: 0 -> 1" in v.why
