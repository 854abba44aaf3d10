"""`nvidia-smi dmon`-style live monitor: `python -m harness monitor [--pid PID]`.

Prints one fixed-width line per GPU per sample, with the machine's CPU load and, when a PID is
given, that process's CPU load and resident memory. Missing values print as '-'.
"""

from __future__ import annotations

import sys
import time

from .monitor import Sampler

# Column titles, units and widths; a width includes the separating space(s) on the left.
_COLUMNS = (
    ("# gpu", "# Idx", 5),
    ("pwr", "W", 6),
    ("gtemp", "C", 7),
    ("sm", "%", 6),
    ("mem", "%", 6),
    ("fb", "MB", 6),
    ("mclk", "MHz", 6),
    ("pclk", "MHz", 6),
    ("cpu", "%", 6),
    ("pcpu", "%", 7),
    ("rss", "MB", 7),
)
HEADER_EVERY = 20  # data lines between headers, as nvidia-smi dmon does
_MIB = 1 << 20


def _row(cells: list[str]) -> str:
    parts = [cells[0].rjust(_COLUMNS[0][2])]
    # An over-wide value still gets one space, so columns never run together.
    parts += [
        " " + cell.rjust(width - 1)
        for cell, (_, _, width) in zip(cells[1:], _COLUMNS[1:], strict=True)
    ]
    return "".join(parts)


def _num(value: float | None, scale: int = 1) -> str:
    if value is None:
        return "-"
    return f"{value / scale:.0f}"


def format_header(n_gpus: int) -> list[str]:
    """Returns the two header lines (names and units).

    Args:
        n_gpus: Number of GPUs sampled; the columns are the same with none (then '-').
    """
    del n_gpus  # Same layout either way; kept so callers need not special-case no GPU.
    return [
        "".join(
            [_COLUMNS[0][0]] + [" " + name.rjust(width - 1) for name, _, width in _COLUMNS[1:]]
        ),
        "".join(
            [_COLUMNS[0][1]] + [" " + unit.rjust(width - 1) for _, unit, width in _COLUMNS[1:]]
        ),
    ]


def format_line(sample: dict) -> list[str]:
    """Formats one `Sampler` sample: a line per GPU, or one line of '-' GPU columns."""
    host = [
        _num(sample.get("cpu")),
        _num(sample.get("proc_cpu")),
        _num(sample.get("proc_rss"), _MIB),
    ]
    gpus = sample.get("gpus") or []
    if not gpus:
        return [_row(["-"] * 8 + host)]
    return [
        _row(
            [
                str(gpu["index"]),
                _num(gpu.get("power_w")),
                _num(gpu.get("temp_c")),
                _num(gpu.get("sm")),
                _num(gpu.get("mem")),
                _num(gpu.get("fb_used"), _MIB),
                _num(gpu.get("mem_clock_mhz")),
                _num(gpu.get("sm_clock_mhz")),
            ]
            + host
        )
        for gpu in gpus
    ]


def run(
    *, pid: int | None = None, interval: float = 1.0, count: int | None = None, out=None
) -> int:
    """Prints a header, then one line per GPU (and the host's CPU, and ``pid``'s CPU% and
    RSS) every ``interval`` seconds, ``count`` times or until Ctrl-C; returns the exit
    status (2: no process ``pid``)."""
    out = sys.stdout if out is None else out
    try:
        sampler = Sampler(
            interval=interval,
            pid=pid,
            track_process=pid is not None,
            max_samples=2,  # only the live lines matter: keep no history on long runs
        )
    except ProcessLookupError:
        print(f"harness monitor: no process with pid {pid}", file=sys.stderr)
        return 2
    header = format_header(len(sampler.gpus))
    lines_since_header = 0
    taken = 0
    deadline = time.monotonic()
    try:
        print("\n".join(header), file=out, flush=True)
        while count is None or taken < count:
            # Sleep first: the CPU figures need a full interval to mean anything.
            # After a stall (Ctrl-Z, overload) restart the schedule instead of bursting.
            deadline = max(deadline + interval, time.monotonic())
            time.sleep(max(0.0, deadline - time.monotonic()))
            lines = format_line(sampler.sample_once())
            taken += 1
            if lines_since_header >= HEADER_EVERY:
                print("\n".join(header), file=out)
                lines_since_header = 0
            print("\n".join(lines), file=out, flush=True)
            lines_since_header += len(lines)
    except KeyboardInterrupt:
        pass  # Ctrl-C is the normal way to stop, as with dmon.
    finally:
        sampler.stop()
    return 0
