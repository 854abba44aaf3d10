"""Runs ONE cell under ONE backend in THIS process: fit, evaluate, save, reload, predict.

Started by the runner as ``python -m harness.worker TASK.json RESULT.json`` with KERAS_BACKEND
and the device already set in the environment, so keras is imported here for the first time.
The result file is rewritten (atomically) after every phase: if the process dies, what it had
measured survives and the runner marks the result failed with the phase it died in.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .. import devices as device_strings
from .. import lifeline, results, workload
from ..backends import backend_versions
from ..errors import one_line
from ..gate import stats
from ..protocol import Task
from ..scenario import Cell, is_ref, label_problems, parallel_problems
from . import data as data_mod
from . import devices, parallel, timing, userdata
from .imports import source_digest

# A cell never measures more epochs than this to reach its min_time (its time limit still
# applies): a broken clock must not make a repeat run for ever.
MAX_EPOCHS = 10_000
MAX_CALIBRATIONS = 5


class CellOutcome(Exception):
    """Ends a cell early with a status other than "failed" (skipped / unsupported)."""

    def __init__(self, status: str, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


class Worker:
    def __init__(self, task: Task, out: Path, events_fd: int | None, verbose: bool):
        self.task = task
        self.options = task.options
        self.cell = Cell.from_json(task.cell)
        self.backend = task.backend
        self.out = out
        self.verbose = verbose
        self.events = os.fdopen(events_fd, "w", buffering=1) if events_fd is not None else None
        scenario = dataclasses.asdict(task.scenario)
        self.result = results.new_result(task.cell, self.backend, scenario)
        self.result["run_id"] = task.run_id
        self.result["environment"] = task.environment
        self.result["warnings"] = []
        if task.options.ab:
            self.result["ab"] = dataclasses.asdict(task.options.ab)
        if task.shard:
            self.result["shard"] = task.shard
        self.sampler = None
        self.parallel: parallel.Single = parallel.Single()
        self.ds: data_mod.Dataset | None = None

    # --- bookkeeping -----------------------------------------------------------------------

    def emit(self, **event: Any) -> None:
        if self.events is not None:
            with contextlib.suppress(OSError):  # the runner went away; keep measuring
                self.events.write(json.dumps(event) + "\n")

    def phase(self, name: str, **extra: Any) -> None:
        self.result["phase"] = name
        if self.sampler is not None:
            self.sampler.set_phase(name)
        self.emit(event="phase", phase=name, **extra)

    def _note_warnings(self, where: str, caught) -> None:
        """Keeps each distinct warning once, with how often it came."""
        notes = self.result["warnings"]
        for w in caught:
            text = f"{where}: {w.category.__name__}: {w.message}"
            for note in notes:
                if note["message"] == text:
                    note["count"] += 1
                    break
            else:
                notes.append({"message": text, "count": 1})

    def save(self) -> None:
        results.write_json_atomic(self.out, self.result, overwrite=True)

    # --- the cell ----------------------------------------------------------------------------

    def run(self) -> int:
        try:
            self._start_sampler()
            self._run_cell()
            self.result["status"] = "ok"
            self.result["reason"] = None
        except CellOutcome as outcome:
            self.result["status"] = outcome.status
            self.result["reason"] = outcome.reason
        except Exception as exc:
            self.result["status"] = "failed"
            self.result["reason"] = (
                f"{type(exc).__name__} in {self.result['phase']}: {one_line(exc, limit=500)}"
            )
            self.result["traceback"] = traceback.format_exc(limit=20)
        finally:
            self._stop_sampler()
            self.result["finished"] = results.utc_now()
            self.save()
        self.emit(event="done", status=self.result["status"])
        return 0

    def _start_sampler(self) -> None:
        """Samples this process and, for a GPU cell, only the GPU it trains on.

        A CPU cell samples no GPU: another process's load there would be counted as its own.
        The GPU is found by its UUID, from this worker's CUDA_VISIBLE_DEVICES entry, and
        recorded in result["device"]["gpu"] (with the reason when NVML cannot tell).
        """
        try:
            from .. import monitor

            kind, _ = device_strings.parse(self.cell.device)
            options: dict[str, Any] = {"gpus_off": "CPU cell"}
            if kind == "gpu":
                # data parallel: every GPU this process trains on
                count = self.cell.data_parallel // self.cell.data_parallel_processes
                gpus = monitor.identify_cell_gpus(count)
                self.result["device"] = {"requested": self.cell.device, "gpu": gpus[0]}
                if count > 1:
                    self.result["device"]["gpus"] = gpus
                unknown = next((g for g in gpus if g["uuid"] is None), None)
                if unknown is not None:  # sampling some other GPU would be worse than none
                    options = {"gpus_off": unknown["reason"]}
                else:
                    options = {"gpu_uuids": [g["uuid"] for g in gpus]}
            self.sampler = monitor.Sampler(interval=self.cell.sample_interval, **options)
            self.sampler.start()
        except Exception as exc:  # monitoring must never cost a measurement
            self.result["monitor"] = {"error": one_line(exc, typed=True)}
            self.sampler = None

    def _stop_sampler(self) -> None:
        if self.sampler is not None:
            try:
                self.result["monitor"] = self.sampler.stop()
            except Exception as exc:
                self.result["monitor"] = {"error": one_line(exc, typed=True)}

    def _run_cell(self) -> None:
        cell, backend = self.cell, self.backend
        self.phase("import")
        t0 = time.perf_counter()
        import keras

        self.result["import_seconds"] = round(time.perf_counter() - t0, 4)
        if keras.backend.backend() != backend:
            raise RuntimeError(f"asked for {backend} but keras runs {keras.backend.backend()}")
        env = self.result["environment"]
        env["keras"] = keras.__version__
        env["backend"] = backend
        env["backend_versions"] = backend_versions(backend)
        env["CUDA_VISIBLE_DEVICES"] = os.environ.get("CUDA_VISIBLE_DEVICES")

        self.phase("device")
        # _start_sampler may have recorded the GPU already: add to it.
        device = self.result.setdefault("device", {"requested": cell.device})
        # JAX's preallocation decides what its GPU memory readings mean (device_env sets it).
        device["jax_preallocate"] = (
            device_strings.jax_preallocates(os.environ) if backend == "jax" else None
        )
        # Before anything runs (listing GPUs starts TensorFlow's runtime): thread pools are
        # fixed once the runtime has started.
        try:
            devices.apply_settings(backend, threads=cell.threads, tf32=cell.tf32)
        except devices.SettingUnsupported as exc:
            raise CellOutcome("unsupported", str(exc)) from None
        self._start_parallel()
        try:
            self.result["device"]["visible_gpus"] = devices.require(cell.device, backend)
        except devices.DeviceUnavailable as exc:
            raise CellOutcome("skipped", str(exc)) from None

        self.phase("data")
        unsupported = data_mod.pipeline_available(cell.pipeline)
        if unsupported:
            raise CellOutcome("unsupported", unsupported)
        ds = self._load_data()
        self.result["data"] = {**ds.describe(), "pipeline": cell.pipeline}
        self.save()  # from here on, a worker that dies leaves what it knew
        if ds.train_object is not None and userdata.FORMS.get(cell.pipeline) != ds.form:
            raise CellOutcome(
                "unsupported",
                f"dataset {cell.dataset} gives a {ds.form}, its own pipeline: it runs with "
                f'pipeline = "{_pipeline_of(ds.form)}", not {cell.pipeline}',
            )
        if cell.batch_size > ds.n_train:
            raise CellOutcome(
                "skipped",
                f"batch_size {cell.batch_size} exceeds {ds.n_train} training samples",
            )
        problems = parallel_problems(cell, ds.n_train, len(ds.x_test))
        if problems:
            raise CellOutcome("unsupported", "; ".join(f"{k}: {m}" for k, m in problems))
        problems = label_problems(cell, ds.labels)
        if problems:  # a scenario mistake Keras would train on, or fail in fit with
            raise ValueError("; ".join(f"{k}: {m}" for k, m in problems))
        self.ds = ds

        if cell.precision != "float32":
            keras.mixed_precision.set_global_policy(cell.precision)
        self.result["train"] = self._train(keras, ds)
        self.result["workload"] = self._workload(ds)
        if self.options.train_only:
            # `harness ab` runs a worker per round and side, many processes: it gates on training
            # throughput, and the other phases would only lengthen each round.
            self.result["phases_skipped"] = ["evaluate", "predict", "efficiency", "save"]
            return
        model = self.model
        self.result["evaluate"] = self._evaluate(ds, model)
        self.save()
        if self.parallel.processes > 1:
            self.result["phases_skipped"] = ["predict", "efficiency", "save"]
            self.result["phases_skipped_reason"] = (
                "a multi-process cell: Keras' predict returns outputs that span processes, "
                "which no one process can fetch, so nothing could check a reloaded model"
            )
            return
        self.result["predict"] = self._predict(ds, model)
        self.save()
        try:
            self.result["efficiency"] = self._efficiency()
        except Exception as exc:  # the probe is an annotation; it must not cost the cell
            self.result["efficiency"] = {"error": one_line(exc, typed=True, limit=300)}
        self.save()
        self.result["save"] = self._save_reload(keras, ds, model)

    def _workload(self, ds: data_mod.Dataset) -> dict[str, Any]:
        """What this cell computed (see harness/workload.py): its settings, the model as
        built, the data as loaded and the backend settings that ran."""
        from . import model as model_mod

        cell = self.cell
        model = model_mod.architecture(self.model)
        if is_ref(cell.model):
            model["source"] = source_digest(cell.model)
        data = {
            k: v
            for k, v in ds.describe().items()
            if k not in ("source", "image_shape")  # a path of this host; the shape is below
        }
        data["x_dtype"] = str(ds.x_test.dtype)
        data["x_shape"] = list(ds.x_test.shape[1:])
        if is_ref(cell.dataset):
            data["source"] = source_digest(cell.dataset)
        ran = {k: v for k, v in (self.result.get("backend_settings") or {}).items() if k != "error"}
        return workload.record(self.task.cell, model=model, data=data, backend=ran)

    def _load_data(self) -> data_mod.Dataset:
        """The cell's dataset: a built-in one (skipped where it cannot be had here), or the
        user's own from its import reference."""
        cell = self.cell
        if is_ref(cell.dataset):
            return userdata.load(
                cell.dataset,
                cell.python_path,
                self.task.cell,
                batch_size=cell.batch_size,
                train_samples=cell.train_samples,
                test_samples=cell.test_samples,
            )
        try:
            return data_mod.load_dataset(
                cell.dataset,
                seed=cell.seed,
                train_samples=cell.train_samples,
                test_samples=cell.test_samples,
                data_path=cell.data_path,
            )
        except data_mod.DataUnavailable as exc:
            raise CellOutcome("skipped", str(exc)) from None

    # --- phases --------------------------------------------------------------------------------

    def _train(self, keras, ds) -> dict[str, Any]:
        from . import model as model_mod

        cell = self.cell
        n_train = ds.n_train
        n_warm = self._warmup_samples(ds)
        compile_s, fit_s, epoch_s, histories, chunks, typical = [], [], [], [], [], []
        chunk = timing.DEFAULT_CHUNK
        steps = len(ds.train_batches or ()) or math.ceil(n_train / cell.batch_size)
        shared = self._shared_epochs()
        epochs, calibration = shared or cell.epochs, []
        # `harness ab`'s calibrating worker stops once it has chosen: its fit is no value
        repeats = 1 if self.options.calibrate_only else cell.repeats
        self._sample_fits_finely()
        repeat = 0
        while repeat < repeats:
            self.phase("build", repeat=repeat + 1, of=repeats)
            model = self._compiled_model(keras, model_mod)
            if repeat == 0:
                self._check_placement(model)
                try:
                    self.result["backend_settings"] = devices.what_ran(self.backend, model)
                except Exception as exc:  # an annotation: it must not cost the measurement
                    self.result["backend_settings"] = {"error": one_line(exc, typed=True)}
            if n_warm:
                self.phase("warmup", repeat=repeat + 1, of=cell.repeats)
                warm = self._train_feed(ds, warmup=True)
                _, secs = timing.timed(
                    lambda m=model, w=warm: self._fit(m, w, epochs=1, verbose=0),
                    lambda m=model: timing.sync(m),
                )
                compile_s.append(secs)
            self.phase("fit", repeat=repeat + 1, of=cell.repeats)
            feed = self._train_feed(ds)
            timer = timing.make_epoch_timer()
            callbacks = [timer]
            if cell.step_delay_ms or cell.sync_every_step:
                callbacks.append(timing.make_step_delay(cell.step_delay_ms))
            hist, secs = timing.timed(
                lambda m=model, f=feed, c=callbacks, e=epochs: self._fit(
                    m, f, epochs=e, verbose=2 if self.verbose else 0, callbacks=c
                ),
                lambda m=model: timing.sync(m),
            )
            histories.append({k: [float(x) for x in v] for k, v in hist.history.items()})
            if timer.nan_epoch is not None:
                self.result["train"] = {"history": histories}
                raise RuntimeError(f"loss became NaN at epoch {timer.nan_epoch}; fit stopped early")
            # Several processes step together: process 0's clock decides for all of them
            measured = self.parallel.agree(sum(timer.epoch_seconds))
            if (
                repeat == 0
                and not shared
                and measured < cell.min_time
                and len(calibration) < MAX_CALIBRATIONS
                and epochs < MAX_EPOCHS
            ):
                # Too short to mean anything (timeit's autorange): try enough epochs for
                # min_time, with a margin, the first repeat again from scratch, until one
                # fit lasts that long (a first fit can be slower than the steady ones).
                calibration.append({"epochs": epochs, "seconds": round(measured, 6)})
                scale = 1.2 * cell.min_time / max(measured, 1e-6)
                epochs = min(MAX_EPOCHS, max(epochs + 1, math.ceil(epochs * scale)))
                histories.pop()  # its warm-up stays: the first is the cold compile
                if self.sampler is not None:  # its utilization is not the measured fits'
                    self.sampler.rename_phase("fit", "calibrate")
                continue
            repeat += 1
            fit_s.append(secs)
            epoch_s.append([round(s, 6) for s in timer.epoch_seconds])
            for start, ends in zip(timer.epoch_starts, timer.batch_ends, strict=True):
                chunks.extend(timing.chunk_step_times(start, ends, chunk))
            rate = timing.typical_samples_per_sec(
                timer.epoch_starts, timer.batch_ends, cell.batch_size, chunk
            )
            if rate is not None:
                typical.append(rate)
            self.result["train"] = {"fit_seconds": fit_s, "history": histories}
            self.save()
            if repeat == 1:  # the measured fits' length is known: sample them, not more
                self._sample_fits_finely(measured * repeats)
                if cell.pipeline == "tf.data" and "error" not in self.result["backend_settings"]:
                    # TensorFlow's pools feed it under any backend: the pool it really got
                    # (None: TensorFlow's shared default, a thread per core)
                    pool = data_mod.tf_data_threads(feed.x)
                    self.result["backend_settings"]["tf_data_threads"] = pool
        trained = None
        if epochs != cell.epochs and not self.options.train_only:
            # min_time measured more epochs than the scenario asks; what is evaluated, saved
            # and loaded elsewhere is the model of exactly `epochs`, as under every backend.
            self.phase("train")  # untimed: the model of exactly `epochs`
            model = self._compiled_model(keras, model_mod)
            hist = self._fit(model, self._train_feed(ds), epochs=cell.epochs, verbose=0)
            trained = {k: [float(x) for x in v] for k, v in hist.history.items()}
        self.model = model
        samples = n_train * epochs
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
            "samples_per_epoch": n_train,
            "epochs": epochs,  # measured per repeat: the scenario's, or more for min_time
            "epochs_asked": cell.epochs,
            "min_time": cell.min_time,
            "calibration": calibration,  # the fits found too short: their epochs and seconds
            "epochs_from": self.options.epochs_from if shared else None,
            "repeats": repeats,
            "warmup": {
                "steps": cell.warmup_steps,
                "samples": n_warm,
                "seconds": stats.summarize(compile_s) if compile_s else None,
            },
            "history": histories,
            # of the model evaluated and saved: trained exactly `epochs_asked`
            "final_loss": (trained or histories[-1])["loss"][-1],
            "final_accuracy": (trained or histories[-1]).get("accuracy", [None])[-1],
            "model": cell.model,
            "flops_per_sample": model_mod.train_flops_per_sample(model),
            # layers the count leaves out: an efficiency figure from it is partial
            "flops_uncounted": model_mod.uncounted_layers(model),
            "step_time_ms": timing.step_time_summary(chunks, chunk),
            "timing_method": timing.TIMING_METHOD.format(chunk=chunk)
            + (timing.SYNCED_NOTE if cell.step_delay_ms or cell.sync_every_step else ""),
            "keras_verbose": self.verbose,
        }
        train["noisy"] = train["samples_per_sec"]["noisy"]
        # Every repeat starts from the same seed: the loss histories must agree.
        first = histories[0]["loss"]
        train["repeat_loss_max_diff"] = max(
            (abs(a - b) for h in histories[1:] for a, b in zip(h["loss"], first, strict=True)),
            default=0.0,
        )
        return train

    def _shared_epochs(self) -> int | None:
        """`harness ab`: the epochs its calibrating worker chose for min_time, so that every
        round of both sides measures the same work; None where there is none to take (that
        worker failed before it chose): this one calibrates for itself, and says so."""
        path = self.options.epochs_from
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
        self.result["warnings"].append(
            {"message": f"epochs_from {path}: {why}; calibrated here instead", "count": 1}
        )
        return None

    def _compiled_model(self, keras, model_mod):
        """A fresh model from the cell's seed, compiled as the cell asks."""
        cell = self.cell
        keras.backend.clear_session()
        keras.utils.set_random_seed(cell.seed)
        with self.parallel.scope():  # data parallel: replicas built and compiled in its scope
            model = model_mod.build_model(
                cell.model,
                cell.python_path,
                self.task.cell,
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

    def _sample_fits_finely(self, fits: float | None = None) -> None:
        """Sets the utilization sampler's interval so that the measured fits hold at least 10
        samples, never longer than the scenario's: from min_time before they start, from the
        first repeat's length once it is known (long fits go back to the scenario's)."""
        cell = self.cell
        fits = fits if fits is not None else cell.min_time * cell.repeats
        if self.sampler is not None and fits > 0:
            self.sampler.set_interval(min(cell.sample_interval, max(0.05, fits / 15)))

    def _fit(self, model, feed, *, epochs, verbose, callbacks=None):
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
                raise CellOutcome("unsupported", one_line(exc)) from None
            raise

    def _train_feed(self, ds: data_mod.Dataset, *, warmup: bool = False) -> data_mod.Feed:
        """What fit trains on: the pipeline over the training arrays (the warm-up: over its
        first warmup_steps batches and the last, partial one), or the user's own dataset
        object."""
        if ds.train_object is not None:
            if warmup:
                return data_mod.Feed(userdata.warmup_feed(ds, self.cell.warmup_steps)[0])
            return data_mod.Feed(ds.train_object, steps=len(ds.train_batches))
        n = self._warmup_samples(ds) if warmup else ds.n_train
        return self._feed(ds.x_train[:n], ds.y_train[:n], shuffle=True)

    def _warmup_samples(self, ds: data_mod.Dataset) -> int:
        """Samples of the warm-up fit. It covers tracing/compilation of both batch shapes the
        measured fit will see (full batches and the last, partial one), so no retrace lands
        in the steady state."""
        cell = self.cell
        if not cell.warmup_steps:
            return 0
        if ds.train_object is not None:
            return userdata.warmup_feed(ds, cell.warmup_steps)[1]
        rem = ds.n_train % cell.batch_size
        return min(ds.n_train, cell.warmup_steps * cell.batch_size + rem)

    def _feed(self, x, y, *, shuffle):
        """The pipeline over ``x``/``y``; in a multi-process cell, over this process's equal
        share of them, in batches of its share of the global batch."""
        procs, batch = self.parallel.processes, self.cell.batch_size
        if procs > 1:
            share, me = len(x) // procs, self.parallel.process_id
            x = x[me * share : (me + 1) * share]
            y = None if y is None else y[me * share : (me + 1) * share]
            batch //= procs
        return data_mod.make_feed(
            self.cell.pipeline,
            x,
            y,
            batch_size=batch,
            shuffle=shuffle,
            seed=self.cell.seed,
            threads=self.cell.threads,
            prepare=not self.ds.ready,
        )

    def _start_parallel(self) -> None:
        """Data parallel: sets up Keras' engine for it (before anything runs), or ends the
        cell unsupported with the reason."""
        cell = self.cell
        if cell.data_parallel_processes > 1 and cell.pipeline != "numpy":
            raise CellOutcome(
                "unsupported",
                f"pipeline {cell.pipeline}: a multi-process cell feeds each process its share "
                "of numpy arrays; the harness does not shard other pipelines",
            )
        kind, _ = device_strings.parse(cell.device)
        scenario = self.task.scenario.name
        # What the processes must share: settings of the host's own (a local data file, time
        # limits, sampling) may differ between hosts.
        local = ("data_path", "time_limit", "sample_interval", "jax_preallocate")
        shared = {k: v for k, v in self.task.cell.items() if k not in local}
        identity = f"{scenario}/{cell.id}--{self.backend} " + json.dumps(shared, sort_keys=True)
        try:
            self.parallel = parallel.start(
                self.backend, kind, cell.data_parallel, cell.data_parallel_processes, identity
            )
        except parallel.Unsupported as exc:  # Missing too
            if kind == "gpu":
                # A broken CUDA stack shows here first, as no GPU devices: where a GPU is
                # there, that is a failure (GpuUnusable), not the engine's skip.
                with contextlib.suppress(devices.DeviceUnavailable):
                    devices.require(cell.device, self.backend)
            missing = isinstance(exc, parallel.Missing)
            raise CellOutcome("skipped" if missing else "unsupported", str(exc)) from None
        info = self.parallel.describe()
        if info is not None:
            info["global_batch"] = cell.batch_size
            info["per_device_batch"] = cell.batch_size // cell.data_parallel
            self.result["distribution"] = info

    def _check_placement(self, model) -> None:
        replicas = self.parallel.replicas(model.trainable_weights[0])
        if replicas is not None:
            # Data parallel: a replica of every variable on each device of the engine.
            want = self.parallel.devices
            kind, _ = device_strings.parse(self.cell.device)
            self.result["device"]["replicas_on"] = replicas
            self.result["device"]["variables_on"] = "cpu" if kind == "cpu" else ",".join(replicas)
            if len(set(replicas)) != want or not all(r.startswith(kind) for r in replicas):
                raise RuntimeError(
                    f"the first variable has replicas on {replicas}, not on {want} distinct "
                    f"{kind} devices as data_parallel = {want} asks"
                )
            return
        actual = devices.variable_device(model.trainable_weights[0], self.backend)
        self.result["device"]["variables_on"] = actual
        if not devices.matches(self.cell.device, actual):
            # Never substitute a device silently: a GPU cell that trains on the CPU is a failure.
            raise RuntimeError(f"variables live on {actual}, but {self.cell.device} was requested")

    def _evaluate(self, ds, model) -> dict[str, Any]:
        self.phase("evaluate")
        cell = self.cell
        sync = lambda: timing.sync(model)  # noqa: E731
        # Warm-up on one full and one partial batch: the timed call then runs compiled code.
        n_warm = cell.batch_size + len(ds.x_test) % cell.batch_size
        warm = self._feed(ds.x_test[:n_warm], ds.y_test[:n_warm], shuffle=False)
        model.evaluate(warm.x, warm.y, verbose=0, **_eval_kwargs(warm))
        feed = self._feed(ds.x_test, ds.y_test, shuffle=False)
        out, secs = timing.timed(
            lambda: model.evaluate(
                feed.x, feed.y, verbose=0, return_dict=True, **_eval_kwargs(feed)
            ),
            sync,
        )
        return {
            "loss": float(out["loss"]),
            "accuracy": float(out["accuracy"]) if "accuracy" in out else None,
            "metrics": {k: float(v) for k, v in out.items() if k != "loss"},
            "seconds": round(secs, 6),
            "samples_per_sec": round(len(ds.x_test) / secs, 2),
        }

    def _efficiency(self) -> dict[str, Any]:
        """Achieved training FLOP/s against a matmul probe of the model's shape on this device."""
        from . import probe

        self.phase("probe")
        train = self.result["train"]
        if not train["flops_per_sample"]:
            raise ValueError(
                "no layer's FLOPs could be counted (a subclassed model has no graph to read; "
                f"uncounted: {', '.join(train['flops_uncounted'])}): no efficiency figure"
            )
        achieved = train["flops_per_sample"] * train["samples_per_sec"]["median"]
        # Data parallel on N GPUs: each multiplies its share of the batch, and N of them can
        # reach N times what one does. Simulated CPU devices share the one CPU: its probe at
        # the global batch stays the reference.
        kind, _ = device_strings.parse(self.cell.device)
        devices = self.cell.data_parallel if kind == "gpu" else 1
        batch = self.cell.batch_size // devices
        peak = probe.matmul_rate(self.backend, batch, 784, 128, precision=self.cell.precision)
        out = {
            "flops_per_sample": train["flops_per_sample"],
            "achieved_flops_per_sec": round(achieved),
            "probe": peak,
            "probe_devices": devices,
            "fraction_of_probe": round(achieved / (devices * peak["flops_per_sec"]), 4),
            "partial": bool(train.get("flops_uncounted")),  # some layers' FLOPs not counted
        }
        if self.cell.device == "cpu":  # numpy's BLAS is the reference a CPU user knows
            ref = probe.matmul_rate("numpy", batch, 784, 128, seconds=0.2)
            out["numpy_probe"] = ref
            out["fraction_of_numpy"] = round(achieved / ref["flops_per_sec"], 4)
        return out

    def _predict(self, ds, model) -> dict[str, Any]:
        self.phase("predict")
        probs, secs = self._predict_timed(model, ds.x_test)
        classes = np.argmax(probs, axis=-1)
        self._probs = probs
        truth = ds.y_test if ds.y_test.ndim == 1 else np.argmax(ds.y_test, axis=-1)
        return {
            "seconds": round(secs, 6),
            "samples_per_sec": round(len(ds.x_test) / secs, 2),
            "argmax_accuracy": float(np.mean(classes == truth)),
            "output_shape": list(probs.shape),
        }

    def _predict_timed(self, model, x):
        n_warm = self.cell.batch_size + len(x) % self.cell.batch_size
        warm = self._feed(x[:n_warm], None, shuffle=False)
        model.predict(warm.x, verbose=0, **_eval_kwargs(warm))
        feed = self._feed(x, None, shuffle=False)
        start = time.perf_counter()
        probs = model.predict(feed.x, verbose=0, **_eval_kwargs(feed))  # numpy: already synced
        return np.asarray(probs), time.perf_counter() - start

    def _save_reload(self, keras, ds, model) -> dict[str, Any]:
        out: dict[str, Any] = {}
        folder = Path(self.task.artifacts_dir or self.out.parent / "models")
        folder.mkdir(parents=True, exist_ok=True)
        # Scenario in the name: two scenarios may have a cell of the same id.
        stem = f"{self.task.scenario.name}--{self.out.stem}"
        # Reference predictions let another backend check it loads this model faithfully.
        from ..results import REFERENCE_SAMPLES, reference_inputs, reference_paths

        np.save(reference_paths(folder / f"{stem}.keras"), self._probs[:REFERENCE_SAMPLES])
        # ... and the inputs they came from, as the model sees them (the user's dataset
        # function need not run again there)
        x = ds.x_test[:REFERENCE_SAMPLES]
        np.save(
            reference_inputs(folder / f"{stem}.keras"), x if ds.ready else data_mod.preprocess(x)
        )
        for fmt in ("keras", "h5"):
            path = folder / f"{stem}.{fmt}"
            self.phase("save", format=fmt)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                start = time.perf_counter()
                model.save(path)
                save_s = time.perf_counter() - start
            self._note_warnings(f"save .{fmt}", caught)
            self.phase("reload", format=fmt)
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
                self.result["save"] = out
                self.save()
                continue
            load_s = time.perf_counter() - start
            self._note_warnings(f"load .{fmt}", caught)
            probs = np.asarray(
                loaded.predict(self._feed(ds.x_test, None, shuffle=False).x, verbose=0)
            )
            diff = float(np.max(np.abs(probs - self._probs)))
            out[fmt] = {
                "path": str(path),
                "bytes": path.stat().st_size,
                "save_seconds": round(save_s, 6),
                "load_seconds": round(load_s, 6),
                "max_abs_diff": diff,
                "predictions_match": diff <= 1e-6,
            }
            self.result["save"] = out
            self.save()
        return out


def _pipeline_of(form: str) -> str:
    return next(k for k, v in userdata.FORMS.items() if v == form)


def _eval_kwargs(feed) -> dict[str, Any]:
    kwargs = dict(feed.fit_kwargs)
    kwargs.pop("shuffle", None)
    return kwargs


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The worker protocol's command line (the runner's side is in ``Runner.run_job``)."""
    parser = argparse.ArgumentParser(prog="python -m harness.worker")
    parser.add_argument("task", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--events-fd", type=int)
    parser.add_argument("--verbose", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    # First: a worker must not outlive the orchestrator that started it (lifeline.py).
    lifeline.tie_to_parent()
    args = parse_args(argv)
    worker = Worker(Task.read(args.task), args.out, args.events_fd, args.verbose)
    code = worker.run()
    if worker.parallel.processes > 1 and worker.result["status"] != "ok":
        # Its result is written. Exiting normally would wait at jax.distributed's shutdown
        # barrier (minutes) for peers that may wait in a collective for this process.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code
