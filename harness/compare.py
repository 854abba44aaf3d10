"""Statistics across runs: is the current run slower than the baseline, beyond noise?

Kept apart from rendering (report.py) and from any backend. A cell regressed when its median
throughput fell by more than the allowed amount AND a one-sided Mann-Whitney U test on the
per-repeat values says so at the stated confidence. A lone ratio of medians is never enough:
on a noisy runner two runs of the same code differ by several percent.
"""

from __future__ import annotations

import dataclasses
import math
import random
import re
import statistics
from functools import lru_cache
from typing import Any


class LimitError(ValueError):
    """A --max-slowdown value that cannot be parsed."""


# What the gate ranks (``--metric``): a field of a result's ``train`` with per-repeat values.
METRICS = {
    # samples over each repeat's measured epochs / their wall time: what a user gets
    "throughput": "samples_per_sec",
    # batch size / the median 10-step chunk's time per step: blind to bursts of other work on
    # a shared machine (they slow some chunks), and to slowdowns that hit only some steps
    "typical": "typical_samples_per_sec",
}


def parse_limit(text: str) -> float:
    """``"5%"`` or ``"0.05"`` -> 0.05."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(%?)\s*", text)
    if not m:
        raise LimitError(
            f"--max-slowdown: expected a percentage like 5% or a fraction like 0.05, got {text!r}"
        )
    value = float(m.group(1)) / (100 if m.group(2) else 1)
    if not 0 < value < 1:
        raise LimitError(f"--max-slowdown: must be between 0% and 100%, got {text!r}")
    return value


@lru_cache(maxsize=256)
def _u_counts(n1: int, n2: int) -> tuple[int, ...]:
    """Number of arrangements giving each U = 0..n1*n2 (no ties), by the classic recursion."""
    # f(n1, n2, u) = f(n1-1, n2, u-n2) + f(n1, n2-1, u)
    if n1 == 0 or n2 == 0:
        return (1,)
    a = _u_counts(n1 - 1, n2)
    b = _u_counts(n1, n2 - 1)
    out = [0] * (n1 * n2 + 1)
    for u, c in enumerate(b):
        out[u] += c
    for u, c in enumerate(a):
        out[u + n2] += c
    return tuple(out)


def mann_whitney_less(x: list[float], y: list[float]) -> float:
    """One-sided exact p-value that values in ``x`` tend to be smaller than those in ``y``.

    U counts pairs (xi, yj) with xi > yj (ties count one half); small U means x is smaller.
    The p-value is P(U <= observed) under the null of no difference (exact, no-ties table).
    """
    n1, n2 = len(x), len(y)
    if not n1 or not n2:
        raise ValueError("both samples need values")
    u = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a in x for b in y)
    counts = _u_counts(n1, n2)
    total = sum(counts)
    return sum(c for k, c in enumerate(counts) if k <= u + 1e-9) / total


def bootstrap_ratio_ci(
    current: list[float],
    baseline: list[float],
    confidence: float = 0.95,
    n: int = 4000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile-bootstrap interval of median(current) / median(baseline)."""
    rng = random.Random(seed)
    ratios = sorted(
        statistics.median(rng.choices(current, k=len(current)))
        / statistics.median(rng.choices(baseline, k=len(baseline)))
        for _ in range(n)
    )
    tail = (1 - confidence) / 2
    return ratios[int(tail * n)], ratios[min(n - 1, int((1 - tail) * n))]


@dataclasses.dataclass(frozen=True)
class Verdict:
    key: str
    status: str  # regressed | improved | unchanged | noisy | missing
    ratio: float | None = None
    ci: tuple[float, float] | None = None
    p_slower: float | None = None
    p_faster: float | None = None
    why: str = ""
    n: tuple[int, int] | None = None  # values compared: current, baseline


