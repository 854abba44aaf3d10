"""The comparison report in markdown: per scenario, its cells side by side by backend, then
the details; then why cells did not run, the environments and the portability matrix.

The tables and their texts come from sections.py, the one definition the HTML page renders too.
"""

from __future__ import annotations

from ..results import Status
from . import sections
from .rows import rows
from .table import Table, to_markdown

# A markdown row cannot wrap: a longer reason is cut to this in the table and listed in full below.
REASON_WIDTH = 90


def render_markdown(docs: list[dict], problems: list[str] | None = None) -> str:
    """Markdown: per scenario a table to read at a glance and the details, then notes."""
    lines = ["# Keras backend comparison"]
    if not docs:
        lines += ["", "No results found."]
    for scenario, sdocs in sections.by_scenario(docs).items():
        lines += ["", f"## {scenario}", ""]
        if sections.description(sdocs):
            lines += [sections.description(sdocs), ""]
        lines += [to_markdown(sections.comparison(sdocs)), "", sections.COMPARISON_NOTE, ""]
        ran = sections.settings(sdocs)
        if ran:
            lines += [f"{sections.SETTINGS_TITLE}:", "", to_markdown(ran), ""]
        lines.append(to_markdown(sections.details(sdocs), span_width=REASON_WIDTH))
        scaling = sections.scaling(sdocs)
        if scaling:
            lines += ["", f"{sections.SCALING_TITLE}:", ""]
            lines += [to_markdown(scaling, span_width=REASON_WIDTH), "", sections.SCALING_NOTE]
    long_reasons = _long_reasons(docs)
    if long_reasons:
        lines += ["", "## Why cells did not run", ""] + long_reasons
    if sections.shards(docs):
        lines += ["", f"## {sections.SHARDS_TITLE}", ""] + sections.shards(docs)
    lines += ["", "## Environments", ""] + _environment_lines(sections.environments(docs))
    lines += ["", sections.DETAILS_NOTE]
    if problems:
        lines += ["", "## Unreadable result files", ""] + [f"- {p}" for p in problems]
    return "\n".join(lines).rstrip() + "\n"


def _long_reasons(docs: list[dict]) -> list[str]:
    """In full, the reasons the table cut short."""
    return [
        f"- {r['scenario']}/{r['cell']} under {r['backend']}: {reason}"
        for r in rows(docs)
        if r["status"] != Status.OK
        and len(reason := (r["reason"] or "").replace("|", "/")) > REASON_WIDTH
    ]


def _environment_lines(table: Table) -> list[str]:
    """The environments table as one sentence per row: few columns vary between rows, and a
    sentence reads better than a seven-column table with the same host on every line."""
    lines = []
    for r in table.rows:
        backend, versions, keras, host, cpu, gpu, runs = (c.text for c in r.cells)
        on_gpu = "" if gpu == sections.NO_GPU else f", GPU {gpu}"
        lines.append(
            f"- {backend}: {versions} with keras {keras} on {host} ({cpu}){on_gpu}; runs: {runs}"
        )
    return lines


def portability_markdown(checks: list[dict]) -> str:
    """The portability matrix with its heading and note; empty where nothing was checked."""
    if not checks:
        return ""
    return "\n".join(
        [
            f"## {sections.PORTABILITY_TITLE} ({sections.PORTABILITY_CAPTION})",
            "",
            to_markdown(sections.portability(checks)),
            "",
            sections.PORTABILITY_NOTE,
        ]
    )
