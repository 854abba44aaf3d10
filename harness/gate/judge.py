"""Judging the gate's samples: one cell's values against its baseline's (the rules of a
verdict), and the cells of one gate together, the error rate held over all of them (the
correction); what a verdict is, and which verdicts fail the gate.

A cell regressed when its median throughput fell by more than the allowed amount AND a
one-sided Mann-Whitney U test on the per-repeat values says so at the stated confidence. A lone
ratio of medians is never enough: on a noisy runner two runs of the same code differ by several
percent. The statistics themselves are in stats.py; which results make a sample, verdicts.py.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import statistics

from .options import CORRECTIONS, alpha, check_confidence, percent
from .stats import adjust, levels, mann_whitney_less, min_p_value, ratio_bounds, run_allowance


class VerdictStatus(enum.StrEnum):
    """Every verdict the gate gives a cell, in the order the CLI counts them (a StrEnum: it
    compares and prints as its text)."""

    REGRESSED = "regressed"
    LOST = "lost"  # ok in the baseline, not ok now
    WORKLOAD_CHANGED = "workload changed"  # other work than the baseline's: not judged
    IMPROVED = "improved"
    NOISY = "noisy"
    UNCHANGED = "unchanged"
    MISSING = "missing"  # ran on one side only, or crashed
    NOT_COMPARED = "not compared"


STATUSES = tuple(VerdictStatus)
# Verdicts that fail the gate: a slowdown, a cell ok in the baseline that did not run ok now
# (lost), or one that ran on one side only (or crashed).
FAILING = (VerdictStatus.REGRESSED, VerdictStatus.LOST, VerdictStatus.MISSING)
# Verdicts that make the gate refuse (exit 2): other work than the baseline's, not judged.
REFUSED = (VerdictStatus.WORKLOAD_CHANGED,)


@dataclasses.dataclass(frozen=True)
class Verdict:
    key: str
    status: VerdictStatus
    ratio: float | None = None
    # one-sided bounds of the ratio: (lower, upper), each at the level its test used
    ci: tuple[float, float] | None = None
    p_slower: float | None = None
    p_faster: float | None = None
    why: str = ""
    n: tuple[int, int] | None = None  # values compared: current, baseline
    p_adjusted: float | None = None  # p_slower adjusted for the gate's correction


@dataclasses.dataclass(frozen=True)
class Sample:
    """One cell's values as the gate judges them.

    Attributes:
        key: the cell's name.
        current: the values of the run under test (one per repeat, or per A/B worker).
        runs: the baseline's values, one list per run (or one A/B side).
        interleaved: measured together with the baseline (one A/B run): the rank test alone
            decides; otherwise the baseline runs' spread is an allowance (:func:`run_allowance`).
        note: said after the verdict's reason (a workload or method change, allowed).
    """

    key: str
    current: list[float]
    runs: list[list[float]]
    interleaved: bool = False
    note: str = ""

    @property
    def baseline(self) -> list[float]:
        return [v for run in self.runs for v in run]

    @property
    def ratio(self) -> float:
        """The current median over the pooled baseline's."""
        return statistics.median(self.current) / statistics.median(self.baseline)


