"""The train phase: how many epochs a fit needs (calibration), the measured repeats, and the
train result assembled from them, as pyperf's worker keeps ``calibrate_loops`` apart from
``_compute_values``.

- Calibration (``Training.calibrate``): a fit of the scenario's epochs that lasts less than
  ``min_time`` is too short to mean anything; it is run again from scratch with enough epochs
  (timeit's autorange), until one lasts that long. That fit is the first measured repeat.
  `harness ab` hands every worker the epochs its calibrating worker chose (``epochs_from``).
- Measurement (``Training.measure``): the other repeats, each a fresh model from the same seed,
  a warm-up fit, then the timed fit; the result file is rewritten after each.
- Assembly (``Training.result``): the summaries, step times and histories of the repeats.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import one_line
from ..gate import stats
from ..results import Status
from . import data as data_mod
from . import devices, timing, userdata
from .outcome import CellOutcome

if TYPE_CHECKING:
    from .cell import Worker

# A cell never measures more epochs than this to reach its min_time (its time limit still
# applies): a broken clock must not make a repeat run for ever.
MAX_EPOCHS = 10_000
MAX_CALIBRATIONS = 5


@dataclasses.dataclass(frozen=True)
class Fit:
    """One timed fit: what the train result keeps of it (not the model, which the next one's
    clear_session frees)."""

    seconds: float  # the whole fit call, synced
    epoch_seconds: list[float]  # each epoch's, from the epoch hooks
    measured: float  # their sum; in a multi-process cell, process 0's
    chunks: list[float]  # seconds per step, over chunks of steps
    typical: float | None  # batch size / the median chunk's time per step


class Training:
    """One cell's train phase, on a worker that has its data and its device set up."""

    def __init__(self, worker: Worker, keras: Any, ds: data_mod.Dataset):
        self.w = worker
        self.keras = keras
        self.ds = ds
        self.cell = worker.cell
        # `harness ab`'s calibrating worker stops once it has chosen: its fit is no value
        self.repeats = 1 if worker.options.calibrate_only else self.cell.repeats
        self.n_warm = warmup_samples(self.cell, ds)
        self.warmup_seconds: list[float] = []  # of every fit, calibration fits too
        self.histories: list[dict[str, list[float]]] = []  # of the measured fits
        self.fits: list[Fit] = []
        self.model: Any = None  # the latest fit's
        self.feed: data_mod.Feed | None = None  # the latest fit's

    def run(self) -> tuple[dict[str, Any], Any]:
        """Calibrates, measures and assembles; returns the train result and the model that
        the later phases evaluate and save (trained exactly the scenario's epochs)."""
        shared = self.shared_epochs()
        self.sample_fits_finely()
        epochs, calibration, first = self.calibrate(shared)
        self.measure(epochs, first)
        model, trained = self.model, None
        if epochs != self.cell.epochs and not self.w.options.train_only:
            # min_time measured more epochs than the scenario asks; what is evaluated, saved
            # and loaded elsewhere is the model of exactly `epochs`, as under every backend.
            model, trained = self.exact_model()
        return self.result(epochs, calibration, shared, model, trained), model

    # --- calibration ---------------------------------------------------------------------------

    def calibrate(self, shared: int | None) -> tuple[int, list[dict[str, Any]], Fit]:
        """The epochs each measured fit runs, the fits found too short on the way (their
        epochs and seconds), and the first fit long enough: the first measured repeat."""
        cell = self.cell
        epochs, calibration = shared or cell.epochs, []
        while True:
            fit = self.fit(epochs, repeat=0)
            if (
                shared
                or fit.measured >= cell.min_time
                or len(calibration) >= MAX_CALIBRATIONS
                or epochs >= MAX_EPOCHS
            ):
                return epochs, calibration, fit
            # Too short to mean anything (timeit's autorange): try enough epochs for
            # min_time, with a margin, the first repeat again from scratch, until one
            # fit lasts that long (a first fit can be slower than the steady ones).
            calibration.append({"epochs": epochs, "seconds": round(fit.measured, 6)})
            scale = 1.2 * cell.min_time / max(fit.measured, 1e-6)
            epochs = min(MAX_EPOCHS, max(epochs + 1, math.ceil(epochs * scale)))
            self.histories.pop()  # its warm-up stays: the first is the cold compile
            if self.w.sampler is not None:  # its utilization is not the measured fits'
                self.w.sampler.rename_phase("fit", "calibrate")

    def shared_epochs(self) -> int | None:
        """`harness ab`: the epochs its calibrating worker chose for min_time, so that every
        round of both sides measures the same work; None where there is none to take (that
        worker failed before it chose): this one calibrates for itself, and says so."""
        path = self.w.options.epochs_from
        if not path:
            return None
        try:
            epochs = (json.loads(Path(path).read_text()).get("train") or {}).get("epochs")
        except (OSError, ValueError, AttributeError) as exc:
            why = one_line(exc, typed=True)
        else:
            if isinstance(epochs, int) and 1 <= epochs <= MAX_EPOCHS:
                return epochs
            why = "it chose no epochs (it did not finish)"
        self.w.result["warnings"].append(
            {"message": f"epochs_from {path}: {why}; calibrated here instead", "count": 1}
        )
        return None

    # --- measurement ---------------------------------------------------------------------------

    def measure(self, epochs: int, first: Fit) -> None:
        """Keeps the calibrated first fit, then runs the other repeats of ``epochs`` each."""
        self.record(first)
        while len(self.fits) < self.repeats:
            self.record(self.fit(epochs, repeat=len(self.fits)))

    def record(self, fit: Fit) -> None:
        """Keeps a measured fit, in the result file too (a worker that dies leaves it)."""
        w = self.w
        self.fits.append(fit)
        w.result["train"] = {
            "fit_seconds": [f.seconds for f in self.fits],
            "history": self.histories,
        }
        w.save()
        if len(self.fits) == 1:  # the measured fits' length is known: sample them, not more
            self.sample_fits_finely(fit.measured * self.repeats)
            if self.cell.pipeline == "tf.data" and "error" not in w.result["backend_settings"]:
                # TensorFlow's pools feed it under any backend: the pool it really got
                # (None: TensorFlow's shared default, a thread per core)
                pool = data_mod.tf_data_threads(self.feed.x)
                w.result["backend_settings"]["tf_data_threads"] = pool

    def fit(self, epochs: int, *, repeat: int) -> Fit:
        """A fresh model, its warm-up fit, then the timed fit of ``epochs``."""
        w, cell = self.w, self.cell
        w.phase("build", repeat=repeat + 1, of=self.repeats)
        model = self.compiled_model()
        if repeat == 0:
            w.check_placement(model)
            try:
                w.result["backend_settings"] = devices.what_ran(w.backend, model)
            except Exception as exc:  # an annotation: it must not cost the measurement
                w.result["backend_settings"] = {"error": one_line(exc, typed=True)}
        if self.n_warm:
            w.phase("warmup", repeat=repeat + 1, of=cell.repeats)
            warm = self.train_feed(warmup=True)
            _, secs = timing.timed(
                lambda: self.fit_model(model, warm, epochs=1, verbose=0),
                lambda: timing.sync(model),
            )
            self.warmup_seconds.append(secs)
        w.phase("fit", repeat=repeat + 1, of=cell.repeats)
        feed = self.train_feed()
        timer = timing.make_epoch_timer()
        callbacks = [timer]
        if cell.step_delay_ms or cell.sync_every_step:
            callbacks.append(timing.make_step_delay(cell.step_delay_ms))
        hist, secs = timing.timed(
            lambda: self.fit_model(
                model, feed, epochs=epochs, verbose=2 if w.verbose else 0, callbacks=callbacks
            ),
            lambda: timing.sync(model),
        )
        self.model, self.feed = model, feed
        self.histories.append(_history(hist))
        if timer.nan_epoch is not None:
            w.result["train"] = {"history": self.histories}
            raise RuntimeError(f"loss became NaN at epoch {timer.nan_epoch}; fit stopped early")
        chunk, starts, ends = timing.DEFAULT_CHUNK, timer.epoch_starts, timer.batch_ends
        return Fit(
            seconds=secs,
            epoch_seconds=[round(s, 6) for s in timer.epoch_seconds],
            # Several processes step together: process 0's clock decides for all of them
            measured=w.parallel.agree(sum(timer.epoch_seconds)),
            chunks=[
                c
                for start, batch_ends in zip(starts, ends, strict=True)
                for c in timing.chunk_step_times(start, batch_ends, chunk)
            ],
            typical=timing.typical_samples_per_sec(starts, ends, cell.batch_size, chunk),
        )

    def exact_model(self) -> tuple[Any, dict[str, list[float]]]:
        """A model trained exactly the scenario's epochs, untimed, and its history."""
        self.w.phase("train")
        model = self.compiled_model()
        hist = self.fit_model(model, self.train_feed(), epochs=self.cell.epochs, verbose=0)
        return model, _history(hist)

    # --- the train result ----------------------------------------------------------------------

    def result(
        self,
        epochs: int,
        calibration: list[dict[str, Any]],
        shared: int | None,
        model: Any,
        trained: dict[str, list[float]] | None,
    ) -> dict[str, Any]:
        """The train result of the measured fits."""
        from . import model as model_mod  # imports keras: in the worker's import phase only

        cell, ds, histories = self.cell, self.ds, self.histories
        chunk = timing.DEFAULT_CHUNK
        fit_s = [f.seconds for f in self.fits]
        epoch_s = [f.epoch_seconds for f in self.fits]
        typical = [f.typical for f in self.fits if f.typical is not None]
        steps = len(ds.train_batches or ()) or math.ceil(ds.n_train / cell.batch_size)
        samples = ds.n_train * epochs
        # Steady state is the measured epochs themselves; what a fit call spends around them
        # (data adapter and iterator setup, callbacks) is reported apart as fit overhead.
        steady = [sum(e) for e in epoch_s]
        train = {
            "samples_per_sec": stats.summarize([samples / s for s in steady]),
            "ms_per_step": stats.summarize([1000 * s / (steps * epochs) for s in steady]),
            "steady_seconds": stats.summarize(steady),
            "fit_seconds": stats.summarize(fit_s),
            "fit_overhead_seconds": stats.summarize(
                [f - s for f, s in zip(fit_s, steady, strict=True)]
            ),
            "fit_samples_per_sec": stats.summarize([samples / s for s in fit_s]),
            # Per repeat: batch size / its median chunk's time per step. A burst of other work
            # on a shared machine slows some chunks, not the median one; a slowdown of every
            # step moves it fully (see `harness check --metric typical`).
            "typical_samples_per_sec": stats.summarize(typical) if typical else None,
            "epoch_seconds": epoch_s,
            "steps_per_epoch": steps,
            "samples_per_epoch": ds.n_train,
            "epochs": epochs,  # measured per repeat: the scenario's, or more for min_time
            "epochs_asked": cell.epochs,
            "min_time": cell.min_time,
            "calibration": calibration,  # the fits found too short: their epochs and seconds
            "epochs_from": self.w.options.epochs_from if shared else None,
            "repeats": self.repeats,
            "warmup": {
                "steps": cell.warmup_steps,
                "samples": self.n_warm,
                "seconds": stats.summarize(self.warmup_seconds) if self.warmup_seconds else None,
            },
            "history": histories,
            # of the model evaluated and saved: trained exactly `epochs_asked`
            "final_loss": (trained or histories[-1])["loss"][-1],
            "final_accuracy": (trained or histories[-1]).get("accuracy", [None])[-1],
            "model": cell.model,
            "flops_per_sample": model_mod.train_flops_per_sample(model),
            # layers the count leaves out: an efficiency figure from it is partial
            "flops_uncounted": model_mod.uncounted_layers(model),
            "step_time_ms": timing.step_time_summary(
                [c for f in self.fits for c in f.chunks], chunk
            ),
            "timing_method": timing.TIMING_METHOD.format(chunk=chunk)
            + (timing.SYNCED_NOTE if cell.step_delay_ms or cell.sync_every_step else ""),
            "keras_verbose": self.w.verbose,
        }
        train["noisy"] = train["samples_per_sec"]["noisy"]
        # Every repeat starts from the same seed: the loss histories must agree.
        first = histories[0]["loss"]
        train["repeat_loss_max_diff"] = max(
            (abs(a - b) for h in histories[1:] for a, b in zip(h["loss"], first, strict=True)),
            default=0.0,
        )
        return train

    # --- building and fitting ------------------------------------------------------------------

    def compiled_model(self):
        """A fresh model from the cell's seed, compiled as the cell asks."""
        from . import model as model_mod

        cell, keras = self.cell, self.keras
        keras.backend.clear_session()
        keras.utils.set_random_seed(cell.seed)
        with self.w.parallel.scope():  # data parallel: replicas built and compiled in its scope
            model = model_mod.build_model(
                cell.model,
                cell.python_path,
                self.w.task.cell,
                input_shape=self.ds.input_shape,
                num_classes=self.ds.num_classes,
            )
            model_mod.compile_model(
                model,
                model_mod.make_optimizer(cell.optimizer.name, dict(cell.optimizer.kwargs)),
                loss=model_mod.make_loss(cell.loss.name, dict(cell.loss.kwargs)),
                metrics=cell.metrics,
                jit_compile=cell.jit_compile,
                steps_per_execution=cell.steps_per_execution,
            )
        return model

    def fit_model(self, model, feed, *, epochs, verbose, callbacks=None):
        try:
            return model.fit(
                feed.x,
                feed.y,
                epochs=epochs,
                verbose=verbose,
                callbacks=callbacks,
                **feed.fit_kwargs,
            )
        except ValueError as exc:
            # Keras' own refusal (e.g. steps_per_execution > 1 under torch) is a property of
            # the backend, not a crash of the harness.
            if "must be 1 with the PyTorch backend" in str(exc):
                raise CellOutcome(Status.UNSUPPORTED, one_line(exc)) from None
            raise

    def train_feed(self, *, warmup: bool = False) -> data_mod.Feed:
        """What fit trains on: the pipeline over the training arrays (the warm-up: over its
        first warmup_steps batches and the last, partial one), or the user's own dataset
        object."""
        ds = self.ds
        if ds.train_object is not None:
            if warmup:
                return data_mod.Feed(userdata.warmup_feed(ds, self.cell.warmup_steps)[0])
            return data_mod.Feed(ds.train_object, steps=len(ds.train_batches))
        n = self.n_warm if warmup else ds.n_train
        return self.w.feed(ds.x_train[:n], ds.y_train[:n], shuffle=True)

    def sample_fits_finely(self, fits: float | None = None) -> None:
        """Sets the utilization sampler's interval so that the measured fits hold at least 10
        samples, never longer than the scenario's: from min_time before they start, from the
        first repeat's length once it is known (long fits go back to the scenario's)."""
        cell, sampler = self.cell, self.w.sampler
        fits = fits if fits is not None else cell.min_time * cell.repeats
        if sampler is not None and fits > 0:
            sampler.set_interval(min(cell.sample_interval, max(0.05, fits / 15)))


def warmup_samples(cell, ds: data_mod.Dataset) -> int:
    """Samples of the warm-up fit. It covers tracing/compilation of both batch shapes the
    measured fit will see (full batches and the last, partial one), so no retrace lands in
    the steady state."""
    if not cell.warmup_steps:
        return 0
    if ds.train_object is not None:
        return userdata.warmup_feed(ds, cell.warmup_steps)[1]
    rem = ds.n_train % cell.batch_size
    return min(ds.n_train, cell.warmup_steps * cell.batch_size + rem)


def _history(hist) -> dict[str, list[float]]:
    return {k: [float(x) for x in v] for k, v in hist.history.items()}
