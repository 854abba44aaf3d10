"""Writes the result files under tests/golden/results/ that tests/test_golden_reports.py
renders: run once, on the code of the day, and committed. The committed files are the fixture
(the same result files before and after a change of the code); this script only says how they
were made, and is run again only to add to them: ``python tests/golden/make_results.py``.

Every number comes from a seeded generator and every date is written out, so the files do not
depend on the day or the machine they were made on.
"""

from __future__ import annotations

import json
import random
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent.parent)]

from factories import result  # noqa: E402

from harness import results, workload  # noqa: E402
from harness.gate import stats  # noqa: E402

OUT = HERE / "results"


def noisy(n: int, seed: int, level: float, cv: float = 0.01) -> list[float]:
    rng = random.Random(seed)
    return [round(level * (1 + rng.gauss(0, cv)), 1) for _ in range(n)]


def write(path: Path, doc: dict) -> None:
    results.write_json_atomic(OUT / path, doc)


def recorded(doc: dict) -> dict:
    """The result with its workload recorded, as the harness has written it since it could."""
    doc["workload"] = workload.record(
        doc["cell"],
        model={"params": 101770, "architecture": "a1b2c3d4"},
        data={"train": [1000, 28, 28], "test": [100, 28, 28]},
        backend=doc.get("backend_settings") or {},
    )
    return doc


def compare_results() -> None:
    """What `harness compare` draws: a sweep of three backends with every status, a noisy cell,
    a reload mismatch, a partial FLOP count, utilization samples (one with a GPU), step times,
    backend settings (one not recorded, one with tf.data's threads), a scaling scenario run in
    shard 1 of 2, an older run (for --all), and portability checks."""
    levels = {"tensorflow": 10000.0, "jax": 62000.0, "torch": 9000.0}
    for k, (backend, level) in enumerate(levels.items()):
        for j, bs in enumerate((32, 512)):
            cv = 0.2 if (backend, bs) == ("tensorflow", 32) else 0.02
            d = result(backend, noisy(5, 10 * k + j, level * bs / 32, cv), cell_id=f"bs{bs}")
            d["cell"]["batch_size"] = bs
            d["train"]["step_time_ms"] = {"p50": 1.0 + k, "p90": 1.5 + k, "p99": 2.0 + k}
            d["monitor"]["samples"] = [
                {"t": 0.0, "phase": "warmup", "cpu": 40.0, "gpus": []},
                {"t": 1.0, "phase": "fit", "cpu": 95.0, "gpus": []},
                {"t": 2.5, "phase": "fit", "cpu": 99.0, "gpus": []},
                {"t": 3.0, "phase": "evaluate", "cpu": 60.0, "gpus": []},
                {"t": 4.0, "phase": "predict", "cpu": 50.0, "gpus": []},
            ]
            if backend == "torch" and bs == 512:
                d["save"]["h5"] = {"predictions_match": False, "max_abs_diff": 0.3}
                d["efficiency"] = {"fraction_of_probe": 0.25, "partial": True}
            if backend == "tensorflow":
                d["backend_settings"]["tf_data_threads"] = 0 if bs == 32 else 4
            write(f"compare/run-a/sweep/bs{bs}--{backend}.json", recorded(d))
    gpu = result("jax", [1.0], cell_id="gpu", status="skipped", reason="gpu requested but jax sees no GPU")  # fmt: skip
    write("compare/run-a/sweep/gpu--jax.json", gpu)
    long_reason = (
        "jit_compile = true under torch needs torch.compile, which this torch build lacks "
        "(torch._dynamo is not available on this platform); set jit_compile = false"
    )
    unsupported = result("torch", [1.0], cell_id="gpu", status="unsupported", reason=long_reason)
    write("compare/run-a/sweep/gpu--torch.json", unsupported)
    failed = result(
        "tensorflow", [1.0], cell_id="gpu", status="failed", reason="worker exited with signal 9"
    )
    write("compare/run-a/sweep/gpu--tensorflow.json", failed)
    # the older run of one cell: the report shows the newest unless --all
    old = result("jax", noisy(5, 99, 55000.0), started="2026-11-20T00:00:00Z", run_id="run-old")
    write("compare/run-old/sweep/bs32--jax.json", old)
    # a scaling scenario, run as shard 1/2, one backend on a GPU machine
    for backend, level in (("jax", 60000.0), ("torch", 8000.0)):
        for devices, procs in ((1, 1), (2, 1), (2, 2)):
            cid = f"dp{devices}" + (f"x{procs}" if procs > 1 else "")
            failed = backend == "torch" and procs == 2
            d = result(
                backend, noisy(3, devices + procs, level * (0.8 * devices if devices > 1 else 1)),
                scenario="scale", cell_id=cid, run_id="run-s",
                status="failed" if failed else "ok",
                reason="process 1 of 2 exited with code 1" if failed else None,
            )  # fmt: skip
            d["cell"]["data_parallel"] = devices
            d["cell"]["data_parallel_processes"] = procs
            d["scenario"]["description"] = "Data parallel across devices and processes."
            d["shard"] = "1/2"
            if devices > 1 and not failed:
                d["distribution"] = {"engine": "DataParallel", "processes_elsewhere": []}
            if backend == "torch" and not failed:
                d["environment"]["gpu"] = {"driver": "570.1", "gpus": [{"name": "NVIDIA H200"}]}
                d["device"]["variables_on"] = "cuda:0"
                d["backend_settings"] = {"error": "RuntimeError: no NVML"}
                d["monitor"]["samples"] = [
                    {"t": 0.0, "phase": "warmup", "cpu": 30.0, "gpus": [{"sm": 10.0}]},
                    {"t": 2.0, "phase": "fit", "cpu": 50.0, "gpus": [{"sm": 90.0}]},
                    {"t": 3.0, "phase": "evaluate", "cpu": 40.0, "gpus": [{"sm": None}]},
                ]
                d["monitor"]["phases"]["fit"]["gpu_sm"] = {"mean": 85.0, "peak": 95.0}
            write(f"compare/run-s/scale/{cid}--{backend}.json", d)
    checks = [
        ("tensorflow", "jax", "ok", 3e-7, "c1", None),
        ("tensorflow", "jax", "ok", 5e-7, "c2", None),
        ("jax", "torch", "failed", None, "c1", "load failed: ValueError: x. The config was ..."),
        ("torch", "jax", "not checked", None, "c1", "needs --trust-code"),
        ("torch", "tensorflow", "ok", 1e-6, "c1", None),
    ]
    for i, (src, dst, status, diff, cell, reason) in enumerate(checks):
        doc = {
            "schema": results.PORTABILITY_SCHEMA, "scenario": "s", "cell": cell,
            "source_backend": src, "target_backend": dst, "status": status,
            "max_abs_diff": diff, "reason": reason, "checked": "2026-11-27T00:00:00Z",
        }  # fmt: skip
        if status == "failed":
            doc["compile_false"] = {"status": "ok", "max_abs_diff": 1e-7}
        write(f"compare/portability/check-{i}.json", doc)


