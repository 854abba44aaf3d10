"""The progress line of a run: cell k of n, its backend and phase, elapsed and estimated
remaining time while a cell runs, and one summary line when it ends."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from ..results import Result, Status
from .jobs import Job


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


def summary_line(index: int, total: int, job: Job, doc: dict[str, Any]) -> str:
    """The line a cell leaves once it ended: its throughput, or why it did not run ok."""
    status = doc.get("status")
    head = f"[{index}/{total}] {job.backend:<10} {job.label}  {status}"
    if status == Status.OK:
        sps = Result(doc).throughput
        acc = (doc.get("evaluate") or {}).get("accuracy")
        tail = "" if acc is None else f"  test acc {acc:.3f}"
        return f"{head}  {sps.median:,.0f} samples/s (cv {sps.cv:.1%}){tail}"
    return f"{head}: {doc.get('reason')}"
