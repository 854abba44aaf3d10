"""Statistics of repeated measurements: summaries, rank tests, intervals and sample sizes.

Pure functions of numbers, kept apart from results, verdicts and rendering. scipy is imported
inside the functions that use it: the CLI's --help, and every command that never judges
speed, should not pay for importing it (the worker uses only ``summarize``).
"""

from __future__ import annotations

import functools
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


# With ties, the exact p enumerates every way to split the values between the samples, up to
# this many (8 vs 8 is 12,870 of them, about 0.1 s on the development machine).
EXACT_ARRANGEMENTS = 20_000


# Without ties, scipy's exact distribution of U is cheap up to this many values in all.
EXACT_VALUES = 100


def mann_whitney_less(x: list[float], y: list[float]) -> float:
    """One-sided p-value that values in ``x`` tend to be smaller than those in ``y``; see
    :func:`_mann_whitney_less` (cached: calibrate's grid search asks for the same pair at
    every limit it tries, and an exact test with ties costs 0.1 s)."""
    return _mann_whitney_less(tuple(x), tuple(y))


@functools.lru_cache(maxsize=4096)
def _mann_whitney_less(x: tuple[float, ...], y: tuple[float, ...]) -> float:
    """One-sided p-value that values in ``x`` tend to be smaller than those in ``y``.

    U counts pairs (xi, yj) with xi > yj (ties count one half); small U means x is smaller.
    The p-value is P(U <= observed) under the null of no difference: exact for small
    samples, and then with ties too (every split of the pooled values between the samples
    enumerated: a no-ties table would make p too small); the normal approximation with tie
    and continuity corrections for large ones.

    Args:
        x: the sample expected to be smaller (the current run, for p_slower).
        y: the other sample.
    """
    from scipy import stats

    n1, n2 = len(x), len(y)
    if not n1 or not n2:
        raise ValueError("both samples need values")
    ties = len(set(x) | set(y)) < n1 + n2
    arrangements = math.comb(n1 + n2, n1)
    if ties and arrangements <= EXACT_ARRANGEMENTS:
        # n_resamples >= the number of arrangements makes scipy enumerate them all (exact, so
        # the rng is never drawn from; fixed all the same so that the p cannot vary)
        method = stats.PermutationMethod(n_resamples=arrangements, rng=0)
    elif not ties and n1 + n2 <= EXACT_VALUES:
        method = "exact"
    else:
        method = "asymptotic"
    return float(stats.mannwhitneyu(x, y, alternative="less", method=method).pvalue)


def bootstrap_ratio_ci(
    current: list[float],
    baseline: list[float],
    confidence: float = 0.95,
    n: int = 4000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile-bootstrap interval of median(current) / median(baseline), the two samples
    resampled independently.

    Args:
        current: values of the run under test.
        baseline: values of the baseline.
        confidence: the interval's coverage (two-sided).
        n: bootstrap resamples.
        seed: of the resampling, so that the same files give the same interval.
    """
    import numpy as np
    from scipy import stats

    sides = [np.asarray(current, dtype=float), np.asarray(baseline, dtype=float)]
    # scipy resamples only samples of two or more values; a lone value resamples to itself
    varying = [i for i, s in enumerate(sides) if len(s) > 1]

    def ratio(*resampled: np.ndarray, axis: int = -1) -> np.ndarray:
        medians = [np.median(s) for s in sides]
        for i, values in zip(varying, resampled, strict=True):
            medians[i] = np.median(values, axis=axis)
        return medians[0] / medians[1]

    if not varying:
        r = float(ratio())
        return r, r
    res = stats.bootstrap(
        [sides[i] for i in varying], ratio, n_resamples=n, confidence_level=confidence,
        method="percentile", vectorized=True, paired=False, rng=seed,
    )  # fmt: skip
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def bootstrap_median_ci(
    values: list[float], confidence: float = 0.95, n: int = 4000, seed: int = 0
) -> tuple[float, float]:
    """Percentile-bootstrap interval of the median of ``values`` (the ratio interval against
    a lone 1.0, which resamples to itself)."""
    return bootstrap_ratio_ci(values, [1.0], confidence, n, seed)


def min_p_value(n1: int, n2: int) -> float:
    """The smallest one-sided p a rank test can reach with these repeat counts: one split of
    the values out of all of them (fewer distinct splits with ties, so a larger p)."""
    return 1 / math.comb(n1 + n2, n1)


def t_quantile(p: float, df: int) -> float:
    """Student's t quantile: the value a t variable with ``df`` degrees of freedom stays below
    with probability ``p``.

    Args:
        p: one-sided probability, in (0, 1).
        df: degrees of freedom, at least 1.
    """
    from scipy import stats

    return float(stats.t.ppf(p, df))


def run_allowance(runs: list[list[float]], confidence: float = 0.95) -> float:
    """How far (as a log ratio) the median of one more run of the same code may land from
    these runs' by chance: the one-sided prediction bound ``t * s * sqrt(1 + 1/k)`` over the
    log medians of the ``k`` runs (0 for fewer than two). With few runs it is wide on purpose:
    two runs that differ by 10% allow a 40% swing; three spread over 10%, about 15%."""
    meds = [math.log(statistics.median(r)) for r in runs if r]
    k = len(meds)
    if k < 2:
        return 0.0
    return t_quantile(confidence, k - 1) * statistics.stdev(meds) * math.sqrt(1 + 1 / k)


def run_noise(runs: list[list[float]]) -> float:
    """The largest |median ratio - 1| between two runs of the same code (0 for one run)."""
    meds = [statistics.median(r) for r in runs if r]
    return max((a / b - 1 for a in meds for b in meds), default=0.0)


def log_spread(sides: list[list[float]]) -> float:
    """The pooled standard deviation of the log values within each side (0 if none)."""
    logs = [[math.log(x) for x in side] for side in sides if len(side) > 1]
    df = sum(len(side) - 1 for side in logs)
    if not df:
        return 0.0
    ss = sum((x - statistics.fmean(side)) ** 2 for side in logs for x in side)
    return math.sqrt(ss / df)


def rounds_needed(
    spread: float,
    slowdown: float,
    limit: float,
    confidence: float = 0.95,
    power: float = 0.8,
) -> int | None:
    """Values per side for the gate to call a real ``slowdown`` a regression with probability
    ``power``, when log values spread by ``spread`` within a side (normal approximation).

    Both of the gate's conditions must hold: the rank test at ``confidence`` (Mann-Whitney
    needs pi/3 times the values of a t test), and the measured median ratio past ``limit``
    (the log ratio of two medians of n has a standard error of ``spread * sqrt(pi / n)``).
    Each is sized to hold with probability ``sqrt(power)``, so both hold at least ``power`` of
    the time were they independent; they go together, so this errs on the safe side.

    None when ``slowdown`` is not beyond ``limit``: a slowdown of exactly the limit is
    measured past it only half of the time, however many rounds. Otherwise even, at least 4,
    as ``harness ab --rounds`` wants."""
    shift, bar = -math.log(1 - slowdown), -math.log(1 - limit)
    if shift <= bar:
        return None
    nd = statistics.NormalDist()
    z_conf, z_pow = nd.inv_cdf(confidence), nd.inv_cdf(math.sqrt(power))
    n_test = 2 * ((z_conf + z_pow) * spread / shift) ** 2 * math.pi / 3
    n_limit = math.pi * (z_pow * spread / (shift - bar)) ** 2
    n = max(4, math.ceil(max(n_test, n_limit)))
    return n + n % 2