def judge(
    key: str,
    current: list[float],
    baseline: list[float],
    *,
    max_slowdown: float = 0.05,
    confidence: float = 0.95,
    run_allowance: float = 0.0,
    baseline_runs: int = 1,
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
    """
    alpha = round(1 - confidence, 12)  # 1 - 0.95 is 0.05000000000000004 in binary
    ratio = statistics.median(current) / statistics.median(baseline)
    p_slower = mann_whitney_less(current, baseline)
    p_faster = mann_whitney_less(baseline, current)
    change = f"{ratio - 1:+.1%}"
    low, high = math.exp(-run_allowance), math.exp(run_allowance)
    if ratio < 1 - max_slowdown:
        if p_slower < alpha and ratio >= low:
            why = (
                f"{change} is significant (p={p_slower:.3g}), but from the spread of the "
                f"baseline's {baseline_runs} runs another run of the same code may land "
                f"{1 - low:.1%} lower by chance ({confidence:.0%} prediction bound): too noisy "
                "to judge"
            )
            return Verdict(key, "noisy", ratio, None, p_slower, p_faster, why)
        if p_slower < alpha:
            why = f"{change}, past the allowed -{max_slowdown:.0%}; Mann-Whitney p={p_slower:.3g} < {alpha:.3g}"
            return Verdict(key, "regressed", ratio, None, p_slower, p_faster, why)
        why = (
            f"{change} looks slower, but p={p_slower:.3g} >= {alpha:.3g} with "
            f"{len(current)} vs {len(baseline)} repeats: too noisy to judge"
        )
        return Verdict(key, "noisy", ratio, None, p_slower, p_faster, why)
    if ratio > max(1 + max_slowdown, high) and p_faster < alpha:
        why = f"{change}; Mann-Whitney p={p_faster:.3g}"
        return Verdict(key, "improved", ratio, None, p_slower, p_faster, why)
    return Verdict(
        key,
        "unchanged",
        ratio,
        None,
        p_slower,
        p_faster,
        f"{change}, within ±{max_slowdown:.0%} or not significant",
    )


def min_p_value(n1: int, n2: int) -> float:
    """The smallest one-sided p a rank test can reach with these repeat counts."""
    counts = _u_counts(n1, n2)
    return counts[0] / sum(counts)


def cell_key(doc: dict[str, Any]) -> str:
    return (
        f"{doc.get('scenario', {}).get('name', '?')}/{doc['cell'].get('id', '?')}--{doc['backend']}"
    )


def fingerprint(doc: dict[str, Any]) -> dict[str, Any]:
    """What must match for two results to be comparable: hardware and versions."""
    env = doc.get("environment") or {}
    gpu = env.get("gpu") or {}
    return {
        "cpu_model": env.get("cpu_model"),
        "cpu_count": env.get("cpu_count_logical"),
        "gpus": [g.get("name") for g in gpu.get("gpus", [])],
        "driver": gpu.get("driver"),
        "keras": env.get("keras"),
        "backend_versions": env.get("backend_versions"),
        "device": (doc.get("device") or {}).get("variables_on"),
    }


def unit_id(doc: dict[str, Any]) -> str:
    """Which measurement a result belongs to: one side of an A/B run (a file per round),
    else its run."""
    ab = doc.get("ab")
    if ab:
        return f"ab:{ab['id']}/{ab['side']}"
    return f"run:{doc.get('run_id') or doc.get('_path', '?')}"


def _units(docs: list[dict]) -> dict[str, dict[str, list[dict]]]:
    """key -> unit -> results, in file order."""
    out: dict[str, dict[str, list[dict]]] = {}
    for d in docs:
        out.setdefault(cell_key(d), {}).setdefault(unit_id(d), []).append(d)
    return out


def has_metric(doc: dict[str, Any], metric: str = "throughput") -> bool:
    return bool(((doc.get("train") or {}).get(METRICS[metric]) or {}).get("values"))


def _values(docs: list[dict], metric: str = "throughput") -> list[float]:
    """The values to rank: every repeat of a run; one per process (its median) of an A/B
    side, whose repeats share their process's luck and are not independent samples."""
    out = []
    for d in docs:
        values = d["train"][METRICS[metric]]["values"]
        out += [statistics.median(values)] if d.get("ab") else values
    return out


def values_by_side(
    docs: list[dict], metric: str = "throughput"
) -> dict[str, dict[str, list[float]]]:
    """key -> A/B side -> the values the gate ranks (one per worker), from ok results that
    carry ``metric``."""
    out: dict[str, dict[str, list[float]]] = {}
    for d in docs:
        if d["status"] == "ok" and d.get("ab") and has_metric(d, metric):
            side = out.setdefault(cell_key(d), {}).setdefault(d["ab"]["side"], [])
            side += _values([d], metric)
    return out


def t_quantile(p: float, df: int) -> float:
    """Student's t quantile (one-sided ``p`` in (0.5, 1)): exact for 1 and 2 degrees of
    freedom, Cornish-Fisher expansion beyond (within 1.5% at df 3, better after)."""
    if df == 1:
        return math.tan(math.pi * (p - 0.5))
    if df == 2:
        return (2 * p - 1) / math.sqrt(2 * p * (1 - p))
    z = statistics.NormalDist().inv_cdf(p)
    return (
        z
        + (z**3 + z) / (4 * df)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3)
    )


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