def history_results() -> None:
    """What `harness history` draws: a cell over 14 commits on one machine, 20% slower from
    the 7th and with another batch size from the 12th (a break, not a step), a second cell and
    a second machine without a step, and an A/B result (left out)."""
    for machine, runs, step_at in (("Test CPU", 14, 6), ("Other CPU", 8, 99)):
        for i in range(runs):
            for cell, level in (("bs32", 1000.0), ("bs64", 1800.0)):
                if machine == "Other CPU" and cell == "bs64":
                    continue
                scale = 0.8 if i >= step_at else 1.0
                d = result("jax", [v * scale for v in noisy(5, i, level)], cell_id=cell, run_id=f"run{i:02d}")  # fmt: skip
                if machine == "Test CPU" and i >= 11 and cell == "bs32":
                    d["cell"]["batch_size"] = 48
                d["environment"]["cpu_model"] = machine
                d["environment"]["git"] = {
                    "commit": f"c{i:04d}" + "ab" * 18,
                    "dirty": False,
                    "date": f"2026-10-{i + 1:02d}T12:00:00+00:00",
                }
                d["started"] = f"2026-10-{i + 1:02d}T13:00:00Z"
                folder = f"run{i:02d}-{machine.replace(' ', '')}"
                write(f"history/{folder}/sweep/{cell}--jax.json", recorded(d))
    ab = result("jax", [5000.0], run_id="ab-run")
    ab["ab"] = {"id": "ab-1", "side": "candidate", "round": 1}
    write("history/ab-1/candidate/sweep/bs32--jax.json", ab)


BASE_CELLS = {
    ("bs32", "jax"): 1000.0,
    ("bs32", "torch"): 900.0,
    ("bs64", "jax"): 1500.0,
    ("bs64", "torch"): 1400.0,
    ("bs128", "jax"): 2000.0,
    ("bs128", "torch"): 1900.0,
}


