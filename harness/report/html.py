"""A self-contained HTML report: tables and inline SVG charts, nothing fetched from a network.

A pure view of result files, like the markdown report: it reads the same rows and never imports a
backend. Charts are drawn as SVG by hand so the page needs no plotting library to build and
nothing but a browser to open.
"""

from __future__ import annotations

import html
from typing import Any

from ..backends import BY_NAME, NAMES
from ..results import Result
from . import sections
from .page import page
from .svg import svg_open, y_axis
from .table import to_html

PHASE_COLORS = {
    "fit": "#e6f4ea",
    "calibrate": "#eeeeee",
    "warmup": "#fef7e0",
    "evaluate": "#e8f0fe",
    "predict": "#f3e8fd",
}


def _e(x: Any) -> str:
    return html.escape(str(x))


def _nice_max(x: float) -> float:
    if x <= 0:
        return 1.0
    mag = 10 ** (len(f"{int(x)}") - 1)
    for step in (1, 2, 2.5, 5, 10):
        if step * mag >= x:
            return step * mag
    return 10 * mag


def throughput_chart(scenario: str, docs: list[dict]) -> str:
    """Grouped bars: one group per cell, one bar per backend, whiskers from min to max repeat."""
    ok = [r for r in map(Result, docs) if r.ok]
    if not ok:
        return ""
    cells = list(dict.fromkeys(Result(d).cell["id"] for d in docs))
    backends = [b for b in NAMES if any(r.backend == b for r in ok)]
    values = {(r.cell["id"], r.backend): r.throughput for r in ok}
    top = _nice_max(max(v.max for v in values.values()))
    width, height, left, bottom = max(360, 100 * len(cells) + 80), 260, 70, 50
    plot_h = height - bottom - 20
    group_w = (width - left - 10) / len(cells)
    bar_w = min(28, (group_w - 16) / max(len(backends), 1))
    out = [svg_open(width, height, f"throughput {scenario}")]
    ticks = ((20 + plot_h * i / 4, f"{top * (1 - i / 4):,.0f}") for i in range(5))
    out += y_axis(ticks, left, width - 10)
    for gi, cell in enumerate(cells):
        gx = left + gi * group_w + 8
        for bi, backend in enumerate(backends):
            v = values.get((cell, backend))
            if v is None:
                continue
            x = gx + bi * bar_w
            h = plot_h * v.median / top
            y = 20 + plot_h - h
            out.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w - 3:.1f}" height="{h:.1f}" '
                f'fill="{(BY_NAME[backend].color if backend in BY_NAME else "#888")}"><title>{_e(backend)} {_e(cell)}: median '
                f"{v.median:,.0f} samples/s (min {v.min:,.0f}, max {v.max:,.0f})</title></rect>"
            )
            cx = x + (bar_w - 3) / 2
            y_lo = 20 + plot_h * (1 - v.min / top)
            y_hi = 20 + plot_h * (1 - v.max / top)
            out.append(
                f'<line x1="{cx:.1f}" x2="{cx:.1f}" y1="{y_lo:.1f}" y2="{y_hi:.1f}" class="whisker"/>'
            )
            for yy in (y_lo, y_hi):
                out.append(
                    f'<line x1="{cx - 4:.1f}" x2="{cx + 4:.1f}" y1="{yy:.1f}" y2="{yy:.1f}" class="whisker"/>'
                )
        label = cell if len(cell) <= 14 else cell[:13] + "…"
        out.append(
            f'<text x="{gx + group_w / 2 - 8:.1f}" y="{height - bottom + 18}" '
            f'text-anchor="middle"><title>{_e(cell)}</title>{_e(label)}</text>'
        )
    out.append(
        f'<text x="12" y="{20 + plot_h / 2}" transform="rotate(-90 12 {20 + plot_h / 2})" text-anchor="middle">samples/s</text>'
    )
    out.append("</svg>")
    return "".join(out)


