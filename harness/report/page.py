"""The HTML page shell every page of the harness is drawn in (the compare report, the history
page): one self-contained document, its stylesheet inline, nothing fetched from a network, so
that a page needs nothing but a browser to open.
"""

from __future__ import annotations

import html

# One stylesheet for every page: the compare report's tables and charts (throughput bars with
# whiskers, utilization lines) and the history's (run medians, their spread, steps, breaks).
STYLE = """\
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #202124; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 32px; } h3 { font-size: 15px; }
table { border-collapse: collapse; margin: 12px 0; }
th, td { border-bottom: 1px solid #dadce0; padding: 4px 10px; text-align: left; }
th.num, td.num { text-align: right; }
tr.off td { color: #80868b; }
.muted { color: #5f6368; } .warn { color: #b06000; font-weight: 600; }
.key { display: inline-block; width: 12px; height: 12px; margin: 0 4px 0 12px; vertical-align: -1px; }
div.grid { display: flex; flex-wrap: wrap; gap: 12px; }
figure { margin: 0; } figcaption { font-size: 12px; color: #5f6368; max-width: 420px; }
.chart text { font-size: 11px; fill: #3c4043; }
.chart .grid { stroke: #eee; } .chart .whisker { stroke: #202124; stroke-width: 1.2; }
.chart .cpu { fill: none; stroke: #1e8e3e; stroke-width: 1.5; }
.chart .gpu { fill: none; stroke: #9334e6; stroke-width: 1.5; stroke-dasharray: 4 2; }
.chart .band { fill: #1a73e8; opacity: 0.15; }
.chart .line { fill: none; stroke: #1a73e8; stroke-width: 1.5; }
.chart circle { fill: #1a73e8; }
.chart .step { stroke: #d93025; stroke-width: 1.5; stroke-dasharray: 4 3; }
.chart .steplabel { fill: #d93025; font-weight: 600; }
.chart .break { stroke: #5f6368; stroke-width: 2; }
.chart .breaklabel { fill: #5f6368; font-style: italic; }
"""

SHELL = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
{style}</style></head><body>
{body}
</body></html>
"""


def page(title: str, body: list[str]) -> str:
    """The whole page: ``body``'s parts (HTML already), one a line, under ``title``."""
    return SHELL.format(title=html.escape(title), style=STYLE, body="\n".join(body))