def gate_results() -> None:
    """What `harness check` judges: a baseline of three runs, and current runs whose cells give
    every verdict (regressed, improved, unchanged, noisy, lost, missing, not compared, workload
    changed), a machine that differs, and an interleaved A/B pair too noisy to judge."""
    for r in range(3):
        for n, ((cell, backend), level) in enumerate(BASE_CELLS.items()):
            d = result(backend, noisy(5, 100 * r + n, level), cell_id=cell, run_id=f"b{r}")
            write(f"gate/baseline/b{r}/sweep/{cell}--{backend}.json", recorded(d))
        skipped = result("jax", [1.0], cell_id="gpu", status="skipped", reason="no GPU", run_id=f"b{r}")  # fmt: skip
        write(f"gate/baseline/b{r}/sweep/gpu--jax.json", skipped)
        oom = result("tensorflow", [1.0], cell_id="bs16", status="failed", reason="out of memory", run_id=f"b{r}")  # fmt: skip
        write(f"gate/baseline/b{r}/sweep/bs16--tensorflow.json", oom)
    factors = {
        ("bs32", "jax"): (0.8, 0.01),  # regressed
        ("bs32", "torch"): (1.2, 0.01),  # improved
        ("bs64", "jax"): (1.0, 0.01),  # unchanged (measured with more repeats: a note)
        ("bs64", "torch"): (0.93, 0.0),  # noisy
    }
    cur = "gate/current/new/sweep"
    for n, ((cell, backend), (factor, cv)) in enumerate(factors.items()):
        level = BASE_CELLS[(cell, backend)] * factor
        values = noisy(5, 1000 + n, level, cv)
        if (cell, backend) == ("bs64", "torch"):  # two of five above every baseline value
            values = [1500.0, 1200.0, 1300.0, 1250.0, 1450.0]
        d = result(backend, values, cell_id=cell, run_id="new")
        if (cell, backend) == ("bs64", "jax"):
            d["cell"]["repeats"] = 5
        write(f"{cur}/{cell}--{backend}.json", recorded(d))
    lost = result("jax", [1.0], cell_id="bs128", status="failed", reason="NaN loss at epoch 2", run_id="new")  # fmt: skip
    write(f"{cur}/bs128--jax.json", lost)  # bs128--torch is not run: missing
    write(f"{cur}/gpu--jax.json", result("jax", [1.0], cell_id="gpu", status="skipped", reason="no GPU", run_id="new"))  # fmt: skip
    oom = result("tensorflow", [1.0], cell_id="bs16", status="failed", reason="out of memory", run_id="new")  # fmt: skip
    write(f"{cur}/bs16--tensorflow.json", oom)
    write(f"{cur}/bs256--jax.json", recorded(result("jax", noisy(5, 7, 3000.0), cell_id="bs256", run_id="new")))  # fmt: skip
    manifest = OUT / "gate/current/new/run.json"
    manifest.write_text(json.dumps({"cells": ["sweep/bs32--jax", "sweep/bs512--jax"]}) + "\n")
    # another batch size than the baseline's: its workload changed
    changed = "gate/changed/new2/sweep"
    for n, ((cell, backend), level) in enumerate(list(BASE_CELLS.items())[:3]):
        d = result(backend, noisy(5, 2000 + n, level), cell_id=cell, run_id="new2")
        if n == 0:
            d["cell"]["batch_size"] = 64
        write(f"{changed}/{cell}--{backend}.json", recorded(d))
    # another machine
    d = result("jax", noisy(5, 3000, 1000.0), cell_id="bs32", run_id="new3")
    d["environment"]["cpu_model"] = "Other CPU"
    write("gate/other-machine/new3/sweep/bs32--jax.json", recorded(d))
    # an interleaved A/B job, its sides too spread to judge a 10% slowdown
    base, cand = [100.0, 130.0, 80.0, 110.0], [117.0, 72.0, 90.0, 99.0]
    for side, values in (("baseline", base), ("candidate", cand)):
        for k, x in enumerate(values, 1):
            d = result("jax", [x, x * 1.01, x * 0.99], run_id=f"round-{k:02d}")
            d["ab"] = {"id": "ab-1", "side": side, "round": k}
            d["train"]["typical_samples_per_sec"] = stats.summarize([x * 1.1, x * 1.12])
            write(f"gate/ab/{side}/round-{k:02d}/sweep/bs32--jax.json", recorded(d))


if __name__ == "__main__":
    shutil.rmtree(OUT, ignore_errors=True)
    compare_results()
    history_results()
    gate_results()
    print(f"wrote {sum(1 for _ in OUT.rglob('*.json'))} files under {OUT}")