def utilization_chart(doc: dict) -> str:
    """CPU (and GPU SM) utilization over the worker's life, phases shaded, like a W&B panel."""
    samples = ((doc.get("monitor") or {}).get("samples")) or []
    samples = [s for s in samples if s.get("cpu") is not None]
    if len(samples) < 2:
        return '<p class="muted">not enough utilization samples</p>'
    width, height, left = 420, 120, 36
    t_end = max(s["t"] for s in samples) or 1.0
    plot_w, plot_h = width - left - 8, height - 28

    def x(t: float) -> float:
        return left + plot_w * t / t_end

    def y(p: float) -> float:
        return 8 + plot_h * (1 - min(p, 100) / 100)

    out = [svg_open(width, height, "utilization")]
    start = samples[0]
    for prev, cur in zip(samples, samples[1:], strict=False):
        if cur["phase"] != prev["phase"] or cur is samples[-1]:
            color = PHASE_COLORS.get(start["phase"])
            if color:
                out.append(
                    f'<rect x="{x(start["t"]):.1f}" y="8" width="{max(x(cur["t"]) - x(start["t"]), 0.5):.1f}" '
                    f'height="{plot_h}" fill="{color}"><title>{_e(start["phase"])}</title></rect>'
                )
            start = cur
    out += y_axis(((y(pct), f"{pct}%") for pct in (0, 50, 100)), left, gap=4)
    cpu = " ".join(f"{x(s['t']):.1f},{y(s['cpu']):.1f}" for s in samples)
    out.append(f'<polyline points="{cpu}" class="cpu"/>')
    gpu_pts = [(s["t"], s["gpus"][0].get("sm")) for s in samples if s.get("gpus")]
    gpu_pts = [(t, v) for t, v in gpu_pts if v is not None]
    if gpu_pts:
        pts = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in gpu_pts)
        out.append(f'<polyline points="{pts}" class="gpu"/>')
    out.append(f'<text x="{left}" y="{height - 4}">0 s</text>')
    out.append(f'<text x="{width - 8}" y="{height - 4}" text-anchor="end">{t_end:.0f} s</text>')
    out.append("</svg>")
    return "".join(out)


def render_html(docs: list[dict], portability_checks: list[dict] | None = None) -> str:
    """The whole page."""
    body = ["<h1>Keras backend comparison</h1>"]
    legend = " ".join(
        f'<span class="key" style="background:{c}"></span>{_e(b)}'
        for b, c in ((b.name, b.color) for b in BY_NAME.values())
    )
    body.append(
        f'<p class="legend">{legend} <span class="muted">whiskers: slowest to fastest repeat</span></p>'
    )
    for scenario, sdocs in sections.by_scenario(docs).items():
        body.append(f"<h2>{_e(scenario)}</h2>")
        if sections.description(sdocs):
            body.append(f'<p class="muted">{_e(sections.description(sdocs))}</p>')
        body.append(to_html(sections.comparison(sdocs)))
        body.append(f'<p class="muted">{_e(sections.COMPARISON_NOTE)}</p>')
        ran = sections.settings(sdocs)
        if ran:
            body.append(f"<p>{_e(sections.SETTINGS_TITLE)}:</p>{to_html(ran)}")
        body.append(throughput_chart(scenario, sdocs))
        body.append(to_html(sections.details(sdocs)))
        scaling = sections.scaling(sdocs)
        if scaling:
            body.append(f"<h3>{_e(sections.SCALING_TITLE)}</h3>{to_html(scaling)}")
            body.append(f'<p class="muted">{_e(sections.SCALING_NOTE)}</p>')
        body.append("<details><summary>CPU / GPU utilization over time</summary><div class='grid'>")
        for r in map(Result, sdocs):
            if r.ok:
                body.append(
                    f"<figure>{utilization_chart(r.doc)}<figcaption>{_e(r.cell['id'])} under "
                    f"{_e(r.backend)}: CPU % (line), GPU SM % (dashed); shading: warm-up, fit, "
                    "evaluate, predict</figcaption></figure>"
                )
        body.append("</div></details>")
    if portability_checks:
        body.append(f"<h2>{_e(sections.PORTABILITY_TITLE)}</h2>")
        body.append(f'<p class="muted">{_e(sections.PORTABILITY_CAPTION)}</p>')
        body.append(to_html(sections.portability(portability_checks)))
        body.append(f'<p class="muted">{_e(sections.PORTABILITY_NOTE)}</p>')
    if sections.shards(docs):
        body.append(f"<h2>{_e(sections.SHARDS_TITLE)}</h2>")
        body += [f"<p>{_e(line)}</p>" for line in sections.shards(docs)]
    body.append("<h2>Environments</h2>")
    body.append(to_html(sections.environments(docs)))
    body.append(f'<p class="muted">{_e(sections.DETAILS_NOTE)}</p>')
    return page("Keras backend comparison", body)
