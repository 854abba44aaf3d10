"""The orchestrator: one fresh worker process per (cell, backend), results collected as files.

It never imports keras or a backend. A worker that crashes, is killed or runs past its time
limit costs only its own cell: the cell's result records the failure (with whatever the worker
had measured), and the other cells still run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, TextIO

from .. import results
from ..environment import environment as probe_environment
from ..lifeline import child_env
from ..protocol import Options, ScenarioRef, Task
from ..scenario import Cell, Scenario

# The module a worker process runs: always the harness's own worker, whatever the environment
# says (a worker's result is believed by reports and the gate). The runner's own fault tests
# set this attribute in their process (tests/stub_harness.py), to a stub with no backend.
WORKER_MODULE = "harness.worker"
# Seconds the other processes of a cell get to end by themselves when one ended skipped or
# unsupported (they find the same reason) before they are stopped.
PEER_GRACE = 30.0
# Lines of a worker's log that say why the GPU could not be used. TensorFlow names the CUDA
# libraries it could not load only there (device_env has a TensorFlow GPU cell log them): the
# reason of a cell that failed in its device phase quotes them.
LIBRARY_LINES = re.compile(
    r"Could not (?:load dynamic library|find cuda drivers)|Cannot dlopen some GPU libraries"
    r"|failed call to cuInit|kernel driver does not appear to be running"
)
# What TensorFlow's C++ log puts before a message: "2026-01-01 10:00:00.1: W path/file.cc:64] "
# or "W0000 00:00:1.2 1234 file.cc:64] ".
_LOG_PREFIX = re.compile(r"^.*?\.cc:\d+\]\s*")


@dataclasses.dataclass
class Job:
    scenario: Scenario
    cell: Cell
    backend: str
    # Set by `harness ab`: a sub-folder of the run (side/round), the interpreter that runs the
    # worker (a side may be another environment) and how its task departs from a plain cell.
    subdir: str = ""
    python: str | None = None
    options: Options = Options()

    @property
    def label(self) -> str:
        where = f"{self.subdir}: " if self.subdir else ""
        return f"{where}{self.scenario.name}/{self.cell.id}"

    @property
    def file_stem(self) -> str:
        return f"{self.cell.id}--{self.backend}"

    @property
    def key(self) -> str:
        """Its name in a run's manifest and in shards: ``[SUBDIR/]SCENARIO/CELL--BACKEND``."""
        where = f"{self.subdir}/" if self.subdir else ""
        return f"{where}{self.scenario.name}/{self.cell.id}--{self.backend}"

    @property
    def relpath(self) -> Path:
        """Its result file, inside the run folder."""
        return Path(self.subdir) / self.scenario.name / f"{self.file_stem}.json"


def plan(scenarios: list[Scenario], backends: list[str]) -> tuple[list[Job], list[str]]:
    """The jobs to run, backend by backend, and notes on cells a scenario excludes."""
    jobs, notes = [], []
    for backend in backends:
        for sc in scenarios:
            for cell in sc.cells:
                if backend in cell.backends:
                    jobs.append(Job(sc, cell, backend))
                else:
                    notes.append(
                        f"{sc.name}/{cell.id}: not run under {backend} (scenario backends)"
                    )
    return jobs, notes


def new_run_id(backends: list[str], clock=time.time) -> str:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(clock()))
    return f"{stamp}-{'+'.join(backends)}"


