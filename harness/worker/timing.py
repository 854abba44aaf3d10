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
    "steady-state samples/s from the measured epochs' wall time (epoch hooks; Keras turns an "
    "epoch's logs into floats before on_epoch_end, so the device has finished); whole fit, "
    "evaluate and predict calls timed around the call plus an explicit device sync (reading "
    "the optimizer's step counter), fit overhead = fit time - epoch time; step times from "
    "an async_safe batch-end hook, which Keras runs on its callback thread after it has turned "
    "the step's logs into floats (i.e. after the device finished the step), so the fit keeps "
    "Keras' asynchronous dispatch; step-time percentiles over chunks of {chunk} steps; warm-up "
    "(tracing, compilation, first steps, both batch shapes) fitted and timed apart first"
)
DEFAULT_CHUNK = 10


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


def percentile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolation percentile (numpy's default method) of an already sorted list."""
    if not sorted_values:
        raise ValueError("percentile of nothing")
    pos = (len(sorted_values) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def chunk_step_times(
    epoch_start: float,
    batch_ends: list[tuple[int, float]],
    chunk: int = DEFAULT_CHUNK,
    keep_partial: bool = True,
) -> list[float]:
    """Seconds per step, averaged over consecutive chunks of ``chunk`` steps in one epoch.

    Args:
        epoch_start: the clock at the epoch's start.
        batch_ends: (batch index, clock) when each step's results were ready. Keras may call
            the hook from several threads, so the list can be out of order; with
            steps_per_execution > 1 it holds one entry per execution (its last step).
        chunk: steps per chunk; a trailing partial chunk is kept if it has any steps.
        keep_partial: False leaves the trailing partial chunk out, unless it is the only one.

    Returns:
        One mean step time per chunk: chunk duration / steps in it.
    """
    ends = sorted(batch_ends)
    out = []
    prev_step, prev_t = -1, epoch_start
    pending_steps, pending_t0 = 0, epoch_start
    for batch, t in ends:
        pending_steps += batch - prev_step
        prev_step, prev_t = batch, t
        if pending_steps >= chunk:
            out.append((prev_t - pending_t0) / pending_steps)
            pending_steps, pending_t0 = 0, prev_t
    if pending_steps and (keep_partial or not out):
        out.append((prev_t - pending_t0) / pending_steps)
    return out


def typical_samples_per_sec(
    epoch_starts: list[float],
    batch_ends: list[list[tuple[int, float]]],
    batch_size: int,
    chunk: int = DEFAULT_CHUNK,
) -> float | None:
    """Batch size / the median chunk's time per step, over one fit's epochs.

    An epoch's trailing partial chunk (fewer steps, and the smaller last batch) is left out
    when the epoch has full chunks, so it cannot pull the median toward a cheaper step.
    None when no step was timed.
    """
    times = []
    for start, ends in zip(epoch_starts, batch_ends, strict=True):
        times += chunk_step_times(start, ends, chunk, keep_partial=False)
    if not times:
        return None
    return batch_size / percentile(sorted(times), 50)


def step_time_summary(chunks: list[float], chunk: int) -> dict[str, Any] | None:
    """p50/p90/p99/mean/max of chunked step times, in milliseconds."""
    if not chunks:
        return None
    ms = sorted(c * 1000 for c in chunks)
    return {
        "chunk_steps": chunk,
        "n_chunks": len(ms),
        "p50": round(percentile(ms, 50), 6),
        "p90": round(percentile(ms, 90), 6),
        "p99": round(percentile(ms, 99), 6),
        "mean": round(sum(ms) / len(ms), 6),
        "max": round(ms[-1], 6),
    }


def make_epoch_timer(clock=time.perf_counter):
    """A Keras callback that records per-epoch wall time and stops on a NaN loss.

    Only epoch hooks are overridden, on purpose (see the module docstring). Built by a
    function so this module stays importable without keras.
    """
    import keras

    class EpochTimer(keras.callbacks.Callback):
        # Keras skips a callback marked async_safe when it decides whether batch hooks force
        # synchronous dispatch (keras/src/callbacks/callback_list.py). Ours only reads a clock.
        async_safe = True

        def __init__(self):
            super().__init__()
            self.epoch_seconds: list[float] = []
            self.epoch_starts: list[float] = []
            self.batch_ends: list[list[tuple[int, float]]] = []
            self.nan_epoch: int | None = None
            self._start = 0.0

        def on_epoch_begin(self, epoch, logs=None):
            self._start = clock()
            self.epoch_starts.append(self._start)
            self.batch_ends.append([])

        def on_train_batch_end(self, batch, logs=None):
            # Runs after Keras converted this step's logs to floats: the step is done.
            # list.append is atomic, so the callback threads need no lock.
            self.batch_ends[-1].append((batch, clock()))

        def on_epoch_end(self, epoch, logs=None):
            # logs are Python floats here: Keras has already waited for the device.
            self.epoch_seconds.append(clock() - self._start)
            loss = (logs or {}).get("loss")
            if loss is not None and not math.isfinite(loss):
                self.nan_epoch = epoch + 1
                self.model.stop_training = True

    return EpochTimer()


SYNCED_NOTE = (
    " This cell waited for the device after every step (sync_every_step or step_delay_ms), "
    "so Keras' asynchronous dispatch was off."
)


def spin(seconds: float, clock=time.perf_counter) -> None:
    """Waits ``seconds`` exactly, by polling a clock: ``time.sleep`` overshoots short waits
    by 50-100 us (the kernel's timer slack), which is half of a 0.2 ms delay."""
    end = clock() + seconds
    while clock() < end:
        pass


def make_step_delay(delay_ms: float, wait=spin):
    """A callback that waits ``delay_ms`` after every training step: a real slowdown of
    known size, for calibrating a regression gate. With ``delay_ms`` 0 it only syncs.

    The wait must sit on the device's critical path, or asynchronous dispatch hides it (a
    host sleep *before* a step overlaps with the previous step still running on the device).
    So this callback overrides ``on_train_batch_end`` and is deliberately *not* async-safe:
    Keras then waits for each step's results (it converts the logs to floats) before calling
    it, and the next step is dispatched only after the wait. The cell therefore also pays one
    device sync per step, which alone can cost more than the delay (a quarter of a 1.5 ms JAX
    step on a CPU): compare a delayed cell with a ``sync_every_step`` cell, not a plain one.
    """
    import keras

    seconds = delay_ms / 1000.0

    class StepDelay(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if seconds:
                wait(seconds)

    return StepDelay()
