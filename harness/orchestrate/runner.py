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
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, TextIO

from .. import results
from ..environment import environment as probe_environment
from ..lifeline import child_env
from ..scenario import Cell, Scenario

# The module a worker process runs. Tests of the runner's own faults name a stub worker here
# that needs no backend (tests/stub_worker.py); users have no reason to set it.
WORKER_MODULE_ENV = "HARNESS_WORKER_MODULE"


@dataclasses.dataclass
class Job:
    scenario: Scenario
    cell: Cell
    backend: str
    # Set by `harness ab`: a sub-folder of the run (side/round), the interpreter that runs the
    # worker (a side may be another environment) and extra task keys.
    subdir: str = ""
    python: str | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def label(self) -> str:
        where = f"{self.subdir}: " if self.subdir else ""
        return f"{where}{self.scenario.name}/{self.cell.id}"

    @property
    def file_stem(self) -> str:
        return f"{self.cell.id}--{self.backend}"

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
    ):
        self.jobs = jobs
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
                path = self.result_path(job)
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
        return not (self.retry_failed and doc["status"] == "failed")

    def _set_aside(self, job: Job, path: Path, doc: dict[str, Any]) -> None:
        """Moves an attempt that is run again, with its log and task, into logs/ as
        ``*.attempt-STAMP.*``, out of the reports' way: what it had measured stays on record."""
        stamp = re.sub(r"\W", "", doc.get("started") or "") or results.utc_now()
        log = self.log_path(job)
        attempt = log.with_name(f"{log.stem}.attempt-{stamp}")
        for old, suffix in ((log, ".log"), (log.with_suffix(".task.json"), ".task.json")):
            if old.exists():
                os.replace(old, attempt.with_name(attempt.name + suffix))
        if doc.get("log"):
            doc["log"] = str(attempt.with_name(attempt.name + ".log"))
        doc.pop("_path", None)
        results.write_json_atomic(attempt.with_name(attempt.name + ".json"), doc, overwrite=True)
        path.unlink()

    def log_path(self, job: Job) -> Path:
        prefix = job.subdir.replace("/", "-") + "--" if job.subdir else ""
        return self.run_dir / "logs" / f"{prefix}{job.scenario.name}--{job.file_stem}.log"

    def run_job(self, index: int, job: Job, path: Path) -> dict[str, Any]:
        from .. import devices as dev

        task = {
            "cell": job.cell.to_json(),
            "backend": job.backend,
            "scenario": {
                "name": job.scenario.name,
                "description": job.scenario.description,
                "file": job.scenario.path,
            },
            "run_id": self.run_dir.name,
            "environment": self.environment,
            "artifacts_dir": str(self.run_dir / "models"),
            **job.extra,
        }
        log_path = self.log_path(job)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            device = dev.device_env(
                job.cell.device, job.backend, jax_preallocate=job.cell.jax_preallocate
            )
        except dev.DeviceUnavailable as exc:  # gpu:N beyond the GPUs this runner was given
            doc = self._skeleton(job)
            doc.update(status="skipped", reason=str(exc), phase="device")
            doc["finished"] = results.utc_now()
            results.write_json_atomic(path, doc, overwrite=True)
            doc["_path"] = str(path)
            self.progress.finish_cell(0.0, _summary_line(index, len(self.jobs), job, doc))
            return doc
        env = child_env(device)
        # Beside the log, not in /tmp: what the worker was told stays with the run, and a
        # harness killed outright leaves nothing behind elsewhere.
        task_path = log_path.with_suffix(".task.json")
        task_path.write_text(json.dumps(task))
        read_fd, write_fd = os.pipe()
        state = {"phase": "starting"}
        started = time.monotonic()
        cmd = [
            job.python or sys.executable,
            "-m",
            os.environ.get(WORKER_MODULE_ENV) or "harness.worker",
            str(task_path),
            str(path),
            "--events-fd",
            str(write_fd),
        ]
        if self.verbose:
            cmd.append("--verbose")
        log = open(log_path, "w")  # noqa: SIM115 - closed below, after the process ends
        try:
            # From the worker's start until its result is written, Ctrl-C and SIGTERM are
            # noted, not raised: the watch loop sees them and stops the worker, and no line
            # between can leave a worker running or its result unwritten.
            with _signals_held() as held:
                try:
                    proc = subprocess.Popen(
                        cmd,
                        env=env,
                        pass_fds=(write_fd,),
                        stdout=None if self.verbose else log,
                        stderr=None if self.verbose else subprocess.STDOUT,
                        start_new_session=True,  # so a timeout or Ctrl-C stops the whole tree
                    )
                except BaseException:
                    os.close(read_fd)
                    raise
                finally:
                    os.close(write_fd)
                reader = threading.Thread(target=_read_events, args=(read_fd, state), daemon=True)
                reader.start()
                outcome = self._watch(proc, index, job, state, started, held)
                _kill(proc)  # the whole group; after a normal exit, any process it left
                reader.join(timeout=2)
                doc = self._finalize(job, path, proc.returncode, outcome, state, log_path)
                self.progress.finish_cell(
                    time.monotonic() - started, _summary_line(index, len(self.jobs), job, doc)
                )
            if held:
                self.interrupted = True
        finally:
            log.close()
        return doc

    def _watch(
        self, proc: subprocess.Popen, index: int, job: Job, state, started: float, held: list
    ) -> str | None:
        """Waits for the worker, showing progress; why it must be stopped, or None once it
        exited by itself (left unreaped, so its process group cannot be reused yet)."""
        while not _exited(proc):
            if held:
                return "interrupted"
            if time.monotonic() - started > job.cell.time_limit:
                return f"time limit of {job.cell.time_limit:g} s exceeded"
            phase = _phase(state)
            self.progress.show(self.progress.line(index, job, phase, started), phase)
            time.sleep(0.1)
        return None

    def _skeleton(self, job: Job) -> dict[str, Any]:
        """A result for a cell whose worker wrote none (or never started)."""
        doc = results.new_result(job.cell.to_json(), job.backend, {"name": job.scenario.name})
        doc["run_id"] = self.run_dir.name
        doc["environment"] = self.environment
        if job.extra.get("ab"):
            doc["ab"] = job.extra["ab"]
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
