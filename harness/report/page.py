"""The HTML page shell every page of the harness is drawn in (the compare report, the history
page): one self-contained document, its stylesheet inline, nothing fetched from a network, so
that a page needs nothing but a browser to open.
"""

from __future__ import annotations

import html

SHELL = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
{style}</style></head><body>
{body}
</body></html>
"""


def page(title: str, body: list[str], style: str) -> str:
    """The whole page: ``body``'s parts (HTML already), one a line, under ``title``."""
    return SHELL.format(title=html.escape(title), style=style, body="\n".join(body))
