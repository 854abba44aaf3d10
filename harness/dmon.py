"""`nvidia-smi dmon`-style live monitor: `python -m harness monitor [--pid PID]`.

Prints one fixed-width line per GPU per sample, with the machine's CPU load and, when a PID is
given, that process's CPU load and resident memory. Missing values print as '-'.
"""

from __future__ import annotations

import argparse
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


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """Adds the monitor options to `parser` (e.g. a subcommand's), or to a new parser.

    Args:
        parser: Parser to extend; None creates one named `harness monitor`.

    Returns:
        The parser; `run(parser.parse_args(argv))` executes the command.
    """
    if parser is None:
        parser = argparse.ArgumentParser(
            prog="harness monitor",
            description="Live CPU/GPU utilization, one line per sample (like nvidia-smi dmon).",
        )
    parser.add_argument(
        "--pid", type=int, default=None, help="process to report pcpu/rss for (default: none)"
    )
    parser.add_argument(
        "--interval", type=_positive_float, default=1.0, help="seconds between samples (1)"
    )
    parser.add_argument(
        "--count", type=_positive_int, default=None, help="stop after N samples (default: never)"
    )
    return parser


def run(args: argparse.Namespace, out=None) -> int:
    """Runs the monitor for parsed arguments; returns the exit status."""
    out = sys.stdout if out is None else out
    try:
        sampler = Sampler(
            interval=args.interval,
            pid=args.pid,
            track_process=args.pid is not None,
            max_samples=2,  # only the live lines matter: keep no history on long runs
        )
    except ProcessLookupError:
        print(f"harness monitor: no process with pid {args.pid}", file=sys.stderr)
        return 2
    header = format_header(len(sampler.gpus))
    lines_since_header = 0
    taken = 0
    deadline = time.monotonic()
    try:
        print("\n".join(header), file=out, flush=True)
        while args.count is None or taken < args.count:
            # Sleep first: the CPU figures need a full interval to mean anything.
            # After a stall (Ctrl-Z, overload) restart the schedule instead of bursting.
            deadline = max(deadline + args.interval, time.monotonic())
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


def main(argv: list[str] | None = None) -> int:
    """Entry point for `harness monitor`; returns the exit status."""
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