def judge(
    key: str,
    current: list[float],
    baseline: list[float],
    *,
    max_slowdown: float = 0.05,
    confidence: float = 0.95,
    run_allowance: float = 0.0,
    baseline_runs: int = 1,
    p_slower: float | None = None,
    p_faster: float | None = None,
) -> Verdict:
    """Compares per-repeat (or per-worker) rates of one cell, higher is better: throughput,
    or the typical rate (see :data:`METRICS`).

    Args:
        key: the cell's name, for messages.
        current: samples/s per value of the run under test.
        baseline: samples/s per value of the baseline.
        max_slowdown: the slowdown tolerated (0.05 = 5%).
        confidence: the confidence the rank test must reach (alpha = 1 - confidence).
        run_allowance: how far (log ratio) one more run of the baseline's code may land from
            the baseline by chance (see :func:`run_allowance`). Repeats inside one run share
            its moment on the machine, so the rank test cannot see this noise; a change within
            it is "noisy", never "regressed" or "improved".
        baseline_runs: how many runs ``run_allowance`` came from, for the message.
        p_slower: the p-value to judge a slowdown by, adjusted for the other cells of the
            gate (default: this cell's own rank test, unadjusted).
        p_faster: likewise for a speed-up.

    Raises:
        ValueError: ``confidence`` outside [0.5, 1).
    """
    check_confidence(confidence)
    threshold = alpha(confidence)
    ratio = statistics.median(current) / statistics.median(baseline)
    raw_slower = mann_whitney_less(current, baseline)
    raw_faster = mann_whitney_less(baseline, current)
    p_slower = raw_slower if p_slower is None else p_slower
    p_faster = raw_faster if p_faster is None else p_faster
    change = f"{ratio - 1:+.1%}"
    low, high = math.exp(-run_allowance), math.exp(run_allowance)
    # "p=0.012 (raw 0.003)" where the correction raised it
    slower = f"p={p_slower:.3g}" + (f" (raw {raw_slower:.3g})" if p_slower != raw_slower else "")
    faster = f"p={p_faster:.3g}" + (f" (raw {raw_faster:.3g})" if p_faster != raw_faster else "")

    def verdict(status: VerdictStatus, why: str) -> Verdict:
        return Verdict(key, status, ratio, None, raw_slower, raw_faster, why, None, p_slower)

    if ratio < 1 - max_slowdown:
        if p_slower < threshold and ratio >= low:
            return verdict(VerdictStatus.NOISY, (
                f"{change} is significant ({slower}), but from the spread of the "
                f"baseline's {baseline_runs} runs another run of the same code may land "
                f"{1 - low:.1%} lower by chance ({percent(confidence)} prediction bound): too noisy "
                "to judge"
            ))  # fmt: skip
        if p_slower < threshold:
            return verdict(
                VerdictStatus.REGRESSED,
                f"{change}, past the allowed -{percent(max_slowdown)}; Mann-Whitney "
                f"{slower} < {threshold:.3g}",
            )
        return verdict(VerdictStatus.NOISY, (
            f"{change} looks slower, but {slower} >= {threshold:.3g} with "
            f"{len(current)} vs {len(baseline)} repeats: too noisy to judge"
        ))  # fmt: skip
    if ratio > max(1 + max_slowdown, high) and p_faster < threshold:
        return verdict(VerdictStatus.IMPROVED, f"{change}; Mann-Whitney {faster}")
    return verdict(
        VerdictStatus.UNCHANGED, f"{change}, within ±{percent(max_slowdown)} or not significant"
    )


def judge_family(
    samples: list[Sample],
    *,
    max_slowdown: float = 0.05,
    confidence: float = 0.95,
    correction: str = "holm",
    bounds: bool = True,
) -> list[Verdict]:
    """Judges the cells of one gate together, the error rate held over all of them.

    Each cell's one-sided rank tests (slower; faster) give raw p-values; ``correction``
    adjusts each family of them (see :data:`CORRECTIONS`), and a cell is judged by
    :func:`judge` with its adjusted p. ``harness check``, ``harness ab`` and ``harness
    calibrate`` all judge through here, so a calibration describes the gate that runs.

    Args:
        samples: the judged cells.
        max_slowdown: the slowdown tolerated.
        confidence: for the whole gate under the correction.
        correction: a key of :data:`CORRECTIONS`.
        bounds: also give each verdict its one-sided ratio bounds, each at the level its
            test was held to (they agree with the verdict: a regressed cell's upper bound is
            below 1); calibrate's grid search leaves them out.
    """
    check_confidence(confidence)
    if correction not in CORRECTIONS:
        raise ValueError(f"unknown correction {correction!r}")
    a = alpha(confidence)
    raw_slower = [mann_whitney_less(s.current, s.baseline) for s in samples]
    raw_faster = [mann_whitney_less(s.baseline, s.current) for s in samples]
    adj_slower = adjust(raw_slower, correction)
    adj_faster = adjust(raw_faster, correction)
    out = []
    for k, s in enumerate(samples):
        allowance = 0.0 if s.interleaved else run_allowance(s.runs, confidence)
        v = judge(
            s.key, s.current, s.baseline, max_slowdown=max_slowdown, confidence=confidence,
            run_allowance=allowance, baseline_runs=len(s.runs),
            p_slower=adj_slower[k], p_faster=adj_faster[k],
        )  # fmt: skip
        if s.note:
            v = dataclasses.replace(v, why=f"{v.why}; {s.note}")
        out.append(dataclasses.replace(v, n=(len(s.current), len(s.baseline))))
    if bounds:
        lv_slower = levels(raw_slower, a, correction)
        lv_faster = levels(raw_faster, a, correction)
        out = [
            dataclasses.replace(
                v, ci=ratio_bounds(s.current, s.baseline, lv_slower[k], lv_faster[k])
            )
            for k, (v, s) in enumerate(zip(out, samples, strict=True))
        ]
    return out


