"""The phases after training, on the trained model: evaluate, predict, the efficiency probe
(achieved FLOP/s against the backend's matmul), and save and reload in both formats.

Each function takes the worker (its cell, its result file, its feed) and returns its phase's
part of the result.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import devices as device_strings
from ..errors import one_line
from ..results import REFERENCE_SAMPLES, reference_inputs, reference_paths
from . import data as data_mod
from . import timing

if TYPE_CHECKING:
    from .cell import Worker


def evaluate(w: Worker, ds: data_mod.Dataset, model) -> dict[str, Any]:
    w.phase("evaluate")
    cell = w.cell
    sync = lambda: timing.sync(model)  # noqa: E731
    # Warm-up on one full and one partial batch: the timed call then runs compiled code.
    n_warm = cell.batch_size + len(ds.x_test) % cell.batch_size
    warm = w.feed(ds.x_test[:n_warm], ds.y_test[:n_warm], shuffle=False)
    model.evaluate(warm.x, warm.y, verbose=0, **_eval_kwargs(warm))
    feed = w.feed(ds.x_test, ds.y_test, shuffle=False)
    out, secs = timing.timed(
        lambda: model.evaluate(feed.x, feed.y, verbose=0, return_dict=True, **_eval_kwargs(feed)),
        sync,
    )
    return {
        "loss": float(out["loss"]),
        "accuracy": float(out["accuracy"]) if "accuracy" in out else None,
        "metrics": {k: float(v) for k, v in out.items() if k != "loss"},
        "seconds": round(secs, 6),
        "samples_per_sec": round(len(ds.x_test) / secs, 2),
    }


def predict(w: Worker, ds: data_mod.Dataset, model) -> tuple[dict[str, Any], np.ndarray]:
    """The predict phase's result, and the predictions (the reference a reloaded model, here
    or under another backend, must reproduce)."""
    w.phase("predict")
    x = ds.x_test
    n_warm = w.cell.batch_size + len(x) % w.cell.batch_size
    warm = w.feed(x[:n_warm], None, shuffle=False)
    model.predict(warm.x, verbose=0, **_eval_kwargs(warm))
    feed = w.feed(x, None, shuffle=False)
    start = time.perf_counter()
    probs = model.predict(feed.x, verbose=0, **_eval_kwargs(feed))  # numpy: already synced
    probs, secs = np.asarray(probs), time.perf_counter() - start
    classes = np.argmax(probs, axis=-1)
    truth = ds.y_test if ds.y_test.ndim == 1 else np.argmax(ds.y_test, axis=-1)
    return {
        "seconds": round(secs, 6),
        "samples_per_sec": round(len(ds.x_test) / secs, 2),
        "argmax_accuracy": float(np.mean(classes == truth)),
        "output_shape": list(probs.shape),
    }, probs


def efficiency(w: Worker) -> dict[str, Any]:
    """Achieved training FLOP/s against a matmul probe of the model's shape on this device."""
    from . import probe

    w.phase("probe")
    cell, train = w.cell, w.result["train"]
    if not train["flops_per_sample"]:
        raise ValueError(
            "no layer's FLOPs could be counted (a subclassed model has no graph to read; "
            f"uncounted: {', '.join(train['flops_uncounted'])}): no efficiency figure"
        )
    achieved = train["flops_per_sample"] * train["samples_per_sec"]["median"]
    # Data parallel on N GPUs: each multiplies its share of the batch, and N of them can
    # reach N times what one does. Simulated CPU devices share the one CPU: its probe at
    # the global batch stays the reference.
    kind, _ = device_strings.parse(cell.device)
    devices = cell.data_parallel if kind == "gpu" else 1
    batch = cell.batch_size // devices
    peak = probe.matmul_rate(w.backend, batch, 784, 128, precision=cell.precision)
    out = {
        "flops_per_sample": train["flops_per_sample"],
        "achieved_flops_per_sec": round(achieved),
        "probe": peak,
        "probe_devices": devices,
        "fraction_of_probe": round(achieved / (devices * peak["flops_per_sec"]), 4),
        "partial": bool(train.get("flops_uncounted")),  # some layers' FLOPs not counted
    }
    if cell.device == "cpu":  # numpy's BLAS is the reference a CPU user knows
        ref = probe.matmul_rate("numpy", batch, 784, 128, seconds=0.2)
        out["numpy_probe"] = ref
        out["fraction_of_numpy"] = round(achieved / ref["flops_per_sec"], 4)
    return out


def save_reload(w: Worker, keras, ds: data_mod.Dataset, model, probs) -> dict[str, Any]:
    """Saves the model as .keras and .h5, loads each back, and compares its predictions with
    ``probs``; the result file is rewritten after each format."""
    out: dict[str, Any] = {}
    folder = Path(w.task.artifacts_dir or w.out.parent / "models")
    folder.mkdir(parents=True, exist_ok=True)
    # Scenario in the name: two scenarios may have a cell of the same id.
    stem = f"{w.task.scenario.name}--{w.out.stem}"
    # Reference predictions let another backend check it loads this model faithfully.
    np.save(reference_paths(folder / f"{stem}.keras"), probs[:REFERENCE_SAMPLES])
    # ... and the inputs they came from, as the model sees them (the user's dataset
    # function need not run again there)
    x = ds.x_test[:REFERENCE_SAMPLES]
    np.save(reference_inputs(folder / f"{stem}.keras"), x if ds.ready else data_mod.preprocess(x))
    for fmt in ("keras", "h5"):
        path = folder / f"{stem}.{fmt}"
        w.phase("save", format=fmt)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            start = time.perf_counter()
            model.save(path)
            save_s = time.perf_counter() - start
        w.note_warnings(f"save .{fmt}", caught)
        w.phase("reload", format=fmt)
        start = time.perf_counter()
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                loaded = keras.saving.load_model(path)
        except Exception as exc:
            # Keras' own reason (a custom layer not registered with
            # keras.saving.register_keras_serializable, say): a finding, not a crash
            out[fmt] = {
                "path": str(path),
                "bytes": path.stat().st_size,
                "save_seconds": round(save_s, 6),
                "load_error": one_line(exc, typed=True, limit=400),
                "predictions_match": False,
            }
            w.result["save"] = out
            w.save()
            continue
        load_s = time.perf_counter() - start
        w.note_warnings(f"load .{fmt}", caught)
        reloaded = np.asarray(loaded.predict(w.feed(ds.x_test, None, shuffle=False).x, verbose=0))
        diff = float(np.max(np.abs(reloaded - probs)))
        out[fmt] = {
            "path": str(path),
            "bytes": path.stat().st_size,
            "save_seconds": round(save_s, 6),
            "load_seconds": round(load_s, 6),
            "max_abs_diff": diff,
            "predictions_match": diff <= 1e-6,
        }
        w.result["save"] = out
        w.save()
    return out


def _eval_kwargs(feed) -> dict[str, Any]:
    kwargs = dict(feed.fit_kwargs)
    kwargs.pop("shuffle", None)
    return kwargs
