"""Which results meet, and ``check``: the current run's results and the baseline's grouped per
cell into units (a run, or one side of an interleaved A/B run) and sides, matched on the
machine and versions (the fingerprint) and on the work done (harness/workload.py), and each
cell given a verdict, or a sample that judge.py judges with the others.

The names other modules use from the gate's settings (options.py) and its rules (judge.py) are
also importable from here.

Longer than 400 lines, and one concern: every rule that decides whether two sets of results
may be compared at all (``check``'s per-cell rules) stays in one reading.
"""

from __future__ import annotations

import statistics
from typing import Any

from .. import workload
from ..results import NOT_RUN, Result, natural_key
from .judge import (
    FAILING,
    REFUSED,
    STATUSES,
    Sample,
    Verdict,
    VerdictStatus,
    gate_fails,
    judge,
    judge_family,
    lone_level,
    min_repeats,
    min_values,
    split_unjudgeable,
    unjudgeable,
)
from .options import (
    CONFIDENCE_RANGE,
    CORRECTIONS,
    METRICS,
    LimitError,
    alpha,
    check_confidence,
    parse_confidence,
    parse_limit,
    percent,
)

__all__ = [
    "CONFIDENCE_RANGE", "CORRECTIONS", "FAILING", "METRICS", "REFUSED", "STATUSES",
    "LimitError", "Sample", "Verdict", "VerdictStatus", "alpha", "baseline_runs", "check", "check_confidence",
    "fingerprint", "gate_fails", "has_metric", "is_interleaved", "judge", "judge_family",
    "lone_level", "min_repeats", "min_values", "parse_confidence", "parse_limit", "percent",
    "unit_id", "unjudgeable", "values_by_side",
]  # fmt: skip


def fingerprint(doc: dict[str, Any]) -> dict[str, Any]:
    """What must match for two results to be comparable: hardware and versions, and for a
    data-parallel cell its devices, processes and the processes run on other hosts (added
    only there, so a one-device cell's fingerprint is what it always was)."""
    r = Result(doc)
    env = r.environment
    gpu = env.get("gpu") or {}
    out = {
        "cpu_model": env.get("cpu_model"),
        "cpu_count": env.get("cpu_count_logical"),
        "gpus": [g.get("name") for g in gpu.get("gpus", [])],
        "driver": gpu.get("driver"),
        "keras": env.get("keras"),
        "backend_versions": env.get("backend_versions"),
        "device": r.variables_on,
    }
    devices, procs = r.devices, r.processes
    if devices > 1 or procs > 1:
        elsewhere = r.distribution.get("processes_elsewhere") or []
        out["data_parallel"] = {
            "devices": devices,
            "processes": procs,
            "processes_elsewhere": len(elsewhere),
        }
    return out


def unit_id(doc: dict[str, Any]) -> str:
    """Which measurement a result belongs to: one side of an A/B run (a file per round),
    else its run."""
    r = Result(doc)
    if r.ab:
        return f"ab:{r.ab_id}/{r.ab_side}"
    return f"run:{r.run_id or r.path or '?'}"


def _units(docs: list[dict]) -> dict[str, dict[str, list[dict]]]:
    """key -> unit -> results, in file order."""
    out: dict[str, dict[str, list[dict]]] = {}
    for d in docs:
        out.setdefault(Result(d).name, {}).setdefault(unit_id(d), []).append(d)
    return out


def has_metric(doc: dict[str, Any], metric: str = "throughput") -> bool:
    rate = Result(doc).rate(METRICS[metric])
    return bool(rate and rate.values)


def _values(docs: list[dict], metric: str = "throughput") -> list[float]:
    """The values to rank: every repeat of a run; one per process (its median) of an A/B
    side, whose repeats share their process's luck and are not independent samples."""
    out = []
    for d in map(Result, docs):
        values = d.rate(METRICS[metric]).values
        out += [statistics.median(values)] if d.ab else values
    return out


