"""Hand-made result documents with known numbers, for report and comparison tests."""

from __future__ import annotations

from harness import results
from harness.gate import stats


def write_mnist_npz(path, n_train: int, n_test: int) -> None:
    """MNIST-shaped random data in keras' mnist.npz layout."""
    import numpy as np

    rng = np.random.default_rng(0)
    np.savez(
        path,
        x_train=rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        y_train=rng.integers(0, 10, n_train, dtype=np.uint8),
        x_test=rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        y_test=rng.integers(0, 10, n_test, dtype=np.uint8),
    )


def result(
    backend: str,
    sps: list[float],
    *,
    scenario: str = "sweep",
    cell_id: str = "bs32",
    status: str = "ok",
    reason: str | None = None,
    started: str = "2026-11-27T00:00:00Z",
    accuracy: float = 0.9,
    run_id: str = "run-a",
) -> dict:
    cell = {
        "scenario": scenario,
        "id": cell_id,
        "dataset": "synthetic",
        "pipeline": "numpy",
        "batch_size": 32,
        "optimizer": {"name": "adam"},
        "device": "cpu",
    }
    doc = results.new_result(cell, backend, {"name": scenario, "description": "", "file": "x.toml"})
    versions = {
        "tensorflow": {"tensorflow-cpu": "2.21.0"},
        "jax": {"jax": "0.10.2"},
        "torch": {"torch": "2.13.0"},
    }
    doc.update(
        status=status,
        reason=reason,
        started=started,
        run_id=run_id,
        environment={
            "hostname": "box",
            "cpu_model": "Test CPU",
            "keras": "3.15.1",
            "backend_versions": versions[backend],
        },
    )
    if status == "ok":
        doc["data"] = {"dataset": "synthetic", "train_samples": 1000, "test_samples": 100}
        doc["device"] = {"requested": "cpu", "variables_on": "cpu"}
        doc["train"] = {
            "samples_per_sec": stats.summarize(sps),
            "ms_per_step": stats.summarize([32000 / s for s in sps]),
            "warmup": {"seconds": stats.summarize([1.5])},
        }
        doc["evaluate"] = {"accuracy": accuracy, "loss": 0.3}
        doc["efficiency"] = {"fraction_of_probe": 0.4}
        doc["monitor"] = {"phases": {"fit": {"cpu": {"mean": 90.0, "peak": 99.5}}}}
        doc["predict"] = {"argmax_accuracy": accuracy}
        doc["backend_settings"] = {
            "jit_compile": backend != "torch",
            "dtype_policy": "float32",
            "matmul_precision": "highest" if backend == "torch" else "tf32",
            "intra_op_threads": {"tensorflow": 0, "jax": None, "torch": 2}[backend],
            "inter_op_threads": {"tensorflow": 0, "jax": None, "torch": 2}[backend],
        }
        doc["save"] = {
            "keras": {"predictions_match": True, "max_abs_diff": 0.0},
            "h5": {"predictions_match": True, "max_abs_diff": 0.0},
        }
    return doc
