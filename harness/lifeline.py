"""A child process of the harness dies with the process that started it.

Workers run in their own session (so a time limit or Ctrl-C can stop their whole process
group), which also means nothing kills them when the orchestrator itself is killed: SIGKILL,
the OOM killer, a cancelled CI job. An orphan that keeps training loads the machine while the
next job measures. On Linux the kernel sends the child a signal when its parent dies
(``PR_SET_PDEATHSIG``); elsewhere a daemon thread watches the parent's pid.

Backend-free: called first thing in the worker, before keras is imported.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

# The orchestrator's pid, set by ``child_env``: the parent may die between fork and
# the prctl call, and then the child must notice that it already is an orphan.
PARENT_ENV = "HARNESS_PARENT_PID"
_PR_SET_PDEATHSIG = 1
# This harness package: a child runs this code, whatever its interpreter has installed.
PACKAGE_DIR = Path(__file__).resolve().parent


def child_env(extra: dict[str, str]) -> dict[str, str]:
    """The environment for a harness child process: ours, plus ``extra``, with this package
    importable whether or not it is installed."""
    env = dict(os.environ)
    env.update(extra)
    env[PARENT_ENV] = str(os.getpid())  # the child dies with us (tie_to_parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_path(), env.get("PYTHONPATH")) if p)
    return env


def package_path() -> str:
    """A folder that holds this harness package and nothing else (a link to it), for a child's
    PYTHONPATH. The folder the package sits in is no such folder once it is installed: it is
    the installing environment's site-packages, and a child of another environment (harness
    portability --python, harness ab --baseline-python) would import that environment's keras
    and backend instead of its own."""
    project = PACKAGE_DIR.parent / "pyproject.toml"
    try:  # a checkout: the project's own folder holds nothing a child could import by mistake
        if 'name = "keras-backend-harness"' in project.read_text():
            return str(PACKAGE_DIR.parent)
    except (OSError, UnicodeDecodeError):
        pass
    uid = os.getuid() if hasattr(os, "getuid") else 0
    digest = hashlib.sha256(str(PACKAGE_DIR).encode()).hexdigest()[:12]
    folder = Path(tempfile.gettempdir()) / f"keras-backend-harness-{uid}-{digest}"
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        info = os.lstat(folder)  # a real folder of ours that no one else can write to
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != uid or info.st_mode & 0o022:
            raise OSError("not ours")
        link = folder / "harness"
        if not link.is_symlink():
            link.symlink_to(PACKAGE_DIR, target_is_directory=True)
        if link.resolve() == PACKAGE_DIR:
            return str(folder)
    except OSError:  # no symlinks here, or a folder someone else made: one of our own
        pass
    folder = Path(tempfile.mkdtemp(prefix="keras-backend-harness-"))
    try:
        (folder / "harness").symlink_to(PACKAGE_DIR, target_is_directory=True)
    except OSError:
        return str(PACKAGE_DIR.parent)  # the old way, where links cannot be made at all
    return str(folder)


def run_module(
    module: str,
    args: list[str],
    extra_env: dict[str, str],
    *,
    timeout: float,
    python: str | None = None,
) -> tuple[list[dict], str | None]:
    """Runs ``python -m module *args`` as a child of the harness (it dies with us) and waits.

    Args:
        module: the module the child runs (it prints one JSON object per answer line).
        args: its arguments.
        extra_env: set in the child's environment on top of ours.
        timeout: seconds before the child is killed.
        python: the interpreter (default: this one).

    Returns:
        The JSON objects it printed, one per line (other lines ignored), and why it failed:
        None when it exited 0, else one line (its exit code and last line of stderr, or the
        timeout).
    """
    command = [python or sys.executable, "-m", module, *args]
    try:
        proc = subprocess.run(
            command, env=child_env(extra_env), capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired as exc:  # what it answered before the timeout still counts
        return _json_lines(exc.stdout), f"timed out after {timeout:g} s"
    except OSError as exc:  # not an interpreter at all (a text file, no execute permission)
        return [], f"cannot start {command[0]}: {exc.strerror or exc}"
    if proc.returncode == 0:
        return _json_lines(proc.stdout), None
    tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    return _json_lines(proc.stdout), f"exit {proc.returncode}: {tail[:300]}"


def _json_lines(out: str | bytes | None) -> list[dict]:
    """The JSON objects among a child's output lines (a library's log line is skipped)."""
    if isinstance(out, bytes):
        out = out.decode(errors="replace")
    answers = []
    for line in (out or "").splitlines():
        try:
            item = json.loads(line) if line.startswith("{") else None
        except ValueError:
            continue
        if isinstance(item, dict):
            answers.append(item)
    return answers


def tie_to_parent(sig: int = signal.SIGKILL) -> str:
    """Makes this process receive ``sig`` when its parent dies; exits now if it already did.

    SIGKILL by default: a handler in Python would wait for the main thread, which may sit in
    a long compiled call. The worker starts no processes of its own, so nothing is left.

    Returns:
        How the tie is made ("prctl" or "watcher"), for the record.
    """
    expected = os.environ.get(PARENT_ENV)
    how = "watcher"
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0:
                how = "prctl"
        except (OSError, AttributeError):  # no libc prctl (an unusual libc): fall back
            pass
    harness = int(expected) if expected and expected.isdigit() else os.getppid()
    if not _alive(harness):  # it died before the tie was made
        os.kill(os.getpid(), sig)
    if how == "watcher" or os.getppid() != harness:
        # Between the harness and this process stands another (an interpreter wrapper that
        # does not exec): the kernel's tie covers only that one, so watch the harness too.
        threading.Thread(target=_watch, args=(harness, sig), daemon=True).start()
        how += "+watcher" if how == "prctl" else ""
    return how


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped by its parent, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):  # no /proc (not Linux): kill(0) is all there is
        return True


def _watch(pid: int, sig: int, every: float = 0.5) -> None:
    while _alive(pid):
        time.sleep(every)
    os.kill(os.getpid(), sig)
