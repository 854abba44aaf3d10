"""The read-only view of a result document (results.Result): each field the reports and the
gate read, read from where the result file holds it."""

from __future__ import annotations

import pytest
from factories import result

from harness import results
from harness.results import RATE_FIELDS, Rate, Result, Status


def test_the_view_reads_what_the_file_holds():
    doc = result("jax", [100.0, 110.0, 90.0], cell_id="bs64", run_id="r1")
    doc["ab"] = {"id": "ab-1", "side": "candidate", "round": 2}
    doc["train"]["typical_samples_per_sec"] = {"median": 120.0, "values": [120.0]}
    doc["workload"] = {"id": "abc", "parts": {}, "method": {}}
    doc["_path"] = "r1/sweep/bs64--jax.json"
    doc["shard"] = "1/2"
    r = Result(doc)
    assert (r.status, r.ok, r.not_run, r.reason) == ("ok", True, False, None)
    assert r.key == ("sweep", "bs64", "jax") == results.result_key(doc)
    assert r.name == "sweep/bs64--jax" == results.cell_key(doc)
    assert (r.run_id, r.started, r.path, r.shard) == (
        "r1", "2026-11-27T00:00:00Z", "r1/sweep/bs64--jax.json", "1/2",
    )  # fmt: skip
    assert (r.ab_id, r.ab_side) == ("ab-1", "candidate")
    assert (r.devices, r.processes, r.variables_on) == (1, 1, "cpu")
    assert r.environment["cpu_model"] == "Test CPU" and r.git == {}
    assert r.backend_settings["dtype_policy"] == "float32"
    assert r.workload_id == "abc"
    tp = r.throughput
    assert (tp.median, tp.min, tp.max, tp.values) == (100.0, 90.0, 110.0, [100.0, 110.0, 90.0])
    assert tp.mad == 10.0 and tp.cv == pytest.approx(0.1) and tp.noisy is False
    assert r.typical == Rate({"median": 120.0, "values": [120.0]})
    assert [r.rate(f).median for f in RATE_FIELDS] == [100.0, 120.0]


def test_the_view_of_a_result_that_did_not_run():
    doc = result("torch", [1.0], status=Status.SKIPPED, reason="no GPU")
    r = Result(doc)
    assert (r.ok, r.not_run, r.reason) == (False, True, "no GPU")
    assert r.throughput is None and r.typical is None and r.train == {}
    assert r.ab == {} and r.ab_id is None and r.workload_id is None and r.path is None
    # a rate recorded without its values (an older harness) has none to rank
    assert Rate({"median": 5.0}).values == [] and Rate({"median": 5.0}).noisy is False
