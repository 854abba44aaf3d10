"""Throughput across commits: ``harness history`` and the gate's ``--baseline-history``.

A history is every plain run stored under some folders (A/B jobs and calibrations left out).
Its series are per machine (the gate's fingerprint: hardware and versions) and per cell: two
machines are never one line. A series is ordered by the commit's date (recorded by the harness
since it learned to, else the run's start), one point per run: its median samples/s and the
spread of its repeats. Step detection (step_detect.py) marks where a series moved for good.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import hashlib
import html
import json
import sys
from pathlib import Path
from typing import Any

from .. import workload
from ..errors import UsageError
from ..report.table import RIGHT, Column, Table, row, to_markdown
from ..results import Result, cell_key, load_results, write_text
from . import step_detect
from .verdicts import fingerprint


@dataclasses.dataclass(frozen=True)
class Point:
    commit: str
    date: str
    run_id: str
    median: float
    mad: float
    doc: dict = dataclasses.field(repr=False, compare=False)


@dataclasses.dataclass(frozen=True)
class Break:
    """Where the work itself changed (harness/workload.py): a new segment, never a step."""

    index: int  # the first run of the new workload
    label: str  # "workload changed: batch_size: 32 -> 64"


@dataclasses.dataclass(frozen=True)  # frozen, with a cached property: __dict__ holds it
class Series:
    machine: str  # a short hash of the fingerprint
    machine_label: str
    key: str  # scenario/cell--backend
    points: tuple[Point, ...]

    @functools.cached_property
    def breaks(self) -> list[Break]:
        """Each run whose workload differs from the run before it, or, across runs recorded
        before workloads were (compared on their settings alone), from the last run since the
        previous break that recorded its whole workload."""
        out: list[Break] = []
        full = None  # the last run since the last break with a whole record
        for i, point in enumerate(self.points):
            if i:
                diffs = workload.differences(self.points[i - 1].doc, point.doc)
                if not diffs and full is not None and full != i - 1:
                    diffs = workload.differences(self.points[full].doc, point.doc)
                if diffs:
                    out.append(Break(i, "workload changed: " + "; ".join(diffs)))
                    full = None
            if workload.of(point.doc)["id"] is not None:
                full = i
        return out

    @functools.cached_property
    def steps(self) -> list[step_detect.Step]:
        """Lasting changes of speed, found within each workload's segment apart."""
        bounds = [0] + [b.index for b in self.breaks] + [len(self.points)]
        out = []
        for lo, hi in zip(bounds, bounds[1:], strict=False):
            found = step_detect.detect([p.median for p in self.points[lo:hi]])
            out += [dataclasses.replace(st, index=st.index + lo) for st in found]
        return out


def machine_of(doc: dict[str, Any]) -> tuple[str, str]:
    """A short id of a result's machine and versions, and a label a person can read."""
    fp = fingerprint(doc)
    digest = hashlib.sha256(json.dumps(fp, sort_keys=True).encode()).hexdigest()[:8]
    gpus = ", ".join(g for g in fp["gpus"] if g) or "no GPU"
    versions = ", ".join(f"{k} {v}" for k, v in sorted((fp["backend_versions"] or {}).items()))
    return digest, f"{fp['cpu_model']} x{fp['cpu_count']}, {gpus}; keras {fp['keras']}, {versions}"


def _utc(text: str | None) -> datetime.datetime | None:
    """An ISO date as an aware UTC datetime; None where it cannot be parsed."""
    if not isinstance(text, str):
        return None
    try:
        when = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return when.astimezone(datetime.UTC)


def _when(doc: dict[str, Any]) -> tuple[datetime.datetime, datetime.datetime] | None:
    """The commit's date (else, where none was recorded, the run's start), then the run's
    start: a series' order. None where a recorded date cannot be parsed: such a run has no
    place in the order, and sorting it first would make it the oldest."""
    r = Result(doc)
    started = _utc(r.started) if r.started else None
    committed = _utc(r.git["date"]) if r.git.get("date") else started
    if committed is None or (r.started and started is None):
        return None
    return committed, started or committed


def series(docs: list[dict[str, Any]], problems: list[str] | None = None) -> list[Series]:
    """Every (machine, cell) series of ok results, points in commit order.

    Args:
        docs: results.
        problems: where to add a line for each ok result left out (an unparseable date).
    """
    found: dict[tuple[str, str], list[tuple[tuple, dict]]] = {}
    labels: dict[str, str] = {}
    for d in docs:
        r = Result(d)
        if not r.ok or r.ab:
            continue
        when = _when(d)
        if when is None:
            if problems is not None:
                problems.append(
                    f"{r.path or r.name}: its date (commit {r.git.get('date')!r}, "
                    f"started {r.started!r}) cannot be parsed; left out of the history"
                )
            continue
        machine, label = machine_of(d)
        labels[machine] = label
        found.setdefault((machine, r.name), []).append((when, d))
    out = []
    for (machine, key), dated in sorted(found.items()):
        points = []
        for (committed, _), d in sorted(dated, key=lambda pair: pair[0]):
            r = Result(d)
            points.append(
                Point(
                    commit=(r.git.get("commit") or "unknown")[:10],
                    date=committed.isoformat(),
                    run_id=r.run_id or "?",
                    median=r.throughput.median,
                    mad=r.throughput.mad or 0.0,
                    doc=d,
                )
            )
        out.append(Series(machine, labels[machine], key, tuple(points)))
    return out


