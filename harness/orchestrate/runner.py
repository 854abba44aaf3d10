"""The runner: a run's jobs in order, one fresh worker process per (cell, backend) (or one per
process of a multi-process cell), results collected as files; on ``--resume``, only what is
unfinished runs again.

It never imports keras or a backend. A worker that crashes, is killed or runs past its time
limit costs only its own cell: the cell's result records the failure (with whatever the worker
had measured), and the other cells still run. Its parts: jobs.py plans, progress.py draws the
progress line, processes.py starts, watches and stops the workers, collect.py makes the cell's
result of what they left.
"""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from .. import results
from ..environment import environment as probe_environment
from ..lifeline import child_env
from ..protocol import ScenarioRef, Task
from ..results import Status
from . import collect, processes
from .jobs import Job
from .progress import Progress, summary_line

# The module a worker process runs: always the harness's own worker, whatever the environment
# says (a worker's result is believed by reports and the gate). The runner's own fault tests
# set this attribute in their process (tests/stub_harness.py), to a stub with no backend.
WORKER_MODULE = "harness.worker"


class Runner:
    def __init__(
        self,
        jobs: list[Job],
        run_dir: Path,
        *,
        verbose: bool = False,
        progress_stream: TextIO = sys.stderr,
        environment: dict[str, Any] | None = None,
        retry_failed: bool = False,
        coordinator: str | None = None,
        processes_here: list[int] | None = None,
        shard: str | None = None,
    ):
        self.jobs = jobs
        self.shard = shard  # "K/N" of `harness run --shard`: recorded in every result
        # Multi-process cells: the coordinator's address (default: loopback, a free port per
        # cell) and the processes started here (default: all; the others join from other
        # hosts with `harness worker-join`).
        self.coordinator = coordinator
        self.processes_here = processes_here
        # The multi-process jobs in plan order: the k-th meets at the coordinator's port + k.
        self.multi = [j for j in jobs if j.cell.data_parallel_processes > 1]
        self.run_dir = Path(run_dir)
        self.verbose = verbose
        self.retry_failed = retry_failed
        self.progress = Progress(len(jobs), progress_stream)
        self.environment = environment if environment is not None else probe_environment()
        self.interrupted = False

    def result_path(self, job: Job) -> Path:
        return self.run_dir / job.relpath

    def run(self) -> list[dict[str, Any]]:
        """Runs every job not already recorded in the run folder; returns all results."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        out: list[dict[str, Any]] = []
        previous = signal.signal(signal.SIGTERM, processes.raise_interrupt)
        try:
            for index, job in enumerate(self.jobs, 1):
                path = self.record_path(job)
                if path.exists():  # --resume: a finished cell is never run (or overwritten) again
                    doc = results.read_result(path)
                    if self.is_done(doc):
                        out.append(doc)
                        self.progress.finish_cell(
                            0.0, summary_line(index, len(self.jobs), job, doc)
                        )
                        continue
                    self._set_aside(job, path, doc)
                try:
                    out.append(self.run_job(index, job, path))
                except KeyboardInterrupt:
                    self.interrupted = True
                if self.interrupted:
                    break
        finally:
            signal.signal(signal.SIGTERM, previous)
        return out

    def is_done(self, doc: dict[str, Any]) -> bool:
        """Whether a recorded result stands on resume. One that never finished (its worker or
        the orchestrator died first) or was interrupted is run again; a finished failure is a
        result, run again only with ``retry_failed``."""
        if doc.get("finished") is None or doc["status"] == Status.INTERRUPTED:
            return False
        procs = (doc.get("cell") or {}).get("data_parallel_processes", 1)
        merged = "process_results" in (doc.get("distribution") or {})
        if procs > 1 and not merged and doc["status"] not in results.NOT_RUN:
            return False  # the orchestrator died before it merged the processes' views
        return not (self.retry_failed and doc["status"] == Status.FAILED)

    def _set_aside(self, job: Job, path: Path, doc: dict[str, Any]) -> None:
        """Moves an attempt that is run again, with its log and task, into logs/ as
        ``*.attempt-STAMP.*``, out of the reports' way: what it had measured stays on record."""
        stamp = re.sub(r"\W", "", doc.get("started") or "") or results.utc_now()
        log = self.log_path(job)
        attempt = log.with_name(f"{log.stem}.attempt-{stamp}")
        files = [(log, ".log"), (log.with_suffix(".task.json"), ".task.json")]
        for i in range(1, job.cell.data_parallel_processes):  # every process's files
            out, plog = self.process_paths(job, i, path, log)
            files += [(out, f".process{i}.json"), (plog, f".process{i}.log")]
        for old, suffix in files:
            if old.exists() and old != path:
                os.replace(old, attempt.with_name(attempt.name + suffix))
        if doc.get("log"):  # its own log: process 0's, or a joining process's
            own = Path(doc["log"]).name.removeprefix(log.stem)
            doc["log"] = str(attempt.with_name(attempt.name + own))
        doc.pop("_path", None)
        results.write_json_atomic(attempt.with_name(attempt.name + ".json"), doc, overwrite=True)
        path.unlink()

    def log_path(self, job: Job) -> Path:
        prefix = job.subdir.replace("/", "-") + "--" if job.subdir else ""
        return self.run_dir / "logs" / f"{prefix}{job.scenario.name}--{job.file_stem}.log"

    def task(self, job: Job) -> Task:
        """What the worker of a job is told (the processes' ids are added where several run
        here)."""
        return Task(
            cell=job.cell.to_json(),
            backend=job.backend,
            scenario=ScenarioRef(job.scenario.name, job.scenario.description, job.scenario.path),
            run_id=self.run_dir.name,
            environment=self.environment,
            artifacts_dir=str(self.run_dir / "models"),
            shard=self.shard,
            options=job.options,
        )

    def run_job(self, index: int, job: Job, path: Path) -> dict[str, Any]:
        from .. import devices as dev

        task = self.task(job)
        log_path = self.log_path(job)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        cell = job.cell
        procs = cell.data_parallel_processes
        ids = self.process_ids(job)
        try:
            envs = [
                dev.device_env(
                    cell.device,
                    job.backend,
                    jax_preallocate=cell.jax_preallocate,
                    devices=cell.data_parallel // procs,
                    process=here,
                )
                for here in range(len(ids))
            ]
        except dev.DeviceUnavailable as exc:  # gpu:N beyond the GPUs this runner was given
            return self.skip(index, job, path, str(exc), "device")
        if procs > 1:  # keras.distribution.initialize reads these (parallel.py)
            address = self.address(job)
            for i, env in zip(ids, envs, strict=True):
                env.update(
                    KERAS_DISTRIBUTION_JOB_ADDRESSES=address,
                    KERAS_DISTRIBUTION_NUM_PROCESSES=str(procs),
                    KERAS_DISTRIBUTION_PROCESS_ID=str(i),
                )
            task = dataclasses.replace(task, processes_here=ids)
        # Beside the log, not in /tmp: what the worker was told stays with the run, and a
        # harness killed outright leaves nothing behind elsewhere.
        task_path = log_path.with_suffix(".task.json")
        task.write(task_path)
        read_fd, write_fd = os.pipe()
        state = {"phase": "starting"}
        started = time.monotonic()
        module = WORKER_MODULE
        # The first process here reports its phases; it alone writes `path` and `log_path`
        # (process 0 where it runs here; the others' files go to logs/, out of reports).
        files = [self.process_paths(job, i, path, log_path) for i in ids]
        envs = [child_env(env) for env in envs]
        for out, _ in files[1:]:  # an older attempt's view must not be merged in
            out.unlink(missing_ok=True)
        logs: list = []
        try:
            for _, lp in files:
                logs.append(open(lp, "w"))  # noqa: SIM115 - closed below
        except OSError:
            for log in logs:
                log.close()
            raise
        try:
            # From the workers' start until the result is written, Ctrl-C and SIGTERM are
            # noted, not raised: the watch loop sees them and stops the workers, and no line
            # between can leave a worker running or its result unwritten.
            with processes.signals_held() as held:
                launches = []
                for n, ((out, _), env, log) in enumerate(zip(files, envs, logs, strict=True)):
                    cmd = [job.python or sys.executable, "-m", module, str(task_path), str(out)]
                    if n == 0:
                        cmd += ["--events-fd", str(write_fd)]
                    if self.verbose:
                        cmd.append("--verbose")
                    launches.append((cmd, env, log))
                workers = processes.start_workers(launches, (read_fd, write_fd), self.verbose)
                running = [(i, p, out) for i, p, (out, _) in zip(ids, workers, files, strict=True)]
                reader = processes.follow_events(read_fd, state)
                outcome = self._watch(running, index, job, state, started, held)
                processes.kill_all(workers)  # after normal exits, what they left
                reader.join(timeout=2)
                record, record_log = files[0]
                blank = self._skeleton(job)
                doc = collect.finalize(
                    record, workers[0].returncode, outcome, state, record_log, blank
                )
                if doc["status"] == Status.FAILED and doc.get("phase") == "device":
                    collect.quote_log(doc, record, record_log)
                if state.get("peer_status") and doc["status"] == Status.FAILED:
                    doc["status"] = state["peer_status"]  # skipped / unsupported, with why
                if procs > 1:
                    doc = collect.merge_processes(
                        job, doc, record, running, [lp for _, lp in files]
                    )
                self.progress.finish_cell(
                    time.monotonic() - started, summary_line(index, len(self.jobs), job, doc)
                )
            if held:
                self.interrupted = True
        finally:
            for log in logs:
                log.close()
        return doc

    def _watch(
        self,
        running: list[tuple[int, Any, Path]],
        index: int,
        job: Job,
        state: dict[str, Any],
        started: float,
        held: list,
    ) -> str | None:
        """Waits for a job's workers (``processes.watch``), its phase on the progress line."""

        def show(phase: str) -> None:
            self.progress.show(self.progress.line(index, job, phase, started), phase)

        return processes.watch(running, job.cell, state, started, held, show)

    def skip(self, index: int, job: Job, path: Path, reason: str, phase: str) -> dict[str, Any]:
        """Records a cell as skipped without starting a worker."""
        doc = self._skeleton(job)
        doc.update(status=Status.SKIPPED, reason=reason, phase=phase)
        doc["finished"] = results.utc_now()
        results.write_json_atomic(path, doc, overwrite=True)
        doc["_path"] = str(path)
        self.progress.finish_cell(0.0, summary_line(index, len(self.jobs), job, doc))
        return doc

    def _skeleton(self, job: Job) -> dict[str, Any]:
        return collect.skeleton(job, self.run_dir.name, self.environment, self.shard)

    def address(self, job: Job) -> str:
        """The coordinator's address for a multi-process job: a free port on loopback, or,
        with ``coordinator``, its host and its port plus the job's index among the
        multi-process jobs: a process that joins another cell than its peers' (a host that
        skipped one) meets no one there, never the wrong cell."""
        if not self.coordinator:
            return f"127.0.0.1:{processes.free_port()}"
        host, _, port = self.coordinator.rpartition(":")
        index = next(n for n, j in enumerate(self.multi) if j is job)
        return f"{host}:{int(port) + index}"

    def process_ids(self, job: Job) -> list[int]:
        """The processes of a job that run on this machine: all of them, unless
        ``processes_here`` says which (the others join from elsewhere)."""
        procs = job.cell.data_parallel_processes
        if procs == 1:
            return [0]
        ids = [i for i in self.processes_here if i < procs] if self.processes_here else []
        return ids or list(range(procs))

    def process_paths(self, job: Job, i: int, path: Path, log_path: Path) -> tuple[Path, Path]:
        """The result and log of a job's process ``i``: the job's own for process 0, files
        in logs/ for the others (their views are merged into process 0's result)."""
        if i == 0:
            return path, log_path
        return (
            log_path.with_name(f"{log_path.stem}.process{i}.json"),
            log_path.with_name(f"{log_path.stem}.process{i}.log"),
        )

    def record_path(self, job: Job) -> Path:
        """The file that says whether a job is done here (for --resume)."""
        path = self.result_path(job)
        first = self.process_ids(job)[0]
        return self.process_paths(job, first, path, self.log_path(job))[0]