def check(
    current: list[dict],
    baseline: list[dict],
    *,
    max_slowdown: float = 0.05,
    confidence: float = 0.95,
    allow_mismatch: bool = False,
    metric: str = "throughput",
) -> tuple[list[Verdict], list[str]]:
    """Judges every cell present in both; one that failed on either side is "missing".

    Results are grouped per cell into *units*: a run, or one side of an interleaved A/B run
    (one result per worker process and round). The current side is the newest unit per cell; the
    baseline pools every unit it holds (``harness baseline --add`` keeps several runs), and
    the spread between those runs becomes the cell's run-to-run noise, below which no
    slowdown is called a regression. Interleaved A/B sides share their moments on the machine,
    so there the rank test alone decides.

    ``metric`` (see :data:`METRICS`) picks the values ranked; a result recorded without
    them (an older harness) makes its cell "missing".

    Returns:
        The verdicts, and refusals: cells whose machine or versions differ (unless allowed).
    """
    base_units = _units([d for d in baseline if d["status"] == "ok"])
    base_failed = _units([d for d in baseline if d["status"] != "ok"])
    verdicts, refusals = [], []
    for key, units in _units(current).items():
        if key not in base_units:
            if key in base_failed:  # present in both, but the baseline has nothing to judge by
                d = next(iter(base_failed[key].values()))[0]
                who = f"{d['ab']['side']} side" if d.get("ab") else "baseline"
                why = f"{who}: {d['status']}: {d.get('reason')}"
                cur_failed = [x for xs in units.values() for x in xs if x["status"] != "ok"]
                if cur_failed:
                    c = cur_failed[0]
                    why += f"; current: {c['status']}: {c.get('reason')}"
                verdicts.append(Verdict(key, "missing", why=why))
            continue
        # The newest unit; of an A/B run given whole, its candidate side.
        unit = max(
            units.values(),
            key=lambda ds: (
                (ds[0].get("ab") or {}).get("side") != "baseline",
                max(d.get("started") or "" for d in ds),
            ),
        )
        # A failed worker of this side, or of the other side of the same A/B run (its rounds
        # are then no longer paired, and a baseline that crashes is news, not noise to drop).
        ab_id = (unit[0].get("ab") or {}).get("id")
        failed = [d for d in unit if d["status"] != "ok"] + [
            d
            for ds in (base_failed.get(key) or {}).values()
            for d in ds
            if ab_id is not None and (d.get("ab") or {}).get("id") == ab_id
        ]
        if failed:
            d = failed[0]
            who = f"{d['ab']['side']} side" if d.get("ab") else "current run"
            verdicts.append(Verdict(key, "missing", why=f"{who}: {d['status']}: {d.get('reason')}"))
            continue
        ref_units = base_units[key]
        fp_cur = fingerprint(unit[0])
        other = next(
            (fp for fp in (fingerprint(ds[0]) for ds in ref_units.values()) if fp != fp_cur),
            None,
        )
        if other is not None and not allow_mismatch:
            diff = [k for k in fp_cur if fp_cur[k] != other[k]]
            detail = "; ".join(f"{k}: {other[k]} -> {fp_cur[k]}" for k in diff)
            refusals.append(
                f"{key}: different machine or versions ({detail}); use --allow-mismatch to compare anyway"
            )
            continue
        ref_docs = [d for ds in ref_units.values() for d in ds]
        lacking = [d for d in unit + ref_docs if not has_metric(d, metric)]
        if lacking:
            why = (
                f"{lacking[0].get('_path') or 'a result'} has no train.{METRICS[metric]} "
                f"(--metric {metric}: an older harness, or no step was timed)"
            )
            verdicts.append(Verdict(key, "missing", why=why))
            continue
        cur = _values(unit, metric)
        ref = _values(ref_docs, metric)
        interleaved = is_interleaved(unit + ref_docs)
        allowance = (
            0.0
            if interleaved
            else run_allowance([_values(ds, metric) for ds in ref_units.values()], confidence)
        )
        verdict = judge(
            key, cur, ref, max_slowdown=max_slowdown, confidence=confidence,
            run_allowance=allowance, baseline_runs=len(ref_units),
        )  # fmt: skip
        # The interval is for the reader; the verdict itself rests on the rank test.
        ci = bootstrap_ratio_ci(cur, ref, confidence)
        verdicts.append(dataclasses.replace(verdict, ci=ci, n=(len(cur), len(ref))))
    return verdicts, refusals


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


