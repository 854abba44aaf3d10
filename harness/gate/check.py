"""``harness check``: the regression gate's verdicts as a table, its notes, and its exit code
(0 nothing regressed, 1 something did, 2 unusable input).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

from ..errors import UsageError
from ..report.table import Column, Table, row, to_markdown, to_text
from ..results import Result, ResultError, load_results, planned
from ..results import fail_on_skip as report_not_run
from . import ci, options, stats, verdicts
from .judge import REFUSED, STATUSES, Verdict, VerdictStatus, gate_fails


def main(
    *,
    allow_mismatch,
    allow_workload_change,
    baseline_paths,
    baseline_history,
    confidence,
    correction,
    current_paths,
    fail_on_skip,
    fmt,
    junit,
    max_slowdown,
    metric,
    window,
) -> int:
    """The regression gate: 0 nothing regressed, 1 something did, 2 unusable input."""
    history_dir = baseline_history
    for p in [*current_paths, *(baseline_paths or [history_dir])]:
        if not Path(p).exists():
            raise UsageError(f"{p}: no such file or folder")
    limit = options.parse_limit(max_slowdown)
    confidence = options.parse_confidence(confidence)
    ci.check_junit_path(junit)
    if history_dir is not None:
        current, baseline = load_history_pair(current_paths, history_dir, window)
    else:
        current, baseline = load_pair(current_paths, baseline_paths)
    return run_gate(
        current, baseline, limit, confidence, allow_mismatch, fmt, metric,
        planned=planned(current_paths), junit=junit, correction=correction,
        allow_workload_change=allow_workload_change, fail_on_skip=fail_on_skip,
    )  # fmt: skip


def run_gate(
    current, baseline, limit, confidence, allow_mismatch, fmt, metric, planned=frozenset(),
    junit=None, suite="harness check", correction="holm", allow_workload_change=False,
    fail_on_skip=False, ran=None, sides_may_differ=False,
) -> int:  # fmt: skip
    """Judges, prints the verdicts, and returns the exit code; with ``junit`` also writes
    them as JUnit XML, and appends them to GitHub's job summary where it is set.

    Exit codes: 2 when the gate refuses (other machines or versions, a slowdown it cannot
    judge, or a cell whose workload changed, unless allowed), else 1 when a cell fails the
    gate (or, with ``fail_on_skip``, when a cell of the current run was skipped or
    unsupported; ``ran``: the results that count for that, by default ``current``), else 0.
    """
    found, refusals = verdicts.check(
        current, baseline, max_slowdown=limit, confidence=confidence,
        allow_mismatch=allow_mismatch, metric=metric, planned=planned, correction=correction,
        allow_workload_change=allow_workload_change, sides_may_differ=sides_may_differ,
    )  # fmt: skip
    for refusal in refusals:
        print(f"harness: {refusal}", file=sys.stderr)
    if refusals:
        if junit:
            ci.write_junit(junit, [], suite, refusals)
        ci.append_summary(f"### {suite}: refused\n\n" + "\n".join(f"- {r}" for r in refusals))
        return 2
    # --fail-on-skip: a cell of the current run that did not run fails the gate, also where
    # nothing else could be compared (a GPU job whose every cell was skipped)
    ran = current if ran is None else ran
    not_run = {r.name for r in map(Result, ran) if r.not_run} if fail_on_skip else set()
    if all(v.status == VerdictStatus.NOT_COMPARED for v in found):  # a gate that compared nothing
        if not not_run:
            raise UsageError("no cell is present (and ok) in both the current run and the baseline")
        report_not_run(ran)
        if junit:
            ci.write_junit(junit, found, suite, not_run=not_run)
        ci.append_summary(
            f"### {suite}: failed (--fail-on-skip: {len(not_run)} cell(s) did not run)"
        )
        return 1
    head = header(found, confidence, correction)
    sys.stdout.write(head + "\n\n" + render_check(found, markdown=fmt == "md"))
    counts = {s: sum(v.status == s for v in found) for s in STATUSES}
    tally = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    print("\n" + tally, file=sys.stderr)
    changed = [v for v in found if v.status in REFUSED]
    for v in changed:
        print(
            f"harness: {v.key}: workload changed ({v.why}): not judged; a change of work is not "
            "a change of speed (--allow-workload-change judges it anyway)",
            file=sys.stderr,
        )
    if not_run:
        report_not_run(ran)  # names each: skipped is no pass
    fails = gate_fails(found) or bool(not_run)
    verdict = "refused" if changed else "failed" if fails else "passed"
    if junit:
        ci.write_junit(junit, found, suite, not_run=not_run)
    ci.append_summary(
        f"### {suite}: {verdict} ({tally})\n\n{head}\n\n" + render_check(found, markdown=True)
    )
    if verdicts.is_interleaved(current + baseline):
        sides = verdicts.values_by_side(current + baseline, metric)
        for v in found:
            if v.status == VerdictStatus.NOISY and len(sides.get(v.key, {})) == 2:
                hint = rounds_hint(v, list(sides[v.key].values()), limit, confidence)
                if hint:
                    print(hint, file=sys.stderr)
    elif verdicts.baseline_runs(baseline) < 2:
        print(
            "note: the baseline holds one run, so the gate cannot tell a slower moment of this "
            "machine from slower code; keep several runs (harness baseline RUN --add) or measure "
            "both sides interleaved (harness ab)",
            file=sys.stderr,
        )
    return 2 if changed else 1 if fails else 0


def header(found: list[Verdict], confidence: float, correction: str) -> str:
    """The line above the verdicts: the gate's confidence, and how its error rate is held."""
    m = sum(v.p_slower is not None for v in found)
    alpha = options.percent(options.alpha(confidence))
    how = (
        options.CORRECTIONS[correction].format(alpha=alpha, m=m)
        if m
        else f"{correction} (no cell judged)"
    )
    return (
        f"Gate at {options.percent(confidence)} confidence; correction {how}. p adj: the "
        "p-value after the correction; bounds: of the ratio, each one-sided at the level its "
        "test was held to."
    )


