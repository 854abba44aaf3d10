"""Data parallel on Keras' own engines: scenario checks, the devices each process is given,
and real cells: DataParallel (jax) and MirroredStrategy (tensorflow) on simulated CPU devices,
torch unsupported with Keras' reason, and a cell of two jax processes (ok, joined from
"another host"; and killed)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from conftest import ROOT, cli_env, run_cli

from harness import backends, results, scenario
from harness.devices import DeviceUnavailable, device_env
from harness.orchestrate.processes import free_port

# --- scenario checks and device environments (no backend) --------------------------------------


def _load(tmp_path: Path, text: str) -> scenario.Scenario:
    path = tmp_path / "dp.toml"
    path.write_text(text)
    return scenario.load(path)


def test_shipped_data_parallel_scenarios():
    sc = scenario.load(ROOT / "scenarios" / "data-parallel.toml")
    assert [(c.batch_size, c.data_parallel) for c in sc.cells] == [
        (256, 1), (256, 2), (1024, 1), (1024, 2),
    ]  # fmt: skip
    assert [c.id for c in sc.cells] == ["bs256-dp1", "bs256-dp2", "bs1024-dp1", "bs1024-dp2"]
    assert all(c.dataset == "synthetic" for c in sc.cells)
    mp = scenario.load(ROOT / "scenarios" / "multi-process.toml")
    assert [(c.data_parallel, c.data_parallel_processes) for c in mp.cells] == [(2, 1), (2, 2)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("batch_size = 30\ndata_parallel = 4", "key 'batch_size': 30 does not split evenly across 4 devices"),
        ("batch_size = 32\ntrain_samples = 1001\ndata_parallel = 2",
         "key 'train_samples': the last batch of 1001 samples (9) does not split evenly across 2 devices"),
        ("data_parallel = 3\ndata_parallel_processes = 2",
         "key 'data_parallel': 3 devices do not split evenly across 2 processes"),
        ("data_parallel_processes = 2", "key 'data_parallel': 1 devices do not split evenly"),
        ("batch_size = 32\ntrain_samples = 1025\ntest_samples = 64\ndata_parallel = 2\n"
         "data_parallel_processes = 2",
         "key 'train_samples': 1025 samples do not split evenly across 2 processes"),
        ('device = "gpu:1"\ndata_parallel = 2', 'takes the first 2 GPUs: use device = "gpu"'),
    ],
)  # fmt: skip
def test_uneven_data_parallel_is_one_line_naming_the_key(tmp_path, text, message):
    with pytest.raises(scenario.ScenarioError) as err:
        _load(tmp_path, f"[defaults]\n{text}\n")
    assert message in str(err.value) and "\n" not in str(err.value)
    assert str(err.value).startswith(str(tmp_path / "dp.toml"))


def test_device_env_gives_each_process_its_devices(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_enable_fast_math=false")
    env = device_env("cpu", "jax", devices=2)
    # the runner's own flags kept, the device count last (the last one counts)
    assert env["XLA_FLAGS"] == (
        "--xla_cpu_enable_fast_math=false --xla_force_host_platform_device_count=2"
    )
    assert "XLA_FLAGS" not in device_env("cpu", "tensorflow", devices=2)  # made in the worker
    assert "XLA_FLAGS" not in device_env("cpu", "jax")
    assert device_env("gpu", "jax", visible="4,5,6,7", devices=2)["CUDA_VISIBLE_DEVICES"] == "4,5"
    second = device_env("gpu", "jax", visible="4,5,6,7", devices=2, process=1)
    assert second["CUDA_VISIBLE_DEVICES"] == "6,7"
    with pytest.raises(DeviceUnavailable, match="the runner was given 3 GPUs"):
        device_env("gpu", "torch", visible="0,1,2", devices=2, process=1)


# --- real cells ------------------------------------------------------------------------------

SMALL = (
    '[defaults]\ndataset = "synthetic"\ntrain_samples = 1024\ntest_samples = 512\n'
    "batch_size = 256\nrepeats = 2\nmin_time = 0\nwarmup_steps = 2\n"
)


@pytest.mark.backend
def test_data_parallel_cells_on_keras_engines(backend, tmp_path):
    """The shipped scenario's axis, small: one device against two simulated CPU devices."""
    sc = tmp_path / "data-parallel.toml"
    sc.write_text(SMALL + "[matrix]\ndata_parallel = [1, 2]\n")
    out = tmp_path / "r"
    proc = run_cli("run", str(sc), "--backend", backend, "--out", str(out))
    docs = {d["cell"]["id"]: d for d in results.load_results([out])[0]}
    assert docs["dp1"]["status"] == "ok", docs["dp1"].get("reason")
    two = docs["dp2"]
    if backend == "torch":  # keras 3.15.1: keras.distribution has no torch support
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert two["status"] == "unsupported"
        assert two["reason"].startswith("keras 3.15.1 has no keras.distribution support for torch")
        assert "| dp2 | torch | 2 | unsupported: keras 3.15.1 has no keras.distribution" in (
            proc.stdout
        )
        return
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert two["status"] == "ok", two.get("reason")
    engine = {
        "jax": "keras.distribution.DataParallel",
        "tensorflow": "tf.distribute.MirroredStrategy",
    }
    dist = two["distribution"]
    assert dist["engine"] == engine[backend]
    assert (dist["devices"], dist["global_batch"], dist["per_device_batch"]) == (2, 256, 128)
    assert two["device"]["replicas_on"] == ["cpu:0", "cpu:1"]  # a replica on each device
    assert two["backend_settings"]["jit_compile"] in (True, False)  # what really ran
    assert two["save"]["keras"]["predictions_match"]
    # the scaling row: dp2 against dp1 of the same cell
    sps = [docs[c]["train"]["samples_per_sec"]["median"] for c in ("dp1", "dp2")]
    eff = f"{sps[1] / (2 * sps[0]):.0%}"
    assert f"| dp2 | {backend} | 2 | {engine[backend]} | {sps[1]:,.0f} | {sps[0]:,.0f} | " in (
        proc.stdout
    )
    assert eff in proc.stdout and "Scaling across devices:" in proc.stdout


