"""The gate's verdicts: is the current run slower than the baseline, beyond noise?

Which results meet (same cell, comparable machine and versions), and the rules that judge
them; the statistics themselves are in stats.py. A cell regressed when its median
throughput fell by more than the allowed amount AND a one-sided Mann-Whitney U test on the
per-repeat values says so at the stated confidence. A lone ratio of medians is never enough:
on a noisy runner two runs of the same code differ by several percent.
"""

from __future__ import annotations

import dataclasses
import math
import re
import statistics
from typing import Any

from ..errors import UserError
from ..results import cell_key
from .stats import bootstrap_ratio_ci, mann_whitney_less, min_p_value, run_allowance


class LimitError(UserError):
    """A --max-slowdown or --confidence value that cannot be parsed or is out of range."""


# Every verdict the gate gives a cell, in the order the CLI counts them.
STATUSES = ("regressed", "improved", "noisy", "unchanged", "missing", "not compared")
# Verdicts that fail the gate: a slowdown, or a cell that ran on one side only (or crashed).
FAILING = ("regressed", "missing")
# Results that never ran, for a reason the harness chose: not a fault of the code under test.
NOT_RUN = ("skipped", "unsupported")
# Confidence accepted: below 0.5 the rank test would call chance a regression; at 1 or above
# no p-value is small enough, so the gate could never fail.
CONFIDENCE_RANGE = "from 0.5 (50%) to below 1 (100%)"


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


def parse_confidence(text: str) -> float:
    """``"0.95"`` or ``"95%"`` -> 0.95; anything outside [0.5, 1) is refused.

    Args:
        text: the value given to ``--confidence``.

    Raises:
        LimitError: one line naming ``--confidence``, the value and the accepted range.
    """
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(%?)\s*", text)
    if not m:
        raise LimitError(
            f"--confidence: expected a fraction like 0.95 or a percentage like 95%, got {text!r}"
        )
    number = float(m.group(1))
    value = number / (100 if m.group(2) else 1)
    if not 0.5 <= value < 1:
        # "95" is the likeliest slip: a percentage without its sign
        hint = f" (did you mean {text.strip()}%?)" if not m.group(2) and 50 <= number < 100 else ""
        raise LimitError(f"--confidence: must be {CONFIDENCE_RANGE}, got {text!r}{hint}")
    return value


def check_confidence(confidence: float) -> None:
    """Refuses a confidence the gate cannot work with (callers that bypass the CLI)."""
    if not 0.5 <= confidence < 1:  # NaN fails this too
        raise ValueError(f"confidence must be {CONFIDENCE_RANGE}, got {confidence!r}")


def alpha(confidence: float) -> float:
    """The rank test's significance level; rounded, as 1 - 0.95 is 0.05000000000000004."""
    return round(1 - confidence, 12)


def percent(fraction: float) -> str:
    """0.95 -> "95%", 0.995 -> "99.5%" (no float noise such as 56.99999999999999%)."""
    return f"{round(fraction * 100, 6):g}%"


