"""``harness history``: the throughput of each (machine, cell) series across commits, as a
markdown table or an HTML page with a chart per series, its steps and its workload changes
marked. The series and where they moved are the gate's analysis (gate/history.py,
gate/step_detect.py); this draws them.
"""

from __future__ import annotations

import html
import sys
from pathlib import Path

from ..errors import UsageError
from ..gate import step_detect
from ..gate.history import Series, series
from ..results import load_results, write_text
from .page import page
from .svg import svg_open, y_axis
from .table import RIGHT, Column, Table, row, to_html, to_markdown

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
    parts = [svg_open(width, height, f"{s.key} samples/s over commits")]
    parts += y_axis(((y(v), f"{v:,.0f}") for v in (0.0, top * 0.5, top)), pad_l, width - pad_r)
    parts.append(f'<polygon class="band" points="{" ".join(band)}"/>')
    parts.append(f'<polyline class="line" points="{line}"/>')
    for i, p in enumerate(s.points):
        parts.append(
            f'<circle cx="{x(i):.1f}" cy="{y(p.median):.1f}" r="2.5"><title>'
            f"{html.escape(p.commit)} {html.escape(p.date[:19])} {html.escape(p.run_id)}: "
            f"{p.median:,.0f} ± {p.mad:,.0f}</title></circle>"
        )

    def mark(kind: str, index: int, label: str, label_y: float, title: str | None) -> None:
        """A vertical line between run ``index - 1`` and ``index``, labelled beside it."""
        xs = (x(index - 1) + x(index)) / 2
        inner = f"<title>{html.escape(title)}</title></line>" if title else "/>"
        parts.append(
            f'<line class="{kind}" x1="{xs:.1f}" x2="{xs:.1f}" y1="{pad_t}" y2="{height - pad_b}"'
            + (">" + inner if title else inner)
        )
        parts.append(f'<text class="{kind}label" x="{xs + 4:.1f}" y="{label_y}">{label}</text>')

    for b in s.breaks:
        mark("break", b.index, html.escape(_short(b.label)), height - pad_b - 4, b.label)
    for st in s.steps:
        commit = html.escape(s.points[st.index].commit[:7])
        mark("step", st.index, f"{st.change:+.1%} at {commit}", pad_t + 12, None)
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
    return page("Throughput history", body)


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
