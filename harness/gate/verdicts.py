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

from .. import workload
from ..errors import UserError
from ..results import NOT_RUN, cell_key, natural_key
from .stats import adjust, levels, mann_whitney_less, min_p_value, ratio_bounds, run_allowance


class LimitError(UserError):
    """A --max-slowdown or --confidence value that cannot be parsed or is out of range."""


# Every verdict the gate gives a cell, in the order the CLI counts them.
STATUSES = (
    "regressed",
    "lost",
    "workload changed",
    "improved",
    "noisy",
    "unchanged",
    "missing",
    "not compared",
)
# Verdicts that fail the gate: a slowdown, a cell ok in the baseline that did not run ok now
# (lost), or one that ran on one side only (or crashed).
FAILING = ("regressed", "lost", "missing")
# Verdicts that make the gate refuse (exit 2): other work than the baseline's, not judged.
REFUSED = ("workload changed",)
# How the error rate is held over the judged cells (--correction): Holm-Bonferroni keeps the
# chance of any false alarm in the whole gate at most 1 - confidence (the default); bh
# (Benjamini-Hochberg) the expected share of false alarms among the alarms; none tests each
# cell at 1 - confidence alone (a 20-cell gate then raises a false alarm most of the time).
CORRECTIONS = {
    "holm": "Holm-Bonferroni: at most {alpha} chance of any false alarm over the {m} judged cells",
    "bh": "Benjamini-Hochberg: at most {alpha} expected share of false alarms among the alarms "
    "over the {m} judged cells",
    "none": "none: each of the {m} judged cells tested at {alpha} alone",
}
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

    def verdict(status: str, why: str) -> Verdict:
        return Verdict(key, status, ratio, None, raw_slower, raw_faster, why, None, p_slower)

    if ratio < 1 - max_slowdown:
        if p_slower < threshold and ratio >= low:
            return verdict("noisy", (
                f"{change} is significant ({slower}), but from the spread of the "
                f"baseline's {baseline_runs} runs another run of the same code may land "
                f"{1 - low:.1%} lower by chance ({percent(confidence)} prediction bound): too noisy "
                "to judge"
            ))  # fmt: skip
        if p_slower < threshold:
            return verdict(
                "regressed",
                f"{change}, past the allowed -{percent(max_slowdown)}; Mann-Whitney "
                f"{slower} < {threshold:.3g}",
            )
        return verdict("noisy", (
            f"{change} looks slower, but {slower} >= {threshold:.3g} with "
            f"{len(current)} vs {len(baseline)} repeats: too noisy to judge"
        ))  # fmt: skip
    if ratio > max(1 + max_slowdown, high) and p_faster < threshold:
        return verdict("improved", f"{change}; Mann-Whitney {faster}")
    return verdict("unchanged", f"{change}, within ±{percent(max_slowdown)} or not significant")


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
    base_units = _units([d for d in baseline if d["status"] == "ok"])
    base_failed = _units([d for d in baseline if d["status"] != "ok"])
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
        # A result of this side that is not ok: the cell is lost (it ran ok in the baseline).
        # A failed worker of the other side of the same A/B run: its rounds are no longer
        # paired, and a baseline that crashes is news, not noise to drop.
        ab_id = (unit[0].get("ab") or {}).get("id")
        bad = [d for d in unit if d["status"] != "ok"]
        if bad:
            d = bad[0]
            who = f"{d['ab']['side']} side" if d.get("ab") else "current run"
            why = f"ok in the baseline; {who}: {d['status']}: {d.get('reason')}"
            verdicts.append(Verdict(key, "lost", why=why))
            continue
        other_side = [
            d
            for ds in (base_failed.get(key) or {}).values()
            for d in ds
            if ab_id is not None and (d.get("ab") or {}).get("id") == ab_id
        ]
        if other_side:
            d = other_side[0]
            why = f"{d['ab']['side']} side: {d['status']}: {d.get('reason')}"
            verdicts.append(Verdict(key, "missing", why=why))
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
        across, within = _workload_changes(unit, ref_docs)
        if within and not allow_workload_change:
            # rounds of one A/B side, or runs of one stored baseline, that did other work (a
            # job resumed after its code changed): no side is one measurement of one thing
            why = (
                "runs of one side did other work (a job resumed after a change, or a baseline "
                f"stored across one): {within}"
            )
            verdicts.append(Verdict(key, "workload changed", why=why))
            continue
        if across and not (allow_workload_change or sides_may_differ):
            verdicts.append(Verdict(key, "workload changed", why=across))
            continue
        changed = "; ".join(c for c in (across, within) if c)
        lacking = [d for d in unit + ref_docs if not has_metric(d, metric)]
        if lacking:
            why = (
                f"{lacking[0].get('_path') or 'a result'} has no train.{METRICS[metric]} "
                f"(--metric {metric}: an older harness, or no step was timed)"
            )
            verdicts.append(Verdict(key, "missing", why=why))
            continue
        notes = [f"workload changed (judged as asked): {changed}"] if changed else []
        measured = _method_changes(unit, ref_docs)
        if measured:
            notes.append(f"measured otherwise: {measured}")
        samples.append(
            Sample(
                key,
                _values(unit, metric),
                [_values(ds, metric) for ds in ref_units.values()],
                interleaved=is_interleaved(unit + ref_docs),
                note="; ".join(notes),
            )
        )
    # A slowdown past the limit that no rank test could show at the level a lone slowed cell
    # is held to in this gate would come out "noisy" and pass however large it is: refuse
    # instead (an unchanged cell needs no test, so a run checked against itself still passes).
    level = lone_level(len(samples), confidence, correction)
    judged = []
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
    verdicts += judge_family(
        judged, max_slowdown=max_slowdown, confidence=confidence, correction=correction
    )
    return sorted(verdicts, key=lambda v: natural_key(v.key)), refusals


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
