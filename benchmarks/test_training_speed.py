"""pytest-benchmark benchmarks of the default model under the current backend.

    KERAS_BACKEND=jax pytest benchmarks/ --benchmark-autosave
    KERAS_BACKEND=jax pytest benchmarks/ --benchmark-compare --benchmark-compare-fail=median:10%

pytest-benchmark times a Python callable and never waits for a GPU (or for JAX's
asynchronous dispatch) by itself: timed without a sync, a step looks as fast as its dispatch.
Every callable here therefore ends with an explicit device sync (``timing.sync`` reads the
optimizer's step counter, which forces all pending steps to finish). Do the same in your own
benchmarks. These files live outside tests/: they are measurements. CI runs each once with
``--benchmark-disable``, so the documented path is known to work under every backend.
"""

from __future__ import annotations

import pytest

keras = pytest.importorskip("keras", reason="keras is needed for the benchmarks")

from harness.worker import data, timing  # noqa: E402
from harness.worker import model as model_mod  # noqa: E402

BATCH = 32


@pytest.fixture(scope="module")
def trained():
    ds = data.synthetic(4096, 256, seed=0)
    x, y = data.preprocess(ds.x_train), ds.y_train
    keras.utils.set_random_seed(0)
    model = model_mod.compile_model(model_mod.build_model(), model_mod.make_optimizer("adam"))
    model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)  # compile and warm up
    timing.sync(model)
    return model, x, y


def test_train_step(benchmark, trained):
    """One optimizer step on one batch of 32 (train_on_batch, then sync)."""
    model, x, y = trained
    xb, yb = x[:BATCH], y[:BATCH]

    def step():
        model.train_on_batch(xb, yb)
        timing.sync(model)

    benchmark.extra_info["backend"] = keras.backend.backend()
    benchmark.pedantic(step, rounds=200, warmup_rounds=20)


def test_fit_epoch(benchmark, trained):
    """One epoch of model.fit over 4096 samples at batch 32, then sync."""
    model, x, y = trained

    def epoch():
        model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
        timing.sync(model)

    benchmark.extra_info["backend"] = keras.backend.backend()
    benchmark.extra_info["samples"] = len(x)
    benchmark.pedantic(epoch, rounds=7, warmup_rounds=1)
