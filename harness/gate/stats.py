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


def bootstrap_median_ci(
    values: list[float], confidence: float = 0.95, n: int = 4000, seed: int = 0
) -> tuple[float, float]:
    """Percentile-bootstrap interval of the median of ``values`` (seeded, so the same values
    give the same interval; a lone value, or identical ones, give that value twice)."""
    import numpy as np
    from scipy import stats

    data = np.asarray(values, dtype=float)
    if len(data) < 2 or np.all(data == data[0]):
        return float(np.median(data)), float(np.median(data))
    res = stats.bootstrap(
        (data,), np.median, n_resamples=n, confidence_level=confidence, method="percentile",
        vectorized=True, rng=seed,
    )  # fmt: skip
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def adjust(p_values: Sequence[float], method: str) -> list[float]:
    """P-values adjusted for testing them together, in their order.

    Args:
        p_values: one raw p per test.
        method: "holm" (Holm-Bonferroni: the chance of any false alarm among them stays at
            most alpha), "bh" (Benjamini-Hochberg: the expected share of false alarms among
            the alarms stays at most alpha) or "none".
    """
    m = len(p_values)
    if method == "none" or m < 2:
        return [min(1.0, p) for p in p_values]
    order = sorted(range(m), key=lambda i: p_values[i])
    out = [0.0] * m
    if method == "holm":
        running = 0.0
        for rank, i in enumerate(order):
            running = max(running, min(1.0, (m - rank) * p_values[i]))
            out[i] = running
        return out
    if method == "bh":
        running = 1.0
        for rank in range(m - 1, -1, -1):
            i = order[rank]
            running = min(running, m * p_values[i] / (rank + 1))
            out[i] = min(1.0, running)
        return out
    raise ValueError(f"unknown correction {method!r}")


def levels(p_values: Sequence[float], alpha: float, method: str) -> list[float]:
    """The significance level each test is held to under ``method``, in their order: a test
    rejected by the correction has its raw p below its level, so an interval at that level
    agrees with the verdict. Holm: alpha / (m - rank) by ascending p; Benjamini-Hochberg:
    alpha * R / m for every test, R the number rejected (at least 1), as Benjamini and
    Yekutieli's false-coverage intervals; none: alpha."""
    m = len(p_values)
    if method == "none" or m < 2:
        return [alpha] * m
    if method == "holm":
        # Step down while p < alpha / (m - rank); from the first rank that fails, every later
        # one is held to that rank's level (Holm stops there); tied p-values share the level
        # of the first of them.
        order = sorted(range(m), key=lambda i: p_values[i])
        out = [0.0] * m
        step, stopped = 0, False
        for rank, i in enumerate(order):
            if rank and p_values[i] == p_values[order[rank - 1]]:
                out[i] = out[order[rank - 1]]
                continue
            if not stopped:
                step = rank
                stopped = p_values[i] >= alpha / (m - rank)
            out[i] = alpha / (m - step)
        return out
    rejected = sum(p < alpha for p in adjust(p_values, "bh"))
    return [alpha * max(rejected, 1) / m] * m


def ratio_upper_bound(current: list[float], baseline: list[float], alpha: float) -> float:
    """One-sided upper confidence bound, at level ``1 - alpha``, of how current's values
    compare to baseline's as a ratio, from inverting the gate's own one-sided rank test
    (:func:`mann_whitney_less`) on log values: the largest factor f such that "current / f is
    not smaller than baseline" is not rejected. So the bound is below 1 exactly when the test
    calls current slower at that level. ``inf`` where no factor is rejected (too few values
    for that level).
    """
    x = [math.log(v) for v in current]
    y = [math.log(v) for v in baseline]
    diffs = sorted({a - b for a in x for b in y})

    def p(shift: float) -> float:
        return mann_whitney_less([a - shift for a in x], y)

    if p(diffs[-1] + 1.0) >= alpha:
        return math.inf
    # p falls as the shift grows, changing only at the differences: find the last gap
    # between differences where it is still >= alpha; the bound is the difference after it.
    lo, hi = -1, len(diffs) - 1  # p(gap lo) >= alpha; p(gap hi) < alpha

    def gap(i: int) -> float:
        if i < 0:
            return diffs[0] - 1.0
        if i >= len(diffs) - 1:
            return diffs[-1] + 1.0
        return (diffs[i] + diffs[i + 1]) / 2

    while hi - lo > 1:
        mid = (lo + hi) // 2
        if p(gap(mid)) >= alpha:
            lo = mid
        else:
            hi = mid
    return math.exp(diffs[lo + 1])


def ratio_bounds(
    current: list[float], baseline: list[float], alpha_slower: float, alpha_faster: float
) -> tuple[float, float]:
    """(lower, upper) one-sided bounds of current / baseline: the upper one at the level the
    slowdown test used, the lower one at the level the speed-up test used (each one-sided,
    see :func:`ratio_upper_bound`)."""
    upper = ratio_upper_bound(current, baseline, alpha_slower)
    lower = 1 / ratio_upper_bound(baseline, current, alpha_faster)
    return lower, upper


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