def lone_level(m: int, confidence: float, correction: str) -> float:
    """The raw p a lone slowed cell must reach among ``m`` judged cells: alpha / m under holm
    and bh (a single rejection is held to the strictest step), alpha under none."""
    a = alpha(confidence)
    return a if correction == "none" else a / max(m, 1)


def min_values(n_baseline: int, level: float, most: int = 1000) -> int:
    """The fewest current values a rank test against ``n_baseline`` values needs to reach a
    p below ``level`` (``most`` if even that many cannot)."""
    return next((n for n in range(1, most) if min_p_value(n, n_baseline) < level), most)


def min_repeats(level: float, per_value: int = 1, most: int = 1000) -> int:
    """The fewest values of the current side that can reach a p below ``level`` when the
    baseline holds ``per_value`` values for each of them (the same scenario run on both
    sides: 1 for interleaved sides, the number of stored runs for a stored baseline)."""
    return next((n for n in range(1, most) if min_p_value(n, n * per_value) < level), most)


def unjudgeable(s: Sample, level: float, max_slowdown: float) -> bool:
    """A slowdown past the limit that no rank test on these values could show at ``level``:
    judged, it would come out "noisy" and pass however large it is, so the gate refuses it."""
    return s.ratio < 1 - max_slowdown and min_p_value(len(s.current), len(s.baseline)) >= level


def split_unjudgeable(
    samples: list[Sample], *, max_slowdown: float, confidence: float, correction: str
) -> tuple[list[Sample], list[str]]:
    """The samples the gate can judge, and a refusal for each it cannot.

    A slowdown past the limit that no rank test could show at the level a lone slowed cell is
    held to in this gate would come out "noisy" and pass however large it is: it is refused
    instead (an unchanged cell needs no test, so a run checked against itself still passes).
    """
    level = lone_level(len(samples), confidence, correction)
    judged, refusals = [], []
    for s in samples:
        min_p = min_p_value(len(s.current), len(s.baseline))
        ratio = s.ratio
        if unjudgeable(s, level, max_slowdown):
            among = (
                f" (alpha {alpha(confidence):g} over {len(samples)} judged cells, "
                f"{correction} correction)"
                if level != alpha(confidence)
                else ""
            )
            refusals.append(
                f"{s.key}: {ratio - 1:+.1%}, but with {len(s.current)} against "
                f"{len(s.baseline)} values no rank test reaches p < {level:.3g}{among} (the "
                f"smallest possible p is {min_p:.3g}), so the gate cannot judge it; measure "
                f"more repeats ({min_values(len(s.baseline), level)} or more), keep more "
                "baseline runs, or gate interleaved with harness ab"
            )
        else:
            judged.append(s)
    return judged, refusals


def gate_fails(verdicts: list[Verdict]) -> bool:
    """True when the gate must fail: a cell regressed, or is missing on one side.

    Args:
        verdicts: from :func:`harness.gate.verdicts.check`.
    """
    return any(v.status in FAILING for v in verdicts)