def values_by_side(
    docs: list[dict], metric: str = "throughput"
) -> dict[str, dict[str, list[float]]]:
    """key -> A/B side -> the values the gate ranks (one per worker), from ok results that
    carry ``metric``."""
    out: dict[str, dict[str, list[float]]] = {}
    for d in docs:
        r = Result(d)
        if r.ok and r.ab and has_metric(d, metric):
            out.setdefault(r.name, {}).setdefault(r.ab_side, []).extend(_values([d], metric))
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
    correction: str = "holm",
    allow_workload_change: bool = False,
    sides_may_differ: bool = False,
) -> tuple[list[Verdict], list[str]]:
    """Judges every cell of the current run against the baseline.

    A cell ok in the baseline that failed, was skipped or was unsupported now is "lost" (the
    gate fails: a GPU runner whose CUDA broke must not pass). A cell that failed on the
    baseline's side, or ran on one side only, is "missing" (the gate fails). One skipped or
    unsupported on both sides for the same reason, or absent from the baseline, is "not
    compared" (it does not). A cell whose workload (what it computes: harness/workload.py)
    differs from the baseline's is "workload changed", listing what differs, and is not
    judged, unless ``allow_workload_change``: then it is judged and its reason says so.

    Results are grouped per cell into *units*: a run, or one side of an interleaved A/B run
    (one result per worker process and round). The current side is the newest unit per cell; the
    baseline pools every unit it holds (``harness baseline --add`` keeps several runs), and
    the spread between those runs becomes the cell's run-to-run noise, below which no
    slowdown is called a regression. Interleaved A/B sides share their moments on the machine,
    so there the rank test alone decides. The judged cells are tested together
    (:func:`judge_family`): the false-alarm rate is held over the whole gate.

    ``metric`` (see :data:`METRICS`) picks the values ranked; a result recorded without
    them (an older harness) makes its cell "missing".

    Args:
        current: result documents of the run under test.
        baseline: result documents of the baseline (one run or several, or an A/B side).
        max_slowdown: the slowdown tolerated (0.05 = 5%).
        confidence: of the whole gate, in [0.5, 1).
        allow_mismatch: compare cells measured on other hardware or versions too.
        metric: which per-repeat values to rank (a key of :data:`METRICS`).
        planned: cell keys the current run's manifest planned; one without a result is
            missing (a run killed before it).
        correction: how the error rate is held over the judged cells (:data:`CORRECTIONS`).
        allow_workload_change: judge cells whose workload differs from the baseline's, or
            differs inside one side.
        sides_may_differ: judge cells whose current results do other work than the
            baseline's, each side doing one (``harness ab``: a --candidate-set is the user's
            stated intent), listing what differs; a side that mixes workloads is still refused.

    Returns:
        The verdicts, and refusals: cells whose machine or versions differ (unless allowed),
        or whose slowdown no rank test could show at the gate's level.

    Raises:
        ValueError: ``confidence`` outside [0.5, 1), or an unknown correction.
    """
    check_confidence(confidence)
    base_units = _units([d for d in baseline if Result(d).ok])
    base_failed = _units([d for d in baseline if not Result(d).ok])
    verdicts, refusals = [], []
    samples: list[Sample] = []
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
            verdicts.append(Verdict(key, VerdictStatus.MISSING, why=why))
        else:
            verdicts.append(
                Verdict(key, VerdictStatus.NOT_COMPARED, why="its scenario was not run now")
            )
    for key in sorted(planned - set(current_units) - set(base_units) - set(base_failed)):
        verdicts.append(
            Verdict(key, VerdictStatus.MISSING, why="planned in the current run, never ran")
        )
    for key, units in current_units.items():
        unit = _newest(units)
        if key not in base_units:  # the baseline has nothing to judge by
            verdicts.append(_unjudged(key, unit, base_failed.get(key, {})))
            continue
        found = _cell(
            key, unit, base_units[key], base_failed.get(key) or {}, metric=metric,
            allow_mismatch=allow_mismatch, allow_workload_change=allow_workload_change,
            sides_may_differ=sides_may_differ,
        )  # fmt: skip
        if isinstance(found, Sample):
            samples.append(found)
        elif isinstance(found, Verdict):
            verdicts.append(found)
        else:
            refusals.append(found)
    judged, unjudged = split_unjudgeable(
        samples, max_slowdown=max_slowdown, confidence=confidence, correction=correction
    )
    refusals += unjudged
    verdicts += judge_family(
        judged, max_slowdown=max_slowdown, confidence=confidence, correction=correction
    )
    return sorted(verdicts, key=lambda v: natural_key(v.key)), refusals