def last_runs(
    by_cell: dict[tuple[str, str], Series], current: dict[str, Any], window: int
) -> list[dict]:
    """The results of the last ``window`` runs of ``current``'s cell on its machine that did
    the same work, from the series of a history by (machine, cell). Where none did, the last
    runs of the newest workload: the gate then names the change of work."""
    found = by_cell.get((machine_of(current)[0], cell_key(current)))
    if found is None and not Result(current).ok:
        # A cell that did not run ok may record no device, nor (stopped before its worker
        # started) the versions: the series of the same cell on the same hardware, with every
        # version it did record, is its baseline, so that it is "lost", never "not compared".
        known = {k: v for k, v in fingerprint(current).items() if k != "device" and v}
        found = next(
            (
                s
                for (_, key), s in sorted(by_cell.items())
                if key == cell_key(current)
                and all(fingerprint(s.points[-1].doc).get(k) == v for k, v in known.items())
            ),
            None,
        )
    if not found:
        return []
    same = [p.doc for p in found.points if not workload.differences(p.doc, current)]
    if same:
        return same[-window:]
    newest = found.breaks[-1].index if found.breaks else 0
    return [p.doc for p in found.points[newest:]][-window:]


# --- rendering -------------------------------------------------------------------------------

STEPS_COLUMNS = (
    Column("cell"),
    Column("runs", RIGHT),
    Column("latest samples/s", RIGHT),
    Column("steps (first commit of the new level: before -> after)"),
    Column("workload changes (first commit of the new work: not steps)"),
)


def steps_table(all_series: list[Series]) -> Table:
    rows = []
    for s in all_series:
        found = s.steps
        text = "; ".join(
            f"{s.points[st.index].commit} ({s.points[st.index].date[:10]}): {st.change:+.1%} "
            f"({st.before:,.0f} -> {st.after:,.0f})"
            for st in found
        )
        changes = "; ".join(
            f"{s.points[b.index].commit} ({s.points[b.index].date[:10]}): "
            f"{b.label.removeprefix('workload changed: ')}"
            for b in s.breaks
        )
        rows.append(
            row(
                s.key,
                str(len(s.points)),
                f"{s.points[-1].median:,.0f}",
                text or "none",
                changes or "none",
            )
        )
    return Table(STEPS_COLUMNS, tuple(rows))


NOTE = (
    "One point per run: its median train samples/s, the band its median absolute deviation; "
    "runs ordered by their commit's date. A step is a lasting change of level found by a "
    "penalised change-point search on the run medians (at least "
    f"{step_detect.MIN_SIZE} runs on each side, so one slow run is never a step), within "
    "each workload apart: where the work itself changed (settings, model, data or backend "
    "settings) a new segment starts, drawn as a labelled break, never reported as a step."
)


def render_markdown(all_series: list[Series]) -> str:
    lines = ["# Throughput history"]
    if not all_series:
        return "\n".join(lines + ["", "No ok results found."]) + "\n"
    for machine, group in _by_machine(all_series):
        lines += ["", f"## Machine {machine}: {group[0].machine_label}", ""]
        lines.append(to_markdown(steps_table(group)))
    lines += ["", NOTE]
    return "\n".join(lines) + "\n"


def _by_machine(all_series: list[Series]) -> list[tuple[str, list[Series]]]:
    out: dict[str, list[Series]] = {}
    for s in all_series:
        out.setdefault(s.machine, []).append(s)
    return list(out.items())


