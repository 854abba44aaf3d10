"""What does the harness's instrumentation cost? The same fit with and without it, interleaved.

    python benchmarks/overhead.py [--backend jax,torch,tensorflow] [--rounds 10]

For each backend (a fresh process each, KERAS_BACKEND set before keras is imported) one model
is fitted alternately plain (``model.fit``, nothing else) and instrumented (the harness's
EpochTimer callback with its batch hook, plus the utilization sampler thread at its default
interval), in ABBA order so drift hits both equally. Each fit is timed around the call with a
device sync. Prints the median ratio instrumented/plain of samples/s with its spread; the
budget is 1% (ratio >= 0.99).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.backends import NAMES  # noqa: E402
from harness.gate.stats import bootstrap_median_ci  # noqa: E402


def child(rounds: int, samples: int, batch: int, epochs: int) -> dict:
    import keras
    import numpy as np

    from harness import monitor
    from harness.worker import data, timing
    from harness.worker import model as m

    ds = data.synthetic(samples, 10, seed=0)
    x, y = data.preprocess(ds.x_train), ds.y_train
    keras.utils.set_random_seed(0)
    model = m.compile_model(m.build_model(), m.make_optimizer("adam"))
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0)  # compile and warm up

    # Wall time is what throughput means; process CPU time (every thread of this process,
    # not other tenants' work, which on a shared VM is most of the wall-time noise) is what
    # the instrumentation can add, since it adds no device sync (tests/test_timing.py checks
    # that Keras' asynchronous dispatch stays as a plain fit has it).
    def plain() -> tuple[float, float]:
        start, cpu = time.perf_counter(), time.process_time()
        model.fit(x, y, batch_size=batch, epochs=epochs, verbose=0)
        timing.sync(model)
        return time.perf_counter() - start, time.process_time() - cpu

    def instrumented() -> tuple[float, float]:
        # As in the worker: the sampler is already running when the fit starts (it starts
        # once per cell, before the data is loaded), so its start-up is not timed.
        sampler = monitor.Sampler(interval=1.0).start()
        sampler.set_phase("fit")
        timer = timing.make_epoch_timer()
        start, cpu = time.perf_counter(), time.process_time()
        model.fit(x, y, batch_size=batch, epochs=epochs, verbose=0, callbacks=[timer])
        timing.sync(model)
        elapsed = time.perf_counter() - start, time.process_time() - cpu
        sampler.stop()
        return elapsed

    times = {"plain": [], "instrumented": []}
    cpu = {"plain": [], "instrumented": []}
    order = ["plain", "instrumented", "instrumented", "plain"]
    for r in range(rounds):
        name = order[r % 4]
        wall, used = plain() if name == "plain" else instrumented()
        times[name].append(wall)
        cpu[name].append(used)
    # The same costs, component by component, where the noise of a whole fit cannot hide them:
    # one sampler sample per interval, and one batch-end hook call per training step.
    sampler = monitor.Sampler(interval=1.0)
    sampler.min_window_s = 0.0  # take full samples back to back, for the measurement
    t0 = time.process_time()
    for _ in range(50):
        sampler.sample_once()
    sample_cpu = (time.process_time() - t0) / 50
    sampler.stop()
    hook = timing.make_epoch_timer()
    hook.on_epoch_begin(0)
    t0 = time.perf_counter()
    for i in range(100_000):
        hook.on_train_batch_end(i)
    hook_s = (time.perf_counter() - t0) / 100_000
    step_s = statistics.median(times["plain"]) / (samples * epochs / batch)
    pairs = min(len(times["plain"]), len(times["instrumented"]))
    ratios = [times["plain"][i] / times["instrumented"][i] for i in range(pairs)]
    cpu_ratios = [cpu["plain"][i] / cpu["instrumented"][i] for i in range(pairs)]
    return {
        "backend": keras.backend.backend(),
        "samples_per_fit": samples * epochs,
        "batch_size": batch,
        "plain_samples_per_sec": [samples * epochs / t for t in times["plain"]],
        "instrumented_samples_per_sec": [samples * epochs / t for t in times["instrumented"]],
        "ratio_median": statistics.median(ratios),
        "ratio_values": ratios,
        "cpu_ratio_values": cpu_ratios,
        "cpu_seconds": cpu,
        "numpy": np.__version__,
        "sample_cpu_seconds": sample_cpu,
        "hook_seconds": hook_s,
        "step_seconds": step_s,
        "component_bound": sample_cpu / 1.0 + hook_s / step_s,
    }


def _verdict(pairs: int, lo: float, hi: float) -> str:
    if pairs < 6:
        return "too few pairs to judge; use --rounds 24 or more"
    if lo >= 0.99:
        return "within the 1% budget"
    if hi < 0.99:
        return "OVER the 1% budget"
    return "inconclusive: the noise is wider than the 1% budget; add --rounds"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default=os.environ.get("KERAS_BACKEND", ",".join(NAMES)))
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--samples", type=int, default=16384)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.rounds, args.samples, args.batch_size, args.epochs)))
        return 0
    for backend in args.backend.split(","):
        env = dict(
            os.environ,
            KERAS_BACKEND=backend,
            CUDA_VISIBLE_DEVICES=os.environ.get("CUDA_VISIBLE_DEVICES", ""),
        )
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
        cmd = [sys.executable, __file__, "--child", "--rounds", str(args.rounds), "--samples",
               str(args.samples), "--batch-size", str(args.batch_size), "--epochs", str(args.epochs)]  # fmt: skip
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"{backend}: failed: {proc.stderr.strip().splitlines()[-1:]}")
            continue
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        ratios = out["ratio_values"]
        lo, hi = bootstrap_median_ci(ratios)
        plain = statistics.median(out["plain_samples_per_sec"])
        verdict = _verdict(len(ratios), lo, hi)
        cpu_ratios = out["cpu_ratio_values"]
        clo, chi = bootstrap_median_ci(cpu_ratios)
        print(
            f"{backend:<10} components: {out['sample_cpu_seconds'] * 1e3:.2f} ms CPU per sample (1/s), "
            f"{out['hook_seconds'] * 1e6:.2f} us per step hook vs {out['step_seconds'] * 1e3:.3f} ms "
            f"per step: at most {out['component_bound']:.3%} of training time"
        )
        print(
            f"{backend:<10} instrumented/plain throughput {out['ratio_median']:.4f} "
            f"(95% CI {lo:.4f}-{hi:.4f}, {len(ratios)} pairs; plain {plain:,.0f} samples/s): {verdict}"
        )
        print(
            f"{backend:<10} process CPU time plain/instrumented {statistics.median(cpu_ratios):.4f} "
            f"(95% CI {clo:.4f}-{chi:.4f}): {_verdict(len(cpu_ratios), clo, chi)}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
