"""Process supervision: starting a cell's worker processes, watching them (time limit, a
process of a multi-process cell that ended), stopping their whole process groups, the
signals held meanwhile, and the events pipe through which a worker reports its phase."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from .. import results
from ..results import Status
from ..scenario import Cell

# Seconds the other processes of a cell get to end by themselves when one ended skipped or
# unsupported (they find the same reason) before they are stopped.
PEER_GRACE = 30.0


def start_workers(
    launches: list[tuple[list[str], dict[str, str], TextIO]],
    events: tuple[int, int],
    verbose: bool,
) -> list[subprocess.Popen]:
    """Starts one worker per (command, environment, log), each in a session of its own (so a
    timeout or Ctrl-C stops its whole tree), the first with the write end of the events
    pipe. If one cannot start, those already started are stopped and the pipe's read end is
    closed; its write end is closed here either way (the first worker holds its copy)."""
    read_fd, write_fd = events
    running: list[subprocess.Popen] = []
    try:
        for n, (cmd, env, log) in enumerate(launches):
            running.append(
                subprocess.Popen(
                    cmd,
                    env=env,
                    pass_fds=(write_fd,) if n == 0 else (),
                    stdout=None if verbose else log,
                    stderr=None if verbose else subprocess.STDOUT,
                    start_new_session=True,
                )
            )
    except BaseException:
        os.close(read_fd)
        kill_all(running)
        raise
    finally:
        os.close(write_fd)
    return running


def watch(
    running: list[tuple[int, subprocess.Popen, Path]],
    cell: Cell,
    state: dict[str, Any],
    started: float,
    held: list,
    show: Callable[[str], None],
) -> str | None:
    """Waits for a cell's workers, showing each phase; why they must be stopped, or None once
    they all exited by themselves (left unreaped, so their process groups cannot be reused
    yet). In a multi-process cell, one that dies or fails stops them all: the others would
    wait in a collective for ever.

    Args:
        running: (process id, worker, its result file) of each process started here.
        cell: the cell they run (its time limit and number of processes).
        state: the worker's latest phase event, as ``follow_events`` keeps it; gets
            ``peer_status`` where the cell ends as one of its processes did.
        started: when the workers started (``time.monotonic``).
        held: the signals held meanwhile (``signals_held``): one ends the watch.
        show: shows the current phase.
    """
    procs = cell.data_parallel_processes
    grace_until = None
    while not all(exited(p) for _, p, _ in running):
        if held:
            return "interrupted"
        if time.monotonic() - started > cell.time_limit:
            return f"time limit of {cell.time_limit:g} s exceeded"
        if procs > 1:
            for i, proc, out in running:
                if not exited(proc):
                    continue
                status, what = process_end(proc, out)
                if status == Status.OK or status in results.NOT_RUN:
                    # the others end alike by themselves, unless they wait in a
                    # collective for this one: after a grace, they are stopped
                    grace_until = grace_until or time.monotonic() + PEER_GRACE
                    if time.monotonic() < grace_until:
                        continue
                if status in results.NOT_RUN:
                    state["peer_status"] = status  # the cell ends as that process did
                return f"process {i} of {procs} {what}; the others were stopped"
        show(phase_name(state))
        time.sleep(0.1)
    return None


def raise_interrupt(signum, frame):
    """A SIGTERM handler: stops the run as Ctrl-C does."""
    raise KeyboardInterrupt


def exited(proc: subprocess.Popen) -> bool:
    """Whether the worker has exited, without reaping it: while its zombie stands, its pid
    and process group id cannot be given to another process."""
    if proc.returncode is not None:
        return True
    try:
        return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:  # reaped elsewhere
        return True


def kill_all(procs: list[subprocess.Popen], grace: float = 5.0) -> None:
    """Stops every worker of a cell, each as ``kill`` does, all within one grace period."""
    for proc in procs:
        if not exited(proc):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in procs:
        kill(proc, grace=max(0.0, deadline - time.monotonic()))


def process_end(proc: subprocess.Popen, out: Path) -> tuple[str, str]:
    """How one process of a multi-process cell that exited ended: its status, and what to
    say of it."""
    code = proc.returncode
    if code is None:
        with contextlib.suppress(ChildProcessError):
            info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            if info is not None:
                code = info.si_status if info.si_code == os.CLD_EXITED else -info.si_status
    if code is not None and code < 0:
        return Status.FAILED, f"was killed by {signal.Signals(-code).name}"
    if code:
        return Status.FAILED, f"exited with code {code}"
    try:
        doc = results.read_result(out)
    except results.ResultError:
        return Status.FAILED, "exited without a result"
    if doc.get("status") == Status.OK:
        return Status.OK, f"finished, the others not within {PEER_GRACE:g} s"
    return doc.get("status") or Status.FAILED, f"ended {doc.get('status')}: {doc.get('reason')}"


def free_port() -> int:
    """A TCP port free on loopback now, for a local multi-process cell's coordinator."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def kill(proc: subprocess.Popen, grace: float = 5.0) -> None:
    """Stops a worker's whole process group: SIGTERM, up to ``grace`` seconds for the worker
    to go, then SIGKILL to every process left in the group (a child that ignores SIGTERM
    would outlive its leader otherwise), and only then reaps the worker. After a worker that
    exited by itself, it only clears what it may have left behind."""
    if not exited(proc):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while not exited(proc) and time.monotonic() < deadline:
            time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@contextlib.contextmanager
def signals_held():
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


def follow_events(fd: int, state: dict[str, Any]) -> threading.Thread:
    """Reads the worker's events from the pipe's read end in a daemon thread, keeping its
    latest phase event in ``state``; the thread ends when every writer has closed the pipe."""
    reader = threading.Thread(target=_read_events, args=(fd, state), daemon=True)
    reader.start()
    return reader


def _read_events(fd: int, state: dict[str, Any]) -> None:
    with os.fdopen(fd, "r") as stream:
        for line in stream:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if event.get("event") == "phase":
                state.update(event)


def phase_name(state: dict[str, Any]) -> str:
    """The phase an events state names, with its repeat or format: "fit 2/5", "save .keras"."""
    phase = state.get("phase", "?")
    if "repeat" in state and phase in ("warmup", "fit"):
        return f"{phase} {state['repeat']}/{state['of']}"
    if "format" in state and phase in ("save", "reload"):
        return f"{phase} .{state['format']}"
    return phase