def chart(s: Series, width: int = 640, height: int = 220) -> str:
    """An SVG line of the run medians with their spread, steps marked."""
    pad_l, pad_r, pad_t, pad_b = 64, 12, 12, 36
    n = len(s.points)
    top = max(p.median + p.mad for p in s.points) * 1.05 or 1.0

    def x(i: int) -> float:
        return pad_l + (width - pad_l - pad_r) * (i / max(n - 1, 1))

    def y(v: float) -> float:
        return pad_t + (height - pad_t - pad_b) * (1 - v / top)

    band = [f"{x(i):.1f},{y(p.median + p.mad):.1f}" for i, p in enumerate(s.points)]
    band += [f"{x(i):.1f},{y(max(p.median - p.mad, 0)):.1f}" for i, p in reversed(list(enumerate(s.points)))]  # fmt: skip
    line = " ".join(f"{x(i):.1f},{y(p.median):.1f}" for i, p in enumerate(s.points))
    parts = [
        f'<svg class="chart" width="{width}" height="{height}" role="img" '
        f'aria-label="{html.escape(s.key)} samples/s over commits">',
    ]
    for frac in (0.0, 0.5, 1.0):
        v = top * frac
        parts.append(
            f'<line class="grid" x1="{pad_l}" x2="{width - pad_r}" y1="{y(v):.1f}" y2="{y(v):.1f}"/>'
        )
        parts.append(f'<text x="{pad_l - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:,.0f}</text>')
    parts.append(f'<polygon class="band" points="{" ".join(band)}"/>')
    parts.append(f'<polyline class="line" points="{line}"/>')
    for i, p in enumerate(s.points):
        parts.append(
            f'<circle cx="{x(i):.1f}" cy="{y(p.median):.1f}" r="2.5"><title>'
            f"{html.escape(p.commit)} {html.escape(p.date[:19])} {html.escape(p.run_id)}: "
            f"{p.median:,.0f} ± {p.mad:,.0f}</title></circle>"
        )
    for b in s.breaks:
        xs = (x(b.index - 1) + x(b.index)) / 2
        parts.append(
            f'<line class="break" x1="{xs:.1f}" x2="{xs:.1f}" y1="{pad_t}" y2="{height - pad_b}">'
            f"<title>{html.escape(b.label)}</title></line>"
        )
        parts.append(
            f'<text class="breaklabel" x="{xs + 4:.1f}" y="{height - pad_b - 4}">'
            f"{html.escape(_short(b.label))}</text>"
        )
    for st in s.steps:
        xs = (x(st.index - 1) + x(st.index)) / 2
        parts.append(
            f'<line class="step" x1="{xs:.1f}" x2="{xs:.1f}" y1="{pad_t}" y2="{height - pad_b}"/>'
        )
        parts.append(
            f'<text class="steplabel" x="{xs + 4:.1f}" y="{pad_t + 12}">{st.change:+.1%} at '
            f"{html.escape(s.points[st.index].commit[:7])}</text>"
        )
    parts.append(
        f'<text x="{pad_l}" y="{height - 8}">{html.escape(s.points[0].commit[:7])}</text>'
        f'<text x="{width - pad_r}" y="{height - 8}" text-anchor="end">'
        f"{html.escape(s.points[-1].commit[:7])} ({n} runs)</text>"
    )
    parts.append("</svg>")
    return "".join(parts)


def _short(label: str, most: int = 60) -> str:
    """A break's label cut to fit beside its line (the whole one is its tooltip)."""
    return label if len(label) <= most else label[: most - 3] + "..."


def render_html(all_series: list[Series]) -> str:
    from ..report.table import to_html

    body = ["<h1>Throughput history</h1>"]
    if not all_series:
        body.append("<p>No ok results found.</p>")
    for machine, group in _by_machine(all_series):
        body.append(f"<h2>Machine {html.escape(machine)}</h2>")
        body.append(f'<p class="muted">{html.escape(group[0].machine_label)}</p>')
        body.append(to_html(steps_table(group)))
        for s in group:
            body.append(f"<h3>{html.escape(s.key)}</h3>{chart(s)}")
    body.append(f'<p class="muted">{html.escape(NOTE)}</p>')
    return PAGE.replace("{{BODY}}", "\n".join(body))


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Throughput history</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #202124; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 32px; } h3 { font-size: 15px; }
table { border-collapse: collapse; margin: 12px 0; }
th, td { border-bottom: 1px solid #dadce0; padding: 4px 10px; text-align: left; }
th.num, td.num { text-align: right; }
.muted { color: #5f6368; }
.chart text { font-size: 11px; fill: #3c4043; }
.chart .grid { stroke: #eee; }
.chart .band { fill: #1a73e8; opacity: 0.15; }
.chart .line { fill: none; stroke: #1a73e8; stroke-width: 1.5; }
.chart circle { fill: #1a73e8; }
.chart .step { stroke: #d93025; stroke-width: 1.5; stroke-dasharray: 4 3; }
.chart .steplabel { fill: #d93025; font-weight: 600; }
.chart .break { stroke: #5f6368; stroke-width: 2; }
.chart .breaklabel { fill: #5f6368; font-style: italic; }
</style></head><body>
{{BODY}}
</body></html>
"""


def main(*, fmt, out, results) -> int:
    """``harness history``: every (machine, cell) series under the folders, with its steps."""
    for p in results:
        if not Path(p).exists():
            raise UsageError(f"{p}: no such file or folder")
    docs, problems = load_results(results, latest=False, runs_only=True)
    found = series(docs, problems)
    for problem in problems:
        print(f"harness: warning: {problem}", file=sys.stderr)
    text = render_html(found) if fmt == "html" else render_markdown(found)
    if out:
        write_text(Path(out), text, f"--out {out}")
    else:
        print(text, end="")
    return 0
