"""The frame of every chart the pages draw by hand as inline SVG: the element itself and its
vertical axis (labels, and grid lines across the plot). What a chart plots is its own.
"""

from __future__ import annotations

import html
from collections.abc import Iterable


def svg_open(width: float, height: float, label: str) -> str:
    """The opening tag of a chart ``width`` x ``height`` pixels, ``label`` its accessible name."""
    return (
        f'<svg class="chart" width="{width}" height="{height}" role="img" '
        f'aria-label="{html.escape(label)}">'
    )


def y_axis(
    ticks: Iterable[tuple[float, str]], left: float, right: float | None = None, gap: float = 6
) -> list[str]:
    """A vertical axis: each tick's label right-aligned ``gap`` pixels left of the plot's left
    edge ``left``, at its height; with ``right``, a grid line across the plot to there.

    Args:
        ticks: (height in pixels, label) of each tick.
        left: where the plot starts.
        right: where the plot ends, for grid lines; none without it.
        gap: between a label and the plot.
    """
    out = []
    for y, label in ticks:
        if right is not None:
            out.append(f'<line x1="{left}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        out.append(
            f'<text x="{left - gap}" y="{y + 4:.1f}" text-anchor="end">{html.escape(label)}</text>'
        )
    return out