def _cell(
    key: str,
    unit: list[dict],
    ref_units: dict[str, list[dict]],
    base_failed: dict[str, list[dict]],
    *,
    metric: str,
    allow_mismatch: bool,
    allow_workload_change: bool,
    sides_may_differ: bool,
) -> Sample | Verdict | str:
    """One cell the baseline holds ok results of: its sample to judge, or its verdict without
    one, or why the gate refuses it (another machine). The arguments are :func:`check`'s.

    Args:
        key: the cell's name.
        unit: its results on the current side (the newest unit).
        ref_units: its ok results in the baseline, by unit.
        base_failed: its other results in the baseline, by unit.
    """
    # A result of this side that is not ok: the cell is lost (it ran ok in the baseline).
    # A failed worker of the other side of the same A/B run: its rounds are no longer
    # paired, and a baseline that crashes is news, not noise to drop.
    ab_id = Result(unit[0]).ab_id
    bad = [r for r in map(Result, unit) if not r.ok]
    if bad:
        r = bad[0]
        why = f"ok in the baseline; {_who(r, 'current run')}: {r.status}: {r.reason}"
        return Verdict(key, VerdictStatus.LOST, why=why)
    other_side = [
        r
        for ds in base_failed.values()
        for r in map(Result, ds)
        if ab_id is not None and r.ab_id == ab_id
    ]
    if other_side:
        r = other_side[0]
        return Verdict(key, VerdictStatus.MISSING, why=f"{r.ab_side} side: {r.status}: {r.reason}")
    fp_cur = fingerprint(unit[0])
    other = next(
        (fp for fp in (fingerprint(ds[0]) for ds in ref_units.values()) if fp != fp_cur),
        None,
    )
    if other is not None and not allow_mismatch:
        diff = [k for k in sorted(set(fp_cur) | set(other)) if fp_cur.get(k) != other.get(k)]
        detail = "; ".join(f"{k}: {other.get(k)} -> {fp_cur.get(k)}" for k in diff)
        return f"{key}: different machine or versions ({detail}); use --allow-mismatch to compare anyway"
    ref_docs = [d for ds in ref_units.values() for d in ds]
    across, within = _workload_changes(unit, ref_docs)
    if within and not allow_workload_change:
        # rounds of one A/B side, or runs of one stored baseline, that did other work (a
        # job resumed after its code changed): no side is one measurement of one thing
        why = (
            "runs of one side did other work (a job resumed after a change, or a baseline "
            f"stored across one): {within}"
        )
        return Verdict(key, VerdictStatus.WORKLOAD_CHANGED, why=why)
    if across and not (allow_workload_change or sides_may_differ):
        return Verdict(key, VerdictStatus.WORKLOAD_CHANGED, why=across)
    changed = "; ".join(c for c in (across, within) if c)
    lacking = [d for d in unit + ref_docs if not has_metric(d, metric)]
    if lacking:
        why = (
            f"{Result(lacking[0]).path or 'a result'} has no train.{METRICS[metric]} "
            f"(--metric {metric}: an older harness, or no step was timed)"
        )
        return Verdict(key, VerdictStatus.MISSING, why=why)
    notes = [f"workload changed (judged as asked): {changed}"] if changed else []
    measured = _method_changes(unit, ref_docs)
    if measured:
        notes.append(f"measured otherwise: {measured}")
    return Sample(
        key,
        _values(unit, metric),
        [_values(ds, metric) for ds in ref_units.values()],
        interleaved=is_interleaved(unit + ref_docs),
        note="; ".join(notes),
    )


