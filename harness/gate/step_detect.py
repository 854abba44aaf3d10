"""Where a history of per-run medians moved for good: change points with a penalty.

In the spirit of asv's step detection: the history is split into segments, each summarised by
its median, so that the sum of absolute deviations from the segment medians plus a penalty per
segment is smallest (an L1 Potts problem, solved exactly by dynamic programming). L1 and
medians keep a single slow run from pulling a segment; a segment must hold at least
``min_size`` (3) runs, so one slow run is never a step (two in a row can be: three runs with
two of them slow have a slow median), and a step in the last runs is reported once enough runs
confirm it. The penalty scales with the history's own noise (the
median absolute difference between neighbouring runs), so it means the same on a quiet and on
a noisy machine.
"""

from __future__ import annotations

import dataclasses
import math
import statistics

# Penalty per segment, in units of the noise (the robust sigma of the runs) times log(n). On
# histories of 100 runs with 5% Gaussian noise it gave no false step in 500 flat ones, and
# found a 10% step (two sigmas) within 2 runs of where it was in 96% of 200 (beta 2: 0.4% false
# steps, the same 96%); tests/test_history.py measures the false-step rate again.
BETA = 3.0
MIN_SIZE = 3
# The search is exact and costs O(n^3) in runs: about 1.5 s at 500 (13 ms at 100); older runs
# than the last 500 are left out of it.
MAX_RUNS = 500


@dataclasses.dataclass(frozen=True)
class Step:
    """A lasting change: the first run of the new level, and the levels on either side."""

    index: int
    before: float
    after: float

    @property
    def change(self) -> float:
        """Relative change, e.g. -0.12: 12% lower."""
        return self.after / self.before - 1 if self.before else math.inf


def noise(values: list[float]) -> float:
    """Robust sigma of the runs: from the median absolute difference of neighbours (a level
    change moves one difference, not the median of them)."""
    diffs = [abs(b - a) for a, b in zip(values, values[1:], strict=False)]
    if not diffs:
        return 0.0
    return 1.4826 * statistics.median(diffs) / math.sqrt(2)


def segments(values: list[float], penalty: float, min_size: int = MIN_SIZE) -> list[int]:
    """The start index of each segment of the best partition (the first is 0)."""
    n = len(values)
    if n < 2 * min_size:
        return [0]
    # cost[i][j]: sum |x - median| over values[i:j], for every segment long enough
    best = [math.inf] * (n + 1)
    start = [0] * (n + 1)
    best[0] = 0.0
    for j in range(min_size, n + 1):
        for i in range(0, j - min_size + 1):
            if best[i] == math.inf:
                continue
            seg = values[i:j]
            med = statistics.median(seg)
            total = best[i] + sum(abs(x - med) for x in seg) + penalty
            if total < best[j]:
                best[j], start[j] = total, i
    cuts, j = [], n
    while j > 0:
        cuts.append(start[j])
        j = start[j]
    return sorted(cuts)


def detect(values: list[float], beta: float = BETA, min_size: int = MIN_SIZE) -> list[Step]:
    """The lasting steps of a history of per-run values, oldest first.

    Args:
        values: one value per run (its median throughput), in commit order.
        beta: penalty per segment, in noise x log(n).
        min_size: the fewest runs a level needs to count.
    """
    offset = max(0, len(values) - MAX_RUNS)
    if offset:
        return [
            Step(st.index + offset, st.before, st.after)
            for st in detect(values[offset:], beta, min_size)
        ]
    n = len(values)
    sigma = noise(values)
    if n < 2 * min_size or sigma == 0:
        if n >= 2 * min_size and len(set(values)) > 1:
            sigma = max(abs(v) for v in values) * 1e-9  # a noise-free history: any change
        else:
            return []
    penalty = beta * sigma * math.log(n)
    cuts = segments(values, penalty, min_size)
    out = []
    for k, cut in enumerate(cuts[1:], 1):
        before = statistics.median(values[cuts[k - 1] : cut])
        end = cuts[k + 1] if k + 1 < len(cuts) else n
        after = statistics.median(values[cut:end])
        out.append(Step(cut, before, after))
    return out