@dataclasses.dataclass(frozen=True)
class Verdict:
    key: str
    status: str  # one of STATUSES
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

    Raises:
        ValueError: ``confidence`` outside [0.5, 1).
    """
    check_confidence(confidence)
    threshold = alpha(confidence)
    ratio = statistics.median(current) / statistics.median(baseline)
    p_slower = mann_whitney_less(current, baseline)
    p_faster = mann_whitney_less(baseline, current)
    change = f"{ratio - 1:+.1%}"
    low, high = math.exp(-run_allowance), math.exp(run_allowance)
    if ratio < 1 - max_slowdown:
        if p_slower < threshold and ratio >= low:
            why = (
                f"{change} is significant (p={p_slower:.3g}), but from the spread of the "
                f"baseline's {baseline_runs} runs another run of the same code may land "
                f"{1 - low:.1%} lower by chance ({percent(confidence)} prediction bound): too noisy "
                "to judge"
            )
            return Verdict(key, "noisy", ratio, None, p_slower, p_faster, why)
        if p_slower < threshold:
            why = f"{change}, past the allowed -{percent(max_slowdown)}; Mann-Whitney p={p_slower:.3g} < {threshold:.3g}"
            return Verdict(key, "regressed", ratio, None, p_slower, p_faster, why)
        why = (
            f"{change} looks slower, but p={p_slower:.3g} >= {threshold:.3g} with "
            f"{len(current)} vs {len(baseline)} repeats: too noisy to judge"
        )
        return Verdict(key, "noisy", ratio, None, p_slower, p_faster, why)
    if ratio > max(1 + max_slowdown, high) and p_faster < threshold:
        why = f"{change}; Mann-Whitney p={p_faster:.3g}"
        return Verdict(key, "improved", ratio, None, p_slower, p_faster, why)
    return Verdict(
        key,
        "unchanged",
        ratio,
        None,
        p_slower,
        p_faster,
        f"{change}, within ±{percent(max_slowdown)} or not significant",
    )


def fingerprint(doc: dict[str, Any]) -> dict[str, Any]:
    """What must match for two results to be comparable: hardware and versions, and for a
    data-parallel cell its devices, processes and the processes run on other hosts (added
    only there, so a one-device cell's fingerprint is what it always was)."""
    env = doc.get("environment") or {}
    gpu = env.get("gpu") or {}
    out = {
        "cpu_model": env.get("cpu_model"),
        "cpu_count": env.get("cpu_count_logical"),
        "gpus": [g.get("name") for g in gpu.get("gpus", [])],
        "driver": gpu.get("driver"),
        "keras": env.get("keras"),
        "backend_versions": env.get("backend_versions"),
        "device": (doc.get("device") or {}).get("variables_on"),
    }
    cell = doc.get("cell") or {}
    devices, procs = cell.get("data_parallel", 1), cell.get("data_parallel_processes", 1)
    if devices > 1 or procs > 1:
        elsewhere = (doc.get("distribution") or {}).get("processes_elsewhere") or []
        out["data_parallel"] = {
            "devices": devices,
            "processes": procs,
            "processes_elsewhere": len(elsewhere),
        }
    return out


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


def check(
    current: list[dict],
    baseline: list[dict],
    *,
    max_slowdown: float = 0.05,
    confidence: float = 0.95,
    allow_mismatch: bool = False,
    metric: str = "throughput",
    planned: set[str] | frozenset[str] = frozenset(),
) -> tuple[list[Verdict], list[str]]:
    """Judges every cell of the current run against the baseline.

    A cell that failed on either side, or ran on one side only, is "missing" (the gate
    fails). One skipped or unsupported on both sides for the same reason, or absent from the
    baseline, is "not compared" (it does not).

    Results are grouped per cell into *units*: a run, or one side of an interleaved A/B run
    (one result per worker process and round). The current side is the newest unit per cell; the
    baseline pools every unit it holds (``harness baseline --add`` keeps several runs), and
    the spread between those runs becomes the cell's run-to-run noise, below which no
    slowdown is called a regression. Interleaved A/B sides share their moments on the machine,
    so there the rank test alone decides.

    ``metric`` (see :data:`METRICS`) picks the values ranked; a result recorded without
    them (an older harness) makes its cell "missing".

    Args:
        current: result documents of the run under test.
        baseline: result documents of the baseline (one run or several, or an A/B side).
        max_slowdown: the slowdown tolerated (0.05 = 5%).
        confidence: of the rank test, in [0.5, 1).
        allow_mismatch: compare cells measured on other hardware or versions too.
        metric: which per-repeat values to rank (a key of :data:`METRICS`).
        planned: cell keys the current run's manifest planned; one without a result is
            missing (a run killed before it).

    Returns:
        The verdicts, and refusals: cells whose machine or versions differ (unless allowed).

    Raises:
        ValueError: ``confidence`` outside [0.5, 1).
    """
    check_confidence(confidence)
    base_units = _units([d for d in baseline if d["status"] == "ok"])
    base_failed = _units([d for d in baseline if d["status"] != "ok"])
    verdicts, refusals = [], []
    current_units = _units(current)
    # A cell the baseline holds and the current run lacks ran on one side only: missing when
    # the current run planned it (a run stopped before it) or ran other cells of its scenario;
    # a scenario left out as a whole is a choice of what to gate, so it is not compared.
    ran = {_scenario_backend(k) for k in current_units}
    for key in sorted(set(base_units) | set(base_failed)):
        if key in current_units:
            continue
        if key in planned or _scenario_backend(key) in ran:
            why = "in the baseline, not in the current run" + (
                " (planned, but it never ran)" if key in planned else ""
            )
            verdicts.append(Verdict(key, "missing", why=why))
        else:
            verdicts.append(Verdict(key, "not compared", why="its scenario was not run now"))
    for key in sorted(planned - set(current_units) - set(base_units) - set(base_failed)):
        verdicts.append(Verdict(key, "missing", why="planned in the current run, never ran"))
    for key, units in current_units.items():
        unit = _newest(units)
        if key not in base_units:  # the baseline has nothing to judge by
            verdicts.append(_unjudged(key, unit, base_failed.get(key, {})))
            continue
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
            diff = [k for k in sorted(set(fp_cur) | set(other)) if fp_cur.get(k) != other.get(k)]
            detail = "; ".join(f"{k}: {other.get(k)} -> {fp_cur.get(k)}" for k in diff)
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
        threshold, min_p = alpha(confidence), min_p_value(len(cur), len(ref))
        ratio = statistics.median(cur) / statistics.median(ref)
        if min_p >= threshold and ratio < 1 - max_slowdown:
            # No rank test can reach significance with so few values, so the slowdown would
            # come out "noisy" and pass however large it is: refuse instead (an unchanged cell
            # needs no test, so a run checked against itself still passes).
            refusals.append(
                f"{key}: {ratio - 1:+.1%}, but with {len(cur)} against {len(ref)} values no "
                f"rank test reaches p < {threshold:g} (the smallest possible p is {min_p:.3g}), so "
                "the gate cannot judge it; measure more repeats (5 or more), keep more "
                "baseline runs, or gate interleaved with harness ab"
            )
            continue
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


def _scenario_backend(key: str) -> tuple[str, str]:
    """("sweep", "jax") of "sweep/bs32--jax"."""
    return key.split("/", 1)[0], key.rsplit("--", 1)[-1]


def _newest(units: dict[str, list[dict]]) -> list[dict]:
    """The newest unit of a cell; of an A/B run given whole, its candidate side."""
    return max(
        units.values(),
        key=lambda ds: (
            (ds[0].get("ab") or {}).get("side") != "baseline",
            max(d.get("started") or "" for d in ds),
        ),
    )


def _outcomes(docs: list[dict]) -> str:
    """The distinct "status: reason" of these results, in file order."""
    seen = dict.fromkeys(f"{d['status']}: {d.get('reason')}" for d in docs)
    return ", ".join(seen)


def _unjudged(key: str, unit: list[dict], base: dict[str, list[dict]]) -> Verdict:
    """The verdict on a cell that the baseline holds no ok result of.

    Args:
        key: the cell's name.
        unit: the cell's results on the current side (its newest unit).
        base: the baseline's results of the cell, by unit, none of them ok (may be empty).
    """
    cur_bad = [d for d in unit if d["status"] != "ok"]
    if not base:
        # a new cell (or a baseline of other scenarios): nothing to say about its speed, but
        # one that crashed is news whatever the baseline holds
        why = "not in the baseline"
        if cur_bad:
            why += f"; current: {_outcomes(cur_bad)}"
        crashed = any(d["status"] not in NOT_RUN for d in cur_bad)
        return Verdict(key, "missing" if crashed else "not compared", why=why)
    base_docs = [d for ds in base.values() for d in ds]
    outcomes = {(d["status"], d.get("reason")) for d in unit + base_docs}
    if len(outcomes) == 1:
        ((status, reason),) = outcomes
        if status in NOT_RUN:
            # the same choice on both sides (no GPU here, a setting a backend cannot honour):
            # no code under test ran, so there is nothing to compare and nothing went wrong
            return Verdict(key, "not compared", why=f"{status} on both sides: {reason}")
    d = base_docs[0]
    who = f"{d['ab']['side']} side" if d.get("ab") else "baseline"
    why = f"{who}: {_outcomes(base_docs)}"
    if cur_bad:
        why += f"; current: {_outcomes(cur_bad)}"
    return Verdict(key, "missing", why=why)


def gate_fails(verdicts: list[Verdict]) -> bool:
    """True when the gate must fail: a cell regressed, or is missing on one side.

    Args:
        verdicts: from :func:`check`.
    """
    return any(v.status in FAILING for v in verdicts)


def is_interleaved(docs: list[dict]) -> bool:
    """True when all these results come from one A/B run (measured together)."""
    ids = {(d.get("ab") or {}).get("id") for d in docs}
    return len(ids) == 1 and None not in ids


def baseline_runs(baseline: list[dict]) -> int:
    """The fewest runs any cell of the baseline holds (A/B sides count as one)."""
    units = _units([d for d in baseline if d["status"] == "ok"])
    return min((len(u) for u in units.values()), default=0)