class Progress:
    """One status line: cell k of n, backend, phase, elapsed and estimated remaining time."""

    def __init__(self, total: int, stream: TextIO = sys.stderr, clock=time.monotonic):
        self.total = total
        self.stream = stream
        self.clock = clock
        self.start = clock()
        self.done = 0
        self.done_seconds = 0.0
        self.tty = hasattr(stream, "isatty") and stream.isatty()
        self._last = ""

    def line(self, index: int, job: Job, phase: str, cell_started: float) -> str:
        now = self.clock()
        elapsed = now - self.start
        left = "?"
        if self.done:
            per_cell = self.done_seconds / self.done
            remaining = max(per_cell * (self.total - self.done) - (now - cell_started), 0)
            left = "~" + _clock(remaining)
        return (
            f"[{index}/{self.total}] {job.backend:<10} {job.label}  {phase}  "
            f"elapsed {_clock(elapsed)}  left {left}"
        )

    def show(self, text: str, key: str = "") -> None:
        """Redraws the line on a terminal; elsewhere (logs, CI) prints it once per phase."""
        if self.tty:
            if text != self._last:
                self.stream.write("\r\x1b[2K" + text)
            self._last = text
        else:
            if key == self._last:
                return
            self._last = key
            self.stream.write(text + "\n")
        self.stream.flush()

    def finish_cell(self, seconds: float, text: str) -> None:
        self.done += 1
        self.done_seconds += seconds
        if self.tty:
            self.stream.write("\r\x1b[2K")
        self.stream.write(text + "\n")
        self.stream.flush()
        self._last = ""


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


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
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            for index, job in enumerate(self.jobs, 1):
                path = self.record_path(job)
                if path.exists():  # --resume: a finished cell is never run (or overwritten) again
                    doc = results.read_result(path)
                    if self.is_done(doc):
                        out.append(doc)
                        self.progress.finish_cell(
                            0.0, _summary_line(index, len(self.jobs), job, doc)
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
        if doc.get("finished") is None or doc["status"] == "interrupted":
            return False
        procs = (doc.get("cell") or {}).get("data_parallel_processes", 1)
        merged = "process_results" in (doc.get("distribution") or {})
        if procs > 1 and not merged and doc["status"] not in results.NOT_RUN:
            return False  # the orchestrator died before it merged the processes' views
        return not (self.retry_failed and doc["status"] == "failed")

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

    def run_job(self, index: int, job: Job, path: Path) -> dict[str, Any]:
        from .. import devices as dev

        task = Task(
            cell=job.cell.to_json(),
            backend=job.backend,
            scenario=ScenarioRef(job.scenario.name, job.scenario.description, job.scenario.path),
            run_id=self.run_dir.name,
            environment=self.environment,
            artifacts_dir=str(self.run_dir / "models"),
            shard=self.shard,
            options=job.options,
        )
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
        launches = [
            (i, self.process_paths(job, i, path, log_path), child_env(env))
            for i, env in zip(ids, envs, strict=True)
        ]
        for _, (out, _), _ in launches[1:]:  # an older attempt's view must not be merged in
            out.unlink(missing_ok=True)
        logs: list = []
        try:
            for _, (_, lp), _ in launches:
                logs.append(open(lp, "w"))  # noqa: SIM115 - closed below
        except OSError:
            for log in logs:
                log.close()
            raise
        try:
            # From the workers' start until the result is written, Ctrl-C and SIGTERM are
            # noted, not raised: the watch loop sees them and stops the workers, and no line
            # between can leave a worker running or its result unwritten.
            with _signals_held() as held:
                running: list[tuple[int, subprocess.Popen, Path]] = []
                try:
                    for n, ((i, (out, _), env), log) in enumerate(zip(launches, logs, strict=True)):
                        cmd = [job.python or sys.executable, "-m", module, str(task_path),
                               str(out)]  # fmt: skip
                        if n == 0:
                            cmd += ["--events-fd", str(write_fd)]
                        if self.verbose:
                            cmd.append("--verbose")
                        proc = subprocess.Popen(
                            cmd,
                            env=env,
                            pass_fds=(write_fd,) if n == 0 else (),
                            stdout=None if self.verbose else log,
                            stderr=None if self.verbose else subprocess.STDOUT,
                            start_new_session=True,  # so a timeout or Ctrl-C stops the tree
                        )
                        running.append((i, proc, out))
                except BaseException:
                    os.close(read_fd)
                    _kill_all([p for _, p, _ in running])
                    raise
                finally:
                    os.close(write_fd)
                reader = threading.Thread(target=_read_events, args=(read_fd, state), daemon=True)
                reader.start()
                outcome = self._watch(running, index, job, state, started, held)
                _kill_all([p for _, p, _ in running])  # after normal exits, what they left
                reader.join(timeout=2)
                first, first_proc, _ = running[0]
                record, record_log = launches[0][1]
                doc = self._finalize(job, record, first_proc.returncode, outcome, state, record_log)
                if doc["status"] == "failed" and doc.get("phase") == "device":
                    _quote_log(doc, record, record_log)
                if state.get("peer_status") and doc["status"] == "failed":
                    doc["status"] = state["peer_status"]  # skipped / unsupported, with why
                if procs > 1:
                    doc = self._merge_processes(job, doc, record, running, launches)
                self.progress.finish_cell(
                    time.monotonic() - started, _summary_line(index, len(self.jobs), job, doc)
                )
            if held:
                self.interrupted = True
        finally:
            for log in logs:
                log.close()
        return doc

    def skip(self, index: int, job: Job, path: Path, reason: str, phase: str) -> dict[str, Any]:
        """Records a cell as skipped without starting a worker."""
        doc = self._skeleton(job)
        doc.update(status="skipped", reason=reason, phase=phase)
        doc["finished"] = results.utc_now()
        results.write_json_atomic(path, doc, overwrite=True)
        doc["_path"] = str(path)
        self.progress.finish_cell(0.0, _summary_line(index, len(self.jobs), job, doc))
        return doc

    def address(self, job: Job) -> str:
        """The coordinator's address for a multi-process job: a free port on loopback, or,
        with ``coordinator``, its host and its port plus the job's index among the
        multi-process jobs: a process that joins another cell than its peers' (a host that
        skipped one) meets no one there, never the wrong cell."""
        if not self.coordinator:
            return f"127.0.0.1:{free_port()}"
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

    def _merge_processes(self, job, doc, record, running, launches) -> dict[str, Any]:
        """One result for a multi-process cell: process 0's (its clock gives the
        throughput), with what every process here recorded, utilization included."""
        views = []
        for (i, proc, out), (_, (_, log), _) in zip(running, launches, strict=True):
            view: dict[str, Any] = {"process_id": i, "result": str(out), "log": str(log)}
            try:
                other = doc if out == record else results.read_result(out)
            except results.ResultError as exc:
                view.update(status="failed", reason=f"no result: {exc}")
            else:
                sps = (other.get("train") or {}).get("samples_per_sec") or {}
                view.update(
                    status=other.get("status"),
                    reason=other.get("reason"),
                    samples_per_sec=sps.get("median"),
                    # its utilization over the measured fits (all of it stays in its file)
                    fit_utilization=((other.get("monitor") or {}).get("phases") or {}).get("fit"),
                )
            if proc.returncode not in (0, None) and view.get("status") == "ok":
                view["status"] = "failed"
            views.append(view)
        procs = job.cell.data_parallel_processes
        dist = doc.setdefault("distribution", {"processes": procs})
        dist["process_results"] = views
        dist["processes_elsewhere"] = sorted(set(range(procs)) - {v["process_id"] for v in views})
        bad = next((v for v in views if v["status"] != "ok"), None)
        if doc.get("status") == "ok" and bad is not None:
            doc["status"] = "failed"
            doc["reason"] = f"process {bad['process_id']} of {procs}: {bad.get('reason')}"
        results.write_json_atomic(record, {k: v for k, v in doc.items() if k != "_path"},
                                  overwrite=True)  # fmt: skip
        return doc

    def _watch(
        self,
        running: list[tuple[int, subprocess.Popen, Path]],
        index: int,
        job: Job,
        state,
        started: float,
        held: list,
    ) -> str | None:
        """Waits for the workers, showing progress; why they must be stopped, or None once
        they all exited by themselves (left unreaped, so their process groups cannot be
        reused yet). In a multi-process cell, one that dies or fails stops them all: the
        others would wait in a collective for ever."""
        procs = job.cell.data_parallel_processes
        grace_until = None
        while not all(_exited(p) for _, p, _ in running):
            if held:
                return "interrupted"
            if time.monotonic() - started > job.cell.time_limit:
                return f"time limit of {job.cell.time_limit:g} s exceeded"
            if procs > 1:
                for i, proc, out in running:
                    if not _exited(proc):
                        continue
                    status, what = _process_end(proc, out)
                    if status == "ok" or status in results.NOT_RUN:
                        # the others end alike by themselves, unless they wait in a
                        # collective for this one: after a grace, they are stopped
                        grace_until = grace_until or time.monotonic() + PEER_GRACE
                        if time.monotonic() < grace_until:
                            continue
                    if status in results.NOT_RUN:
                        state["peer_status"] = status  # the cell ends as that process did
                    return f"process {i} of {procs} {what}; the others were stopped"
            phase = _phase(state)
            self.progress.show(self.progress.line(index, job, phase, started), phase)
            time.sleep(0.1)
        return None

    def _skeleton(self, job: Job) -> dict[str, Any]:
        """A result for a cell whose worker wrote none (or never started)."""
        doc = results.new_result(job.cell.to_json(), job.backend, {"name": job.scenario.name})
        doc["run_id"] = self.run_dir.name
        doc["environment"] = self.environment
        if self.shard:
            doc["shard"] = self.shard
        if job.options.ab:
            doc["ab"] = dataclasses.asdict(job.options.ab)
        return doc

    def _finalize(
        self, job: Job, path: Path, returncode: int | None, outcome: str | None, state, log_path
    ) -> dict[str, Any]:
        """Reads the worker's result, or records why there is none (keeping partial data)."""
        doc = None
        if path.exists():
            try:
                doc = results.read_result(path)
                doc.pop("_path", None)
            except results.ResultError:
                doc = None
        complete = doc is not None and doc.get("finished") is not None and outcome is None
        if complete and returncode == 0:
            doc["_path"] = str(path)
            return doc
        if doc is None:
            doc = self._skeleton(job)
        # The event stream is more current than the file (saved only after some phases).
        if state.get("phase") != "starting":
            doc["phase"] = state["phase"]
            phase = _phase(state)
        else:
            phase = doc.get("phase") or "startup"
        if outcome == "interrupted":
            doc["status"], doc["reason"] = "interrupted", f"interrupted by the user during {phase}"
        elif outcome:
            doc["status"], doc["reason"] = "failed", f"{outcome} (during {phase})"
        elif returncode is not None and returncode < 0:
            name = signal.Signals(-returncode).name
            doc["status"], doc["reason"] = "failed", f"worker killed by {name} during {phase}"
        else:
            doc["status"] = "failed"
            doc["reason"] = f"worker exited with code {returncode} during {phase}: " + _tail(
                log_path
            )
        doc["finished"] = results.utc_now()
        doc["log"] = str(log_path)
        results.write_json_atomic(path, doc, overwrite=True)
        doc["_path"] = str(path)
        return doc


def _quote_log(doc: dict[str, Any], path: Path, log_path: Path) -> None:
    """Adds to the reason of a cell that failed in its device phase what its worker's log says
    of the CUDA libraries (LIBRARY_LINES), and rewrites its result."""
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return
    lines: list[str] = []
    for line in text.splitlines():
        if LIBRARY_LINES.search(line):
            said = " ".join(_LOG_PREFIX.sub("", line.strip(), count=1).split())[:300]
            if said not in lines:
                lines.append(said)
    if not lines:
        return
    doc["reason"] = f"{doc.get('reason')}; the worker's log: " + " | ".join(lines[:6])
    results.write_json_atomic(path, {k: v for k, v in doc.items() if k != "_path"},
                              overwrite=True)  # fmt: skip


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def _exited(proc: subprocess.Popen) -> bool:
    """Whether the worker has exited, without reaping it: while its zombie stands, its pid
    and process group id cannot be given to another process."""
    if proc.returncode is not None:
        return True
    try:
        return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:  # reaped elsewhere
        return True


def _kill_all(procs: list[subprocess.Popen], grace: float = 5.0) -> None:
    """Stops every worker of a cell, each as ``_kill`` does, all within one grace period."""
    for proc in procs:
        if not _exited(proc):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in procs:
        _kill(proc, grace=max(0.0, deadline - time.monotonic()))


def _process_end(proc: subprocess.Popen, out: Path) -> tuple[str, str]:
    """How one process of a multi-process cell that exited ended: its status, and what to
    say of it."""
    code = proc.returncode
    if code is None:
        with contextlib.suppress(ChildProcessError):
            info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            if info is not None:
                code = info.si_status if info.si_code == os.CLD_EXITED else -info.si_status
    if code is not None and code < 0:
        return "failed", f"was killed by {signal.Signals(-code).name}"
    if code:
        return "failed", f"exited with code {code}"
    try:
        doc = results.read_result(out)
    except results.ResultError:
        return "failed", "exited without a result"
    if doc.get("status") == "ok":
        return "ok", f"finished, the others not within {PEER_GRACE:g} s"
    return doc.get("status") or "failed", f"ended {doc.get('status')}: {doc.get('reason')}"


def free_port() -> int:
    """A TCP port free on loopback now, for a local multi-process cell's coordinator."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _kill(proc: subprocess.Popen, grace: float = 5.0) -> None:
    """Stops a worker's whole process group: SIGTERM, up to ``grace`` seconds for the worker
    to go, then SIGKILL to every process left in the group (a child that ignores SIGTERM
    would outlive its leader otherwise), and only then reaps the worker. After a worker that
    exited by itself, it only clears what it may have left behind."""
    if not _exited(proc):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while not _exited(proc) and time.monotonic() < deadline:
            time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@contextlib.contextmanager
def _signals_held():
    """Holds SIGINT and SIGTERM for the block: each one that comes is noted, not raised.

    Yields:
        The list of signals that came, empty when none did.
    """
    held: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield held  # only the main thread receives Python signal handlers
        return

    def note(signum, frame):
        held.append(signum)

    previous = {sig: signal.signal(sig, note) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield held
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _read_events(fd: int, state: dict[str, Any]) -> None:
    with os.fdopen(fd, "r") as stream:
        for line in stream:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if event.get("event") == "phase":
                state.update(event)


def _phase(state: dict[str, Any]) -> str:
    phase = state.get("phase", "?")
    if "repeat" in state and phase in ("warmup", "fit"):
        return f"{phase} {state['repeat']}/{state['of']}"
    if "format" in state and phase in ("save", "reload"):
        return f"{phase} .{state['format']}"
    return phase


def _tail(log_path: Path, lines: int = 3) -> str:
    try:
        text = log_path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    tail = " | ".join(line.strip() for line in text[-lines:] if line.strip())
    return re.sub(r"\s+", " ", tail)[:400] or "(empty log)"


def _summary_line(index: int, total: int, job: Job, doc: dict[str, Any]) -> str:
    status = doc.get("status")
    head = f"[{index}/{total}] {job.backend:<10} {job.label}  {status}"
    if status == "ok":
        sps = doc["train"]["samples_per_sec"]
        acc = (doc.get("evaluate") or {}).get("accuracy")
        tail = "" if acc is None else f"  test acc {acc:.3f}"
        return f"{head}  {sps['median']:,.0f} samples/s (cv {sps['cv']:.1%}){tail}"
    return f"{head}: {doc.get('reason')}"
