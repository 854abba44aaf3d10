"""Runs ONE cell under ONE backend in THIS process: the worker's life and its phases in order
(import, device, data, then train.py's train phase and evaluate.py's later ones).

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
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from .. import devices as device_strings
from .. import lifeline, results, workload
from ..backends import backend_versions
from ..errors import one_line
from ..protocol import Task
from ..results import Status
from ..scenario import Cell, is_ref, label_problems, parallel_problems
from . import backends, devices, evaluate, parallel, train, userdata
from . import data as data_mod
from .imports import source_digest
from .outcome import CellOutcome as CellOutcome  # raised by every phase


class Worker:
    """One cell's worker: its task, its result (rewritten after each phase), the events it
    sends the runner, its utilization sampler and its data-parallel engine."""

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

    def note_warnings(self, where: str, caught) -> None:
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
            self.result["status"] = Status.OK
            self.result["reason"] = None
        except CellOutcome as outcome:
            self.result["status"] = outcome.status
            self.result["reason"] = outcome.reason
        except Exception as exc:
            self.result["status"] = Status.FAILED
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
        keras = self._import_keras()
        self._set_up_device()
        ds = self.ds = self._data()
        if self.cell.precision != "float32":
            keras.mixed_precision.set_global_policy(self.cell.precision)
        self.result["train"], self.model = train.Training(self, keras, ds).run()
        self.result["workload"] = self._workload(ds)
        if self.options.train_only:
            # `harness ab` runs a worker per round and side, many processes: it gates on training
            # throughput, and the other phases would only lengthen each round.
            self.result["phases_skipped"] = ["evaluate", "predict", "efficiency", "save"]
            return
        model = self.model
        self.result["evaluate"] = evaluate.evaluate(self, ds, model)
        self.save()
        if self.parallel.processes > 1:
            self.result["phases_skipped"] = ["predict", "efficiency", "save"]
            self.result["phases_skipped_reason"] = (
                "a multi-process cell: Keras' predict returns outputs that span processes, "
                "which no one process can fetch, so nothing could check a reloaded model"
            )
            return
        self.result["predict"], probs = evaluate.predict(self, ds, model)
        self.save()
        try:
            self.result["efficiency"] = evaluate.efficiency(self)
        except Exception as exc:  # the probe is an annotation; it must not cost the cell
            self.result["efficiency"] = {"error": one_line(exc, typed=True, limit=300)}
        self.save()
        self.result["save"] = evaluate.save_reload(self, keras, ds, model, probs)

    def _import_keras(self):
        """The import phase: keras, for the first time in this process, and its versions."""
        backend = self.backend
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
        return keras

    def _set_up_device(self) -> None:
        """The device phase: the backend's settings, the data-parallel engine, the GPU check."""
        cell, backend = self.cell, self.backend
        self.phase("device")
        # _start_sampler may have recorded the GPU already: add to it.
        device = self.result.setdefault("device", {"requested": cell.device})
        # JAX's preallocation decides what its GPU memory readings mean (device_env sets it).
        device["jax_preallocate"] = backends.get(backend).preallocates(os.environ)
        # Before anything runs (listing GPUs starts TensorFlow's runtime): thread pools are
        # fixed once the runtime has started.
        try:
            devices.apply_settings(backend, threads=cell.threads, tf32=cell.tf32)
        except devices.SettingUnsupported as exc:
            raise CellOutcome(Status.UNSUPPORTED, str(exc)) from None
        self._start_parallel()
        try:
            self.result["device"]["visible_gpus"] = devices.require(cell.device, backend)
        except devices.DeviceUnavailable as exc:
            raise CellOutcome(Status.SKIPPED, str(exc)) from None

    def _data(self) -> data_mod.Dataset:
        """The data phase: the dataset, and the checks that the cell can run on it."""
        cell = self.cell
        self.phase("data")
        unsupported = data_mod.pipeline_available(cell.pipeline)
        if unsupported:
            raise CellOutcome(Status.UNSUPPORTED, unsupported)
        ds = self._load_data()
        self.result["data"] = {**ds.describe(), "pipeline": cell.pipeline}
        self.save()  # from here on, a worker that dies leaves what it knew
        if ds.train_object is not None and userdata.FORMS.get(cell.pipeline) != ds.form:
            raise CellOutcome(
                Status.UNSUPPORTED,
                f"dataset {cell.dataset} gives a {ds.form}, its own pipeline: it runs with "
                f'pipeline = "{_pipeline_of(ds.form)}", not {cell.pipeline}',
            )
        if cell.batch_size > ds.n_train:
            raise CellOutcome(
                Status.SKIPPED,
                f"batch_size {cell.batch_size} exceeds {ds.n_train} training samples",
            )
        problems = parallel_problems(cell, ds.n_train, len(ds.x_test))
        if problems:
            raise CellOutcome(Status.UNSUPPORTED, "; ".join(f"{k}: {m}" for k, m in problems))
        problems = label_problems(cell, ds.labels)
        if problems:  # a scenario mistake Keras would train on, or fail in fit with
            raise ValueError("; ".join(f"{k}: {m}" for k, m in problems))
        return ds

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
            return data_mod.load_for_cell(cell)
        except data_mod.DataUnavailable as exc:
            raise CellOutcome(Status.SKIPPED, str(exc)) from None

    def feed(self, x, y, *, shuffle):
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
                Status.UNSUPPORTED,
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
            status = Status.SKIPPED if missing else Status.UNSUPPORTED
            raise CellOutcome(status, str(exc)) from None
        info = self.parallel.describe()
        if info is not None:
            info["global_batch"] = cell.batch_size
            info["per_device_batch"] = cell.batch_size // cell.data_parallel
            self.result["distribution"] = info

    def check_placement(self, model) -> None:
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


def _pipeline_of(form: str) -> str:
    return next(k for k, v in userdata.FORMS.items() if v == form)


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
    if worker.parallel.processes > 1 and worker.result["status"] != Status.OK:
        # Its result is written. Exiting normally would wait at jax.distributed's shutdown
        # barrier (minutes) for peers that may wait in a collective for this process.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code