def _who(r: Result, plain: str) -> str:
    """Whose result ``r`` is, in a reason: "baseline side" of an A/B run, else ``plain``."""
    return f"{r.ab_side} side" if r.ab else plain


def _listed(pairs: list[tuple[dict, dict]], compare) -> str:
    """Every difference ``compare(before, after)`` names over these pairs, once each."""
    found: list[str] = []
    for before, after in pairs:
        found += [d for d in compare(before, after) if d not in found]
    return "; ".join(found)


def _workload_changes(unit: list[dict], ref_docs: list[dict]) -> tuple[str, str]:
    """What differs, readable ("" for nothing): between the baseline's work and the current
    results'; and inside one side (the current results among themselves, or the baseline's)."""
    across = _listed([(d, unit[0]) for d in ref_docs], workload.differences)
    within = _listed(
        [(unit[0], d) for d in unit[1:]] + [(ref_docs[0], d) for d in ref_docs[1:]],
        workload.differences,
    )
    return across, within


def _method_changes(unit: list[dict], ref_docs: list[dict]) -> str:
    """How the measuring differs between the baseline and the current results."""
    return _listed([(d, unit[0]) for d in ref_docs], workload.method_differences)


def _scenario_backend(key: str) -> tuple[str, str]:
    """("sweep", "jax") of "sweep/bs32--jax"."""
    return key.split("/", 1)[0], key.rsplit("--", 1)[-1]


def _newest(units: dict[str, list[dict]]) -> list[dict]:
    """The newest unit of a cell; of an A/B run given whole, its candidate side."""
    return max(
        units.values(),
        key=lambda ds: (
            Result(ds[0]).ab_side != "baseline",
            max(Result(d).started or "" for d in ds),
        ),
    )


def _outcomes(docs: list[dict]) -> str:
    """The distinct "status: reason" of these results, in file order."""
    seen = dict.fromkeys(f"{r.status}: {r.reason}" for r in map(Result, docs))
    return ", ".join(seen)


def _unjudged(key: str, unit: list[dict], base: dict[str, list[dict]]) -> Verdict:
    """The verdict on a cell that the baseline holds no ok result of.

    Args:
        key: the cell's name.
        unit: the cell's results on the current side (its newest unit).
        base: the baseline's results of the cell, by unit, none of them ok (may be empty).
    """
    cur_bad = [d for d in unit if not Result(d).ok]
    if not base:
        # a new cell (or a baseline of other scenarios): nothing to say about its speed, but
        # one that crashed is news whatever the baseline holds
        why = "not in the baseline"
        if cur_bad:
            why += f"; current: {_outcomes(cur_bad)}"
        crashed = any(not Result(d).not_run for d in cur_bad)
        return Verdict(
            key, VerdictStatus.MISSING if crashed else VerdictStatus.NOT_COMPARED, why=why
        )
    base_docs = [d for ds in base.values() for d in ds]
    outcomes = {(r.status, r.reason) for r in map(Result, unit + base_docs)}
    if len(outcomes) == 1:
        ((status, reason),) = outcomes
        if status in NOT_RUN:
            # the same choice on both sides (no GPU here, a setting a backend cannot honour):
            # no code under test ran, so there is nothing to compare and nothing went wrong
            return Verdict(key, VerdictStatus.NOT_COMPARED, why=f"{status} on both sides: {reason}")
    why = f"{_who(Result(base_docs[0]), 'baseline')}: {_outcomes(base_docs)}"
    if cur_bad:
        why += f"; current: {_outcomes(cur_bad)}"
    return Verdict(key, VerdictStatus.MISSING, why=why)


def is_interleaved(docs: list[dict]) -> bool:
    """True when all these results come from one A/B run (measured together)."""
    ids = {Result(d).ab_id for d in docs}
    return len(ids) == 1 and None not in ids


def baseline_runs(baseline: list[dict]) -> int:
    """The fewest runs any cell of the baseline holds (A/B sides count as one)."""
    units = _units([d for d in baseline if Result(d).ok])
    return min((len(u) for u in units.values()), default=0)