def rounds_hint(v: Verdict, sides: list[list[float]], limit: float, confidence: float):
    """For a noisy interleaved cell: how many rounds would settle it, if its slowdown is real."""
    spread = stats.log_spread(sides)
    seen = 1 - v.ratio
    n = stats.rounds_needed(spread, seen, limit, confidence)
    if n is None:
        return None
    return (
        f"{v.key}: workers of one side spread by {spread:.1%}; if the measured {-seen:+.1%} is "
        f"real, about {n} rounds would show it past -{limit:.0%} 4 times in 5 (--rounds {n})"
    )


def load_history_pair(
    current: list[Path], history_dir: Path, window: int
) -> tuple[list[dict], list[dict]]:
    """The current results, and for each of its cells the last ``window`` runs of that cell
    on the same machine (hardware and versions) in a stored history: a window of runs, not
    one, so that the gate knows this machine's run-to-run noise."""
    from .history import last_runs, series

    if window < 2:
        raise UsageError(f"--window {window}: at least 2 runs (one run cannot show the noise)")
    cur, bad = load_results(current, latest=False)
    if bad:
        raise ResultError(bad[0])
    hist, bad_hist = load_results([history_dir], latest=False, runs_only=True)
    for problem in bad_hist:  # one bad file must not stop every later gate
        print(f"harness: warning: --baseline-history: {problem}; left out", file=sys.stderr)
    # Never the current run itself (it may be stored in the history already).
    runs = {verdicts.unit_id(d) for d in cur}
    mine = {str(Path(r.path).resolve()) for r in map(Result, cur) if r.path}
    hist = [
        d
        for d in hist
        if verdicts.unit_id(d) not in runs and str(Path(Result(d).path or "").resolve()) not in mine
    ]
    undated: list[str] = []
    by_cell = {(s.machine, s.key): s for s in series(hist, undated)}
    for problem in undated:
        print(f"harness: warning: --baseline-history: {problem}", file=sys.stderr)
    baseline: list[dict] = []
    for doc in cur:
        baseline.extend(d for d in last_runs(by_cell, doc, window) if d not in baseline)
    if not baseline:
        raise UsageError(
            f"--baseline-history {history_dir}: no ok run of these cells on this machine (the "
            "same hardware and versions) is stored there"
        )
    return cur, baseline


def load_pair(current: list[Path], baseline: list[Path]) -> tuple[list[dict], list[dict]]:
    """Every result under both sides, unreadable files refused (one line, exit 2)."""
    cur, bad_cur = load_results(current, latest=False)
    base, bad_base = load_results(baseline, latest=False)
    if bad_cur or bad_base:
        raise ResultError((bad_cur + bad_base)[0])
    return cur, base


def render_check(found: list[Verdict], markdown: bool = False) -> str:
    """The verdicts as a text (or markdown) table, the gate's failures first.

    Args:
        found: the verdicts, from :func:`verdicts.check`.
        markdown: a GitHub markdown table instead of aligned text.
    """
    head = ("cell", "verdict", "ratio", "bounds", "p (slower)", "p adj", "n", "why")
    rows = []
    first = (VerdictStatus.REGRESSED, VerdictStatus.LOST, VerdictStatus.WORKLOAD_CHANGED)
    for v in sorted(found, key=lambda v: (v.status not in first, v.key)):
        ratio = "" if v.ratio is None else f"{v.ratio:.3f}"
        bounds = "" if v.ci is None else f"{_bound(v.ci[0])}-{_bound(v.ci[1])}"
        p = "" if v.p_slower is None else f"{v.p_slower:.3g}"
        adj = "" if v.p_adjusted is None else f"{v.p_adjusted:.3g}"
        n = "" if v.n is None else f"{v.n[0]}/{v.n[1]}"
        status = v.status.upper() if v.status in first else v.status
        rows.append(row(v.key, status, ratio, bounds, p, adj, n, v.why))
    table = Table(tuple(Column(h) for h in head), tuple(rows))
    return (to_markdown(table) if markdown else to_text(table)) + "\n"


def _bound(x: float) -> str:
    """A ratio bound; an unbounded side (too few values for its level) is an ellipsis."""
    return "..." if x in (0.0, math.inf) else f"{x:.3f}"