def is_interleaved(docs: list[dict]) -> bool:
    """True when all these results come from one A/B run (measured together)."""
    ids = {(d.get("ab") or {}).get("id") for d in docs}
    return len(ids) == 1 and None not in ids


def baseline_runs(baseline: list[dict]) -> int:
    """The fewest runs any cell of the baseline holds (A/B sides count as one)."""
    units = _units([d for d in baseline if d["status"] == "ok"])
    return min((len(u) for u in units.values()), default=0)


def render_check(verdicts: list[Verdict], markdown: bool = False) -> str:
    head = ["cell", "verdict", "ratio", "95% CI", "p (slower)", "n", "why"]
    rows = []
    for v in sorted(verdicts, key=lambda v: (v.status != "regressed", v.key)):
        ratio = "" if v.ratio is None else f"{v.ratio:.3f}"
        ci = "" if v.ci is None else f"{v.ci[0]:.3f}-{v.ci[1]:.3f}"
        p = "" if v.p_slower is None else f"{v.p_slower:.3g}"
        n = "" if v.n is None else f"{v.n[0]}/{v.n[1]}"
        status = v.status.upper() if v.status == "regressed" else v.status
        rows.append([v.key, status, ratio, ci, p, n, v.why])
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines) + "\n"
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows, strict=False)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths[:-1]) + "  {}"
    return "\n".join(fmt.format(*r) for r in [head, *rows]) + "\n"


def calibrate(
    runs: list[list[float]],
    *,
    confidence: float = 0.95,
    grid: tuple[float, ...] | None = None,
    pairs: list[tuple[list[float], list[float]]] | None = None,
) -> dict[str, Any]:
    """How small a slowdown can this runner catch, from repeated runs of the same code?

    Args:
        runs: per-repeat rates (throughput or typical) of one cell, one list per run (at
            least two runs);
            every ordered pair of them is an A/A comparison.
        confidence: of the gate's rank test.
        grid: candidate slowdowns, ascending (default 1% to 50% in 0.5% steps).
        pairs: the A/A comparisons to use instead of every pair of ``runs`` (interleaved
            A/A jobs: each job's two sides, in both orders).

    Returns:
        ``noise_floor``: the largest |median ratio - 1| between two runs of the same code;
        ``max_slowdown``: the smallest allowed slowdown at which no A/A pair is called a
        regression; ``detectable``: the smallest real slowdown that the gate, with that
        limit, calls a regression for every ordered pair of runs (None if none in the grid);
        ``min_p``: the smallest p the rank test can reach with these repeat counts;
        ``spread``: the pooled standard deviation of log values within a run or side.
    """
    if pairs is None:
        if len(runs) < 2:
            raise ValueError("calibration needs at least two runs of the same code")
        pairs = [(a, b) for i, a in enumerate(runs) for j, b in enumerate(runs) if i != j]
    else:
        runs = [r for pair in pairs for r in pair]
    grid = grid or tuple(round(0.01 + 0.005 * i, 4) for i in range(99))
    noise = max(run_noise([a, b]) for a, b in pairs)
    limit = next(
        (
            m
            for m in grid
            if all(
                judge("aa", a, b, max_slowdown=m, confidence=confidence).status != "regressed"
                for a, b in pairs
            )
        ),
        None,
    )
    detectable = None
    if limit is not None:
        for d in grid:
            if d <= limit:
                continue
            if all(
                judge(
                    "d", [x * (1 - d) for x in a], b, max_slowdown=limit, confidence=confidence
                ).status
                == "regressed"
                for a, b in pairs
            ):
                detectable = d
                break
    n = min(len(r) for r in runs)
    return {
        "runs": len(runs),
        "pairs": len(pairs),
        "repeats": n,
        "noise_floor": noise,
        "max_slowdown": limit,
        "detectable": detectable,
        "min_p": min_p_value(n, n),
        "alpha": round(1 - confidence, 12),
        "spread": log_spread(runs),
    }