# Several processes are jax's only (keras.distribution.initialize): tested once, in tox's
# test-jax, or by hand without KERAS_BACKEND. (`tox -m test -p auto` runs test-jax beside
# test-tf then test-torch on a 2-core runner: test-jax has room for them.)
_WANTED = os.environ.get("KERAS_BACKEND")
MULTI = pytest.mark.skipif(
    "jax" not in backends.installed_backends() or _WANTED not in (None, "jax"),
    reason="two-process jax cells run once: in tox's test-jax",
)
TWO = SMALL + 'data_parallel = 2\ndata_parallel_processes = 2\nbackends = ["jax"]\n'


@pytest.mark.backend
@MULTI
def test_a_second_host_joins_with_worker_join(tmp_path):
    """A cell of two jax processes on CPU: `harness run --coordinator` starts process 0,
    `harness worker-join` on "another host" (here, loopback) runs process 1 of the same cell.
    (The runner starting both itself is the kill test's, and the stub's in
    test_runner_faults.py.)"""
    sc = tmp_path / "mp.toml"
    # min_time: the first fit is short; both processes must choose the same epochs
    sc.write_text(TWO.replace("min_time = 0", "min_time = 0.3"))
    address = f"127.0.0.1:{free_port()}"
    first = subprocess.Popen(
        [sys.executable, "-m", "harness", "run", str(sc), "--backend", "jax",
         "--out", str(tmp_path / "a"), "--coordinator", address],
        cwd=ROOT, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    join = run_cli("worker-join", str(sc), "--backend", "jax", "--out", str(tmp_path / "b"),
                   "--coordinator", address, "--process-id", "1")  # fmt: skip
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err[-3000:]
    assert join.returncode == 0, join.stderr[-3000:]
    (doc,) = results.load_results([tmp_path / "a"])[0]
    assert doc["status"] == "ok", doc.get("reason")
    dist = doc["distribution"]
    assert (dist["processes"], dist["devices"], len(dist["device_list"])) == (2, 2, 2)
    assert dist["processes_elsewhere"] == [1]
    assert [(v["process_id"], v["status"]) for v in dist["process_results"]] == [(0, "ok")]
    assert dist["process_results"][0]["fit_utilization"]["n"] > 0
    (joined,) = (tmp_path / "b").glob("join-*/logs/*.process1.json")
    other = json.loads(joined.read_text())
    assert other["status"] == "ok" and other["distribution"]["process_id"] == 1
    # one job: both processes saw the same global losses, over the same epochs (process 0's
    # clock chose them for both)
    assert other["train"]["history"] == doc["train"]["history"]
    assert other["train"]["calibration"] == doc["train"]["calibration"] != []
    assert doc["phases_skipped"] == ["predict", "efficiency", "save"]
    assert doc["evaluate"]["accuracy"] >= 0
    assert results.load_results([tmp_path / "b"]) == ([], [])  # no result of its own to report
    bad = run_cli("worker-join", str(sc), "--backend", "jax", "--coordinator", address,
                  "--process-id", "2", "--out", str(tmp_path / "c"))  # fmt: skip
    assert bad.returncode == 2 and "--process-id 2: mp/default has 2 processes" in bad.stderr
    assert not (tmp_path / "c").exists()


@pytest.mark.backend
@MULTI
def test_killing_one_jax_process_fails_the_cell_and_leaves_none(tmp_path):
    sc = tmp_path / "mp.toml"
    sc.write_text(TWO.replace("min_time = 0", "min_time = 600"))
    out = tmp_path / "r"
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "run", str(sc), "--backend", "jax", "--out", str(out)],
        cwd=ROOT, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 180
    while not list(out.glob("*/logs/*.process1.json")):  # process 1 is past jax.distributed
        assert time.monotonic() < deadline and proc.poll() is None, "process 1 never started"
        time.sleep(0.2)
    workers = [p for p in psutil.Process(proc.pid).children() if "harness.worker" in p.cmdline()]
    (victim,) = [p for p in workers if any("process1" in a for a in p.cmdline())]
    victim.send_signal(signal.SIGKILL)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err[-3000:]
    (doc,) = results.load_results([out])[0]
    assert doc["status"] == "failed"
    assert doc["reason"].startswith("process 1 of 2 was killed by SIGKILL; the others were stopped")
    assert psutil.wait_procs(workers, timeout=5)[1] == []  # no process left behind
    left = [
        p for p in psutil.process_iter(["cmdline"]) if str(out) in " ".join(p.info["cmdline"] or [])
    ]
    assert left == []


