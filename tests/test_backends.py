"""Real runs of every backend on tiny scenarios, through the CLI, as a user would run them.

Each test starts the harness in a fresh process, which starts one worker per cell: fit,
evaluate, save (.keras and .h5), reload and predict all really happen.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import ROOT, SELECTED, run_cli
from factories import write_mnist_npz

from harness import backends, monitor, results

pytestmark = pytest.mark.backend


# A GPU UUID that no machine has.
NO_SUCH_GPU = "GPU-00000000-0000-4000-8000-000000000000"


def results_of(out: Path) -> dict[str, dict]:
    docs = {}
    # As the reports find them: the task files beside the logs are no results.
    for f in results.iter_result_files([out]):
        doc = json.loads(f.read_text())
        docs[f"{doc['scenario']['name']}/{doc['cell']['id']}"] = doc
    return docs


def test_smoke_end_to_end(backend, tmp_path):
    proc = run_cli("run", "scenarios/smoke.toml", "--backend", backend, "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    (doc,) = results_of(tmp_path).values()
    assert doc["status"] == "ok", doc.get("reason")
    assert doc["backend"] == backend
    assert doc["schema_version"] == 1
    cell = doc["cell"]
    train = doc["train"]
    # Throughput: a median and one value per repeat, all positive.
    assert len(train["samples_per_sec"]["values"]) == cell["repeats"] == 2
    assert train["samples_per_sec"]["median"] > 0
    assert len(train["ms_per_step"]["values"]) == 2
    # Per repeat, batch size / the median chunk's step time: same unit, same ballpark.
    typical = train["typical_samples_per_sec"]["values"]
    assert len(typical) == 2
    throughput = train["samples_per_sec"]["values"]
    assert all(0.2 < t / s < 5 for t, s in zip(typical, throughput, strict=True))
    assert len(train["warmup"]["seconds"]["values"]) == 2
    assert train["steps_per_epoch"] == 8  # 512 samples / batch 64
    assert train["flops_per_sample"] == 3 * 2 * (784 * 128 + 128 * 10)
    assert [len(h["loss"]) for h in train["history"]] == [2, 2]
    assert all(len(e) == 2 for e in train["epoch_seconds"])
    # What it computed, as the worker saw it: the gate compares only like with like.
    work = doc["workload"]
    assert isinstance(work["id"], str) and work["method"]["repeats"] == 2
    assert work["parts"]["settings"]["batch_size"] == 64
    assert work["parts"]["model"]["params"] == 101770
    assert work["parts"]["model"]["layers"] == "Flatten, Dense(100480), Dense(1290)"
    assert work["parts"]["data"]["x_shape"] == [28, 28]
    assert work["parts"]["data"]["x_dtype"] == "uint8"
    assert work["parts"]["backend"]["dtype_policy"] == "float32"
    # Every phase happened and was measured.
    assert 0 <= doc["evaluate"]["accuracy"] <= 1 and doc["evaluate"]["samples_per_sec"] > 0
    assert doc["predict"]["output_shape"] == [128, 10]
    for fmt in ("keras", "h5"):
        saved = doc["save"][fmt]
        assert saved["bytes"] > 100_000  # 101,770 float32 weights
        assert saved["predictions_match"] is True and saved["max_abs_diff"] <= 1e-6
        assert Path(saved["path"]).exists()
    assert doc["device"]["variables_on"] == "cpu"
    assert "gpu" not in doc["device"]  # a CPU cell identifies no GPU
    # What the backend really ran: Keras resolves jit_compile="auto" per backend (never XLA
    # under torch); torch says its thread pools, jax does not.
    ran = doc["backend_settings"]
    assert isinstance(ran["jit_compile"], bool) and ran["dtype_policy"] == "float32"
    assert (ran["jit_compile"], ran["matmul_precision"]) == {
        "torch": (False, "highest"),
        "jax": (True, "default (tf32 on GPU)"),
        "tensorflow": (ran["jit_compile"], "tf32"),
    }[backend]
    assert (ran["intra_op_threads"] is None) is (backend == "jax")
    # device_env turns JAX's preallocation off unless the cell turns it on.
    assert doc["device"]["jax_preallocate"] is (False if backend == "jax" else None)
    env = doc["environment"]
    assert env["keras"] == "3.15.1" and env["backend"] == backend
    assert env["backend_versions"] == backends.backend_versions(backend)
    for key in ("python", "cpu_model", "cpu_count_logical", "hostname", "utc", "git"):
        assert key in env
    assert doc["data"]["source"] == "synthetic (seed 0)" and doc["data"]["pipeline"] == "numpy"
    assert doc["monitor"]["n_samples"] >= 1 and "import" in doc["monitor"]["phases"]
    # Another process's GPU load is no part of a CPU cell: with a driver or without, no GPU
    # is sampled.
    assert doc["monitor"]["gpu_status"] == "GPU sampling off: CPU cell"
    assert doc["monitor"]["gpus"] == [] and doc["monitor"]["proc_gpu_mem_note"] is None
    # The user saw progress and a table row for the cell.
    assert f"[1/1] {backend:<10} smoke/default  ok" in proc.stderr
    smoke = proc.stdout.split("## smoke\n", 1)[1].split("\n## ")[0]
    assert f"| cell | {backend} |" in smoke and f"| default | {backend}" in smoke


def test_digits_trains_to_90_percent(backend, tmp_path):
    scenario = tmp_path / "digits90.toml"
    scenario.write_text(
        '[defaults]\ndataset = "digits"\nbatch_size = 32\noptimizer = "adam"\n'
        "epochs = 15\nrepeats = 1\nwarmup_steps = 2\nmin_time = 0\n"
    )
    proc = run_cli("run", str(scenario), "--backend", backend, "--out", str(tmp_path / "r"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    (doc,) = results_of(tmp_path / "r").values()
    assert doc["status"] == "ok", doc.get("reason")
    assert doc["data"]["dataset"] == "digits" and doc["data"]["test_samples"] == 450
    assert doc["evaluate"]["accuracy"] >= 0.90
    assert doc["predict"]["argmax_accuracy"] >= 0.90
    # evaluate's accuracy and argmax of predict agree on the same test split.
    assert doc["predict"]["argmax_accuracy"] == pytest.approx(doc["evaluate"]["accuracy"], abs=1e-6)


def test_pipelines_knobs_and_missing_gpu(backend, tmp_path):
    """Each pipeline (numpy, the default, in every other test) runs where its package is installed and is 'unsupported' (with the
    reason) where it is not; torch refuses steps_per_execution > 1; a GPU cell whose backend
    sees no GPU is skipped with the reason on a machine without an NVIDIA GPU, and fails with
    the backend's own error on a machine with one.

    The runner is given a GPU that exists on no machine (CUDA_VISIBLE_DEVICES names an
    unknown UUID): gpu is then that GPU, which no backend and no NVML finds, with a driver
    or without.
    """
    pipes = tmp_path / "pipes.toml"
    pipes.write_text(
        "[defaults]\ntrain_samples = 256\ntest_samples = 64\nbatch_size = 64\nepochs = 1\nmin_time = 0\n"
        'repeats = 1\nwarmup_steps = 1\n[matrix]\npipeline = ["pydataset", "tf.data", "torch"]\n'
    )
    knobs = tmp_path / "knobs.toml"
    knobs.write_text(
        "[defaults]\ntrain_samples = 256\ntest_samples = 64\nbatch_size = 64\nepochs = 1\nmin_time = 0\n"
        "repeats = 1\nsteps_per_execution = 2\ntf32 = false\n"
    )
    same = tmp_path / "same.toml"  # the same thread pools and matmul precision everywhere
    same.write_text(
        "[defaults]\ntrain_samples = 256\ntest_samples = 64\nbatch_size = 64\nepochs = 1\nmin_time = 0\n"
        "repeats = 1\nwarmup_steps = 1\nthreads = 3\ntf32 = true\n"
    )
    mixed = tmp_path / "mixed.toml"
    mixed.write_text(
        "[defaults]\ntrain_samples = 256\ntest_samples = 64\nbatch_size = 64\nepochs = 1\nmin_time = 0\n"
        'repeats = 1\nprecision = "mixed_bfloat16"\njit_compile = false\n'
    )
    gpu = tmp_path / "gpu.toml"
    gpu.write_text(
        '[defaults]\ntrain_samples = 256\ntest_samples = 64\ndevice = "gpu"\nrepeats = 1\nmin_time = 0\n'
    )
    out = tmp_path / "r"
    proc = run_cli(
        "run", str(pipes), str(knobs), str(same), str(mixed), str(gpu), "--backend", backend,
        "--out", str(out),
        env={"CUDA_VISIBLE_DEVICES": NO_SUCH_GPU},
    )  # fmt: skip
    # unsupported and skipped are not failures; a GPU there but unusable is one
    gpu_here, what = monitor.gpu_presence()
    assert proc.returncode == (1 if gpu_here else 0), proc.stderr[-3000:]
    docs = results_of(out)
    assert docs["pipes/pydataset"]["status"] == "ok"
    for cell, package in (("pipes/tfdata", "tensorflow"), ("pipes/torch", "torch")):
        doc = docs[cell]
        if backends.installed_version(package):
            assert doc["status"] == "ok", doc.get("reason")
            assert doc["data"]["pipeline"] == doc["cell"]["pipeline"]
        else:
            assert doc["status"] == "unsupported"
            assert (
                doc["reason"]
                == f"the {doc['cell']['pipeline']} pipeline needs the {package} package, which is not installed here"
            )
    knob = docs["knobs/default"]
    if backend == "torch":
        assert knob["status"] == "unsupported"
        assert "`steps_per_execution` must be 1 with the PyTorch backend" in knob["reason"]
    else:
        assert knob["status"] == "ok", knob.get("reason")
        assert knob["backend_settings"]["matmul_precision"] == "highest"  # tf32 = false
    same_doc = docs["same/default"]
    if backend == "jax":
        assert same_doc["status"] == "unsupported"
        assert same_doc["reason"] == (
            "threads: jax (XLA's CPU client) has no thread-count setting; it uses every core"
        )
    else:
        assert same_doc["status"] == "ok", same_doc.get("reason")
        ran = same_doc["backend_settings"]  # neither is either backend's own default
        assert (ran["intra_op_threads"], ran["inter_op_threads"]) == (3, 3)
        assert ran["matmul_precision"] == "tf32"  # torch's default is highest
    mixed_doc = docs["mixed/default"]
    assert mixed_doc["status"] == "ok", mixed_doc.get("reason")
    assert mixed_doc["efficiency"]["probe"]["dtype"] == "bfloat16"
    assert mixed_doc["save"]["keras"]["predictions_match"] is True
    gpu_doc = docs["gpu/default"]
    # gpu is the first GPU the runner was given, never one outside them.
    if gpu_here:
        assert gpu_doc["status"] == "failed" and gpu_doc["phase"] == "device"
        assert gpu_doc["reason"].startswith(
            f"GpuUnusable in device: gpu requested and {what}, but {backend} cannot use it: "
        )
    else:
        assert gpu_doc["status"] == "skipped"
        assert gpu_doc["reason"] == f"gpu requested but this machine has no NVIDIA GPU ({what})"
    identity = gpu_doc["device"]["gpu"]
    assert identity["cuda_visible_devices"] == NO_SUCH_GPU and identity["uuid"] is None
    # No GPU is sampled in its stead: the reason NVML could not find it is kept.
    assert gpu_doc["monitor"]["gpu_status"] == f"GPU sampling off: {identity['reason']}"
    gpu_part = proc.stdout.split("## gpu\n", 1)[1].split("\n## ")[0]
    status = gpu_doc["status"]
    assert f"| default | {status} |" in gpu_part  # at a glance: the backend's column says why not
    assert f"| default | {backend}" in gpu_part and f"| {status} |" in gpu_part
    if any(d["status"] == "unsupported" for d in docs.values()):
        assert "| unsupported |" in proc.stdout


def test_mnist_from_local_file_or_skipped_with_how_to(backend, tmp_path):
    """The real MNIST path: a local mnist.npz (here MNIST-shaped data in keras' layout) is used
    and named in the result; without one the cell is skipped and says how to provide it."""

    # the tutorial's scenario, measuring exactly its epoch once, its numpy cell only (the file
    # path is what is tested: the tf.data cell loads it the same way)
    text = (ROOT / "scenarios" / "seed.toml").read_text()
    assert 'pipeline = ["numpy", "tf.data"]' in text and "repeats = 3" in text
    seed = tmp_path / "seed.toml"
    seed.write_text(
        text.replace("[defaults]", "[defaults]\nmin_time = 0", 1)
        .replace('pipeline = ["numpy", "tf.data"]', 'pipeline = ["numpy"]')
        .replace("repeats = 3", "repeats = 1")
    )

    def seed_cell(mnist: Path, out: Path) -> dict:
        proc = run_cli(
            "run", str(seed), "--backend", backend, "--out", str(out),
            env={"HARNESS_MNIST": str(mnist)},
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-3000:]
        (doc,) = results_of(out).values()  # its one cell
        return doc

    missing = tmp_path / "absent" / "mnist.npz"
    doc = seed_cell(missing, tmp_path / "a")
    assert doc["status"] == "skipped"
    assert f"MNIST file {missing} does not exist" in doc["reason"]

    npz = tmp_path / "mnist.npz"
    write_mnist_npz(npz, 320, 64)
    doc = seed_cell(npz, tmp_path / "b")
    assert doc["status"] == "ok", doc.get("reason")
    assert doc["data"]["source"].startswith(f"file {npz}")
    assert doc["data"]["train_samples"] == 320 and doc["cell"]["batch_size"] == 32


ALL_THREE = set(backends.NAMES) <= set(backends.installed_backends())


@pytest.mark.backend
@pytest.mark.skipif(
    not ALL_THREE or "tensorflow" not in SELECTED,
    reason="runs where tensorflow is under test with jax and torch beside it (tox's test-tf)",
)
def test_tf_data_under_jax_and_torch(tmp_path):
    """The tutorial's own input pipeline under the other two backends, tensorflow installed
    beside them as Keras advises (the jax and torch benchmark environments hold it). The
    torch DataLoader under tensorflow is the pipelines test's, in the same environment."""
    common = (
        "[defaults]\ntrain_samples = 256\ntest_samples = 64\nbatch_size = 64\nepochs = 1\n"
        'min_time = 0\nrepeats = 1\nwarmup_steps = 1\npipeline = "tf.data"\n'
    )
    (tmp_path / "jax.toml").write_text(common + 'backends = ["jax"]\n')
    # under torch with threads = 2: tf.data gets its own pool of 2 as well
    (tmp_path / "torch.toml").write_text(common + 'backends = ["torch"]\nthreads = 2\n')
    scenarios = [str(tmp_path / f"{b}.toml") for b in ("jax", "torch")]
    proc = run_cli("run", *scenarios, "--backend", "jax,torch", "--out", str(tmp_path / "r"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    docs = {d["backend"]: d for d in results.load_results([tmp_path / "r"])[0]}
    assert sorted(docs) == ["jax", "torch"]
    for d in docs.values():
        assert d["status"] == "ok", d.get("reason")
        assert d["data"]["pipeline"] == "tf.data" and d["evaluate"]["accuracy"] >= 0
    assert docs["jax"]["backend_settings"]["tf_data_threads"] is None  # TensorFlow's default
    ran = docs["torch"]["backend_settings"]
    assert (ran["intra_op_threads"], ran["inter_op_threads"], ran["tf_data_threads"]) == (2, 2, 2)
    assert "; tf.data 2 |" in proc.stdout  # and the report says so under its table


def test_min_time_calibrates_the_measured_epochs(once, tmp_path):
    """Autorange is the worker's own logic, the same under every backend: tested once."""
    auto = tmp_path / "auto.toml"  # a repeat far shorter than min_time: autorange
    auto.write_text(
        "[defaults]\ntrain_samples = 256\ntest_samples = 64\nbatch_size = 64\nepochs = 1\n"
        "repeats = 2\nwarmup_steps = 1\nmin_time = 0.5\n"
    )
    out = tmp_path / "r"
    proc = run_cli("run", str(auto), "--backend", once, "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    docs = results_of(out)
    train = docs["auto/default"]["train"]
    # 4 steps take milliseconds: the first fit calibrates, then each repeat measures enough
    # epochs for about min_time, and the sampler samples them finely enough.
    first, *more = train["calibration"]
    assert first["epochs"] == 1 and all(c["seconds"] < 0.5 for c in train["calibration"])
    assert [c["epochs"] for c in more] == sorted({c["epochs"] for c in more})  # only ever more
    assert train["epochs_asked"] == 1 and train["epochs"] > 1 and train["min_time"] == 0.5
    assert [len(h["loss"]) for h in train["history"]] == [train["epochs"]] * 2
    # the first repeat measured at least min_time; the second as many epochs (a noisy
    # machine may run them faster)
    assert train["steady_seconds"]["values"][0] >= 0.5
    assert min(train["steady_seconds"]["values"]) > 0.2
    monitor = docs["auto/default"]["monitor"]
    assert monitor["interval_s"] < 1.0 and monitor["phases"]["fit"]["n"] >= 10
    # the fits found too short are sampled apart from the measured ones (if they lasted long
    # enough to be sampled at all: a few milliseconds here)
    calibrated = monitor["phases"].get("calibrate", {"seconds": 0.0})["seconds"]
    assert calibrated < sum(c["seconds"] for c in train["calibration"]) + 0.5
    # the model evaluated and saved trained apart, exactly the epochs asked for
    assert "train" in monitor["phases"] and docs["auto/default"]["evaluate"]["accuracy"] >= 0
