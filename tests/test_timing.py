"""Timing maths with a fake clock (exact numbers), and the real callback under each backend."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from conftest import cli_env

from harness.devices import device_env
from harness.worker import timing


def test_chunks_of_uneven_steps_exact():
    # 25 steps; steps 0-9 take 1 s each, 10-19 take 2 s each, 20-24 take 4 s each.
    t, ends = 100.0, []
    for step in range(25):
        t += 1 if step < 10 else 2 if step < 20 else 4
        ends.append((step, t))
    chunks = timing.chunk_step_times(100.0, ends, chunk=10)
    assert chunks == [1.0, 2.0, 4.0]  # the trailing 5-step chunk is kept, averaged over 5


def test_chunks_accept_out_of_order_callbacks():
    ends = [(1, 2.0), (0, 1.0), (3, 6.0), (2, 4.0)]  # callback threads may finish out of order
    assert timing.chunk_step_times(0.0, ends, chunk=2) == [1.0, 2.0]


def test_chunks_with_steps_per_execution():
    # steps_per_execution=4: one callback per execution, at its last step index.
    ends = [(3, 4.0), (7, 12.0), (9, 14.0)]
    assert timing.chunk_step_times(0.0, ends, chunk=4) == [1.0, 2.0, 1.0]


def test_typical_rate_leaves_trailing_partial_chunks_out():
    # Epoch 1: 25 steps as above (chunks 1, 2 s/step and a trailing 5-step chunk at 0.1 s,
    # as a small last batch would run). Epoch 2: 5 steps only, one partial chunk: kept.
    t, ends1 = 0.0, []
    for step in range(25):
        t += 1 if step < 10 else 2 if step < 20 else 0.1
        ends1.append((step, t))
    start2 = t
    ends2 = [(step, start2 + 3.0 * (step + 1)) for step in range(5)]
    assert timing.chunk_step_times(0.0, ends1, chunk=10, keep_partial=False) == [1.0, 2.0]
    assert timing.chunk_step_times(start2, ends2, chunk=10, keep_partial=False) == [3.0]
    # median of [1, 2, 3] s/step is 2: 64 samples / 2 s
    rate = timing.typical_samples_per_sec([0.0, start2], [ends1, ends2], 64, chunk=10)
    assert rate == 32.0
    assert timing.typical_samples_per_sec([0.0], [[]], 64) is None


def test_percentiles_and_summary_exact():
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert timing.percentile(values, 50) == 50.5
    assert timing.percentile(values, 90) == pytest.approx(90.1)
    assert timing.percentile(values, 99) == pytest.approx(99.01)
    assert timing.percentile([7.0], 99) == 7.0
    summary = timing.step_time_summary([0.001, 0.002, 0.003, 0.004], chunk=10)
    assert summary == {
        "chunk_steps": 10,
        "n_chunks": 4,
        "p50": 2.5,
        "p90": 3.7,
        "p99": 3.97,
        "mean": 2.5,
        "max": 4.0,
    }
    assert timing.step_time_summary([], chunk=10) is None


def test_timed_reads_the_clock_after_the_sync():
    now = [0.0]

    def clock():
        return now[0]

    def work():
        now[0] += 2.0  # dispatch returns after 2 s ...
        return "out"

    def sync():
        now[0] += 3.0  # ... and the device needs 3 s more

    assert timing.timed(work, sync, clock) == ("out", 5.0)


CALLBACK_PROBE = textwrap.dedent(
    """
    import json, time
    import numpy as np
    import keras
    from harness.worker import model as m, timing
    from keras.src.callbacks.callback_list import CallbackList

    timer = timing.make_epoch_timer()
    plain = CallbackList([], model=None)
    ours = CallbackList([timer], model=None)
    delayed = CallbackList([timer, timing.make_step_delay(1.0)], model=None)

    class Slow(keras.utils.PyDataset):
        # A real slow step: every batch takes DELAY s to produce.
        def __init__(self):
            super().__init__()
            self.rng = np.random.default_rng(0)
        def __len__(self):
            return STEPS
        def __getitem__(self, i):
            time.sleep(DELAY)
            x = self.rng.random((16, 28, 28, 1), dtype=np.float32)
            return x, self.rng.integers(0, 10, 16)

    keras.utils.set_random_seed(0)
    model = m.compile_model(m.build_model(), m.make_optimizer("sgd"))
    model.fit(Slow(), epochs=1, verbose=0)  # warm-up: compile
    start = time.perf_counter()
    model.fit(Slow(), epochs=2, verbose=0, callbacks=[timer])
    returned = time.perf_counter()
    timing.sync(model)
    synced = time.perf_counter()
    wall = synced - start
    chunks = []
    for s, ends in zip(timer.epoch_starts, timer.batch_ends):
        chunks.extend(timing.chunk_step_times(s, ends, 10))
    print(json.dumps({
        "async_plain": plain._async_train, "async_ours": ours._async_train, "async_delayed": delayed._async_train,
        "wall": wall, "sync_after_fit": synced - returned, "epochs": timer.epoch_seconds, "chunks": chunks,
        "n_ends": [len(e) for e in timer.batch_ends],
    }))
    """
)


@pytest.mark.backend
def test_step_timing_keeps_async_dispatch_and_agrees_with_wall_time(backend):
    steps, delay = 60, 0.02  # long enough that fit start-up and teardown stay well under 5%
    code = f"STEPS = {steps}\nDELAY = {delay}\n" + CALLBACK_PROBE
    env = cli_env(device_env("cpu", backend))
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    # Our callback leaves Keras' dispatch exactly as a plain fit has it.
    assert out["async_ours"] == out["async_plain"]
    if backend != "tensorflow":  # Keras marks the TF backend not thread-safe: always sync
        assert out["async_ours"] is True
    # The calibration delay, on purpose, makes Keras wait for every step before it sleeps.
    assert out["async_delayed"] is False
    assert out["n_ends"] == [steps, steps]
    # Each step really takes >= delay; the measured step times must show it, and the
    # chunked step times must add up to the wall time of the same fit within a few percent.
    assert min(out["chunks"]) >= delay * 0.95
    total = sum(c * 10 for c in out["chunks"])
    assert total == pytest.approx(sum(out["epochs"]), rel=0.05)
    # Epoch times end only when the device is done: a sync after the fit adds (almost) nothing
    # (what lies between epochs is Keras' own work, slower on a loaded machine: not compared).
    assert out["sync_after_fit"] < 0.05 * sum(out["epochs"])
    assert out["wall"] >= sum(out["epochs"])  # the rest is per-fit setup, reported apart
