"""``harness compare``: one report, in the format asked for, over result files."""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import UsageError
from ..results import ResultError, load_portability, load_results, write_text

FORMATS = ("md", "html", "csv", "json")


def render(fmt: str, docs: list[dict], checks: list[dict]) -> str:
    """The report over ``docs`` (and the portability ``checks``) in ``fmt``."""
    if fmt == "md":
        from .markdown import portability_markdown, render_markdown

        text = render_markdown(docs)
        matrix = portability_markdown(checks)
        return text + "\n" + matrix + "\n" if matrix else text
    if fmt == "html":
        from .html import render_html

        return render_html(docs, checks)
    from . import tabular

    return {"csv": tabular.render_csv, "json": tabular.render_json}[fmt](docs)


def main(*, every, fmt, out, results, tee) -> int:
    """``harness compare``: a report in one format from result files."""
    for p in results:
        if not Path(p).exists():
            raise UsageError(f"{p}: no such file or folder")
    docs, problems = load_results(results, latest=not every, runs_only=True)
    if problems:  # a report that silently drops a file would mislead: refuse, name the file
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ResultError(problems[0] + more)
    if not docs:  # an empty report that exits 0 would pass a CI step that measured nothing
        raise UsageError(f"no result files under {', '.join(map(str, results))}")
    # CSV and JSON hold the rows alone: the portability checks are read only for md and html
    checks = load_portability(results) if fmt in ("md", "html") else []
    text = render(fmt, docs, checks)
    if out:
        write_text(Path(out), text, f"--out {out}")
        print(f"wrote {out}", file=sys.stderr)
    if not out or tee:
        sys.stdout.write(text)
    return 0