def test_gate_fingerprint_tells_topologies_apart():
    from harness.gate.verdicts import fingerprint

    one = {"environment": {"cpu_model": "X"}, "cell": {"data_parallel": 1}}
    assert "data_parallel" not in fingerprint(one)  # as it always was
    two = {"environment": {"cpu_model": "X"}, "cell": {"data_parallel": 2}}
    joined = {**two, "cell": {"data_parallel": 2, "data_parallel_processes": 2},
              "distribution": {"processes_elsewhere": [1]}}  # fmt: skip
    fps = [fingerprint(d) for d in (one, two, joined)]
    assert fps[0] != fps[1] != fps[2] != fps[0]
    assert fps[2]["data_parallel"] == {"devices": 2, "processes": 2, "processes_elsewhere": 1}


def test_gate_names_a_topology_change_and_baselines_keep_a_run_together(tmp_path):
    """A cell data-parallel on one side only is refused by name (it used to crash), and a
    run's data-parallel cells are stored in the same baseline folder as its others."""

    from factories import result

    from harness.gate import baseline, verdicts

    base = result("jax", [1000.0, 1010.0, 990.0], run_id="base")
    cur = result("jax", [1000.0, 1010.0, 990.0], run_id="cur")
    cur["cell"]["data_parallel"] = 2  # set in [defaults]: the cell id is the same
    _, refusals = verdicts.check([cur], [base])
    (refusal,) = refusals
    assert "different machine or versions (data_parallel: None -> {'devices': 2" in refusal
    # `harness baseline`: one run, one machine folder, whatever its cells' topology
    run = tmp_path / "run"
    for name, doc in (("one", base), ("two", cur)):
        doc = json.loads(json.dumps(doc))
        doc["cell"]["id"] = name
        doc["run_id"] = "run"
        results.write_json_atomic(run / "sweep" / f"{name}--jax.json", doc)
    kwargs = dict(run=run, into=tmp_path / "b", add=False, replace=False)
    assert baseline.main(**kwargs) == 0
    (machine,) = (tmp_path / "b").iterdir()
    assert sorted(f.name for f in machine.rglob("*.json")) == ["one--jax.json", "two--jax.json"]
