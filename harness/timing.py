"""Timing helpers that leave the measured fit as fast as a plain ``model.fit``.

Keras dispatches per-batch callbacks asynchronously only while no callback overrides a
``on_*_batch_end`` hook (keras/src/callbacks/callback_list.py): one that does makes every step
convert its logs to Python floats, i.e. wait for the device. So the harness times at epoch
boundaries only (where Keras already waits for the device to turn the epoch's logs into floats)
and reads the clock around whole calls after one explicit sync.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

TIMING_METHOD = (
    "wall clock around whole fit/evaluate/predict calls, read after an explicit device sync "
    "(reading the optimizer's step counter); per-epoch times from on_epoch_begin/end hooks "
    "only, so Keras keeps its asynchronous per-batch dispatch; warm-up (tracing, compilation, "
    "first steps, both batch shapes) fitted and timed apart before the measured epochs"
)


def sync(model: Any) -> int:
    """Blocks until the device has finished every step dispatched so far.

    Reading a variable that every training step writes (the optimizer's iteration counter)
    forces all three backends to complete the pending work.
    """
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or not getattr(optimizer, "built", False):
        return 0
    return int(optimizer.iterations.numpy())


def timed(fn: Callable[[], Any], sync_fn: Callable[[], Any], clock=time.perf_counter):
    """Runs ``fn``, syncs, and returns (result, seconds)."""
    start = clock()
    out = fn()
    sync_fn()
    return out, clock() - start


def make_epoch_timer(clock=time.perf_counter):
    """A Keras callback that records per-epoch wall time and stops on a NaN loss.

    Only epoch hooks are overridden, on purpose (see the module docstring). Built by a
    function so this module stays importable without keras.
    """
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.epoch_seconds: list[float] = []
            self.nan_epoch: int | None = None
            self._start = 0.0

        def on_epoch_begin(self, epoch, logs=None):
            self._start = clock()

        def on_epoch_end(self, epoch, logs=None):
            # logs are Python floats here: Keras has already waited for the device.
            self.epoch_seconds.append(clock() - self._start)
            loss = (logs or {}).get("loss")
            if loss is not None and not math.isfinite(loss):
                self.nan_epoch = epoch + 1
                self.model.stop_training = True

    return EpochTimer()
