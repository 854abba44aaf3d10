"""One table, three renderings: a GitHub markdown table, an HTML table, aligned plain text.

A report defines each table once (its columns, its rows, what each cell says) and every format
renders that one definition, so the markdown and the HTML page cannot drift apart in what they
show. What only one format can do is declared in the definition, not re-coded in the renderer: a
column shown by some formats only, a cell's richer HTML, a CSS class, a greyed row, a cell that
spans the rest of its row.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

MARKDOWN, HTML, TEXT = "markdown", "html", "text"
EVERY_FORMAT = (MARKDOWN, HTML, TEXT)
LEFT, RIGHT = "left", "right"


@dataclass(frozen=True)
class Column:
    """A column: its header, ``align`` ("left" or "right", for numbers) and the formats showing it.

    A format that leaves a column out skips its cells: one definition can still hold a column
    that only the page has room for.
    """

    header: str
    align: str = LEFT
    formats: tuple[str, ...] = EVERY_FORMAT


@dataclass(frozen=True)
class Cell:
    """What one cell says.

    Attributes:
        text: what every format shows; markdown and text print it, HTML escapes it.
        css: an HTML class for the cell ("warn", "muted"); the other formats have no styles.
        markup: trusted HTML the page shows instead of the escaped text, where it shows more
            (``<b>MISMATCH</b>``); it should say what ``text`` says.
        span: the cell covers the rest of its row (a reason where measurements would be); it must
            be the row's last cell.
        strong: the one to see first (the fastest of a row): bold in markdown and HTML.
    """

    text: str
    css: str = ""
    markup: str | None = None
    span: bool = False
    strong: bool = False


@dataclass(frozen=True)
class Row:
    """A row of cells; ``off`` greys it in HTML (a cell that did not run)."""

    cells: tuple[Cell, ...]
    off: bool = False


def row(*cells: Cell | str, off: bool = False) -> Row:
    """A row from cells or plain strings, a string being a cell with just that text."""
    return Row(tuple(c if isinstance(c, Cell) else Cell(c) for c in cells), off)


@dataclass(frozen=True)
class Table:
    """Columns and rows. Every row has a cell per column, or ends in a spanning cell before that:
    checked here, so that a row cannot silently shift its cells into the wrong columns."""

    columns: tuple[Column, ...]
    rows: tuple[Row, ...] = ()

    def __post_init__(self) -> None:
        for r in self.rows:
            spanning = bool(r.cells) and r.cells[-1].span
            fits = len(r.cells) == len(self.columns) or (
                spanning and len(r.cells) < len(self.columns)
            )
            if not fits or any(c.span for c in r.cells[:-1]):
                raise ValueError(
                    f"a row of {len(self.columns)} columns needs a cell per column, or a spanning "
                    f"last cell: got {[c.text for c in r.cells]}"
                )


# A cell placed in one format: the cell, its column, and how many shown columns it covers.
Placed = tuple[Cell, Column, int]


def _shown(table: Table, fmt: str) -> list[int]:
    """The indices of the columns ``fmt`` shows."""
    return [i for i, c in enumerate(table.columns) if fmt in c.formats]


def _placed(table: Table, r: Row, fmt: str) -> list[Placed]:
    """The row's cells in the columns ``fmt`` shows. A spanning cell covers every shown column from
    its own to the end, and still appears where a format hides its own column."""
    shown = _shown(table, fmt)
    out: list[Placed] = []
    for n, i in enumerate(shown):
        cell = r.cells[min(i, len(r.cells) - 1)]
        if cell.span:
            out.append((cell, table.columns[i], len(shown) - n))
            break
        out.append((cell, table.columns[i], 1))
    return out


def _md(text: str) -> str:
    """A markdown cell cannot hold a pipe or a line break: either would end the cell or the row."""
    return text.replace("|", "/").replace("\n", " ")


def to_markdown(table: Table, span_width: int | None = None) -> str:
    """A GitHub markdown table. Markdown cannot span columns: a spanning cell sits in its first
    column and the ones it covers are left bare. A markdown row cannot wrap either, so with
    ``span_width`` a longer spanning text is cut to that many characters, ending in "...".
    """
    columns = [table.columns[i] for i in _shown(table, MARKDOWN)]
    lines = [
        "|" + "".join(f" {_md(c.header)} |" for c in columns),
        "|" + "".join("---:|" if c.align == RIGHT else "---|" for c in columns),
    ]
    for r in table.rows:
        line = "|"
        for cell, _, covers in _placed(table, r, MARKDOWN):
            text = _md(cell.text)
            if cell.span and span_width is not None and len(text) > span_width:
                text = text[: span_width - 3].rstrip() + "..."
            if cell.strong:
                text = f"**{text}**"
            line += f" {text} |" + " |" * (covers - 1)
        lines.append(line)
    return "\n".join(lines)


def _td(tag: str, content: str, classes: list[str], covers: int = 1) -> str:
    """One header or data cell; ``content`` is HTML already."""
    attrs = f' class="{html.escape(" ".join(classes))}"' if classes else ""
    attrs += f' colspan="{covers}"' if covers > 1 else ""
    return f"<{tag}{attrs}>{content}</{tag}>"


def to_html(table: Table) -> str:
    """An HTML table: texts escaped, a cell's own markup as given, spans as colspan, right-aligned
    columns marked with the class "num" (the page's stylesheet aligns them)."""
    columns = [table.columns[i] for i in _shown(table, HTML)]
    lines = [
        "<table><tr>"
        + "".join(_td("th", html.escape(c.header), _align(c)) for c in columns)
        + "</tr>"
    ]
    for r in table.rows:
        tds = "".join(
            _td(
                "td",
                _strong(cell, html.escape(cell.text) if cell.markup is None else cell.markup),
                ([] if cell.span else _align(column)) + ([cell.css] if cell.css else []),
                covers,
            )
            for cell, column, covers in _placed(table, r, HTML)
        )
        lines.append(f'<tr class="off">{tds}</tr>' if r.off else f"<tr>{tds}</tr>")
    lines.append("</table>")
    return "\n".join(lines)


def _strong(cell: Cell, content: str) -> str:
    return f"<strong>{content}</strong>" if cell.strong else content


def _align(column: Column) -> list[str]:
    """The class that right-aligns a column's cells (a spanning cell holds prose: it has none)."""
    return ["num"] if column.align == RIGHT else []


def to_text(table: Table) -> str:
    """Aligned columns for a terminal, two spaces apart, header first. A spanning cell, and a
    left-aligned last column, are printed as they are: no column to align after them, no trailing
    spaces."""
    shown = _shown(table, TEXT)
    header = [(Cell(table.columns[i].header), table.columns[i], 1) for i in shown]
    lines = [header, *(_placed(table, r, TEXT) for r in table.rows)]
    widths = [
        max(
            (len(line[k][0].text) for line in lines if k < len(line) and line[k][2] == 1), default=0
        )
        for k in range(len(shown))
    ]
    return "\n".join(_text_line(line, widths) for line in lines)


def _text_line(line: list[Placed], widths: list[int]) -> str:
    """One line of :func:`to_text`, each cell padded to its column's width on its aligned side."""
    parts = []
    for k, (cell, column, covers) in enumerate(line):
        if column.align == RIGHT and covers == 1:
            parts.append(cell.text.rjust(widths[k]))
        elif covers > 1 or k == len(widths) - 1:
            parts.append(cell.text)
        else:
            parts.append(cell.text.ljust(widths[k]))
    return "  ".join(parts)
