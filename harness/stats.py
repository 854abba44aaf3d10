"""Summary statistics of repeated measurements, kept apart from any rendering."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

# pyperf warns when the standard deviation passes 10% of the mean; we flag such cells as noisy.
NOISY_CV = 0.10


def summarize(values: Sequence[float], digits: int = 6) -> dict:
    """Median, spread and the raw values of repeated measurements.

    Args:
        values: one measurement per repeat (at least one).
        digits: significant digits kept in the result.

    Returns:
        ``{"median", "mean", "min", "max", "stdev", "mad", "cv", "n", "values", "noisy"}``:
        ``mad`` is the median absolute deviation, ``cv`` the coefficient of variation
        (stdev / mean, 0 for a single value) and ``noisy`` is ``cv > NOISY_CV``.
    """
    vals = [float(v) for v in values]
    if not vals:
        raise ValueError("summarize() needs at least one value")
    med = statistics.median(vals)
    mean = statistics.fmean(vals)
    stdev = statistics.stdev(vals) if len(vals) > 1 else 0.0
    mad = statistics.median(abs(v - med) for v in vals)
    cv = stdev / mean if mean else 0.0
    return {
        "median": _round(med, digits),
        "mean": _round(mean, digits),
        "min": _round(min(vals), digits),
        "max": _round(max(vals), digits),
        "stdev": _round(stdev, digits),
        "mad": _round(mad, digits),
        "cv": _round(cv, digits),
        "n": len(vals),
        "values": [_round(v, digits) for v in vals],
        "noisy": len(vals) > 1 and cv > NOISY_CV,
    }


def _round(x: float, digits: int) -> float:
    if x == 0 or not math.isfinite(x):
        return x
    return round(x, digits - 1 - int(math.floor(math.log10(abs(x)))))
