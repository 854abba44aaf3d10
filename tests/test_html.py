"""The HTML report: self-contained, and what a browser really shows."""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser

import pytest
from factories import result
from test_portability import check

from harness.report.build import render
from harness.report.html import render_html


def docs_with_samples():
    docs = [
        result("tensorflow", [8000, 10000, 12000]),
        result("jax", [60000, 64000, 62000]),
        result("torch", [9000, 10000, 11000]),
        result(
            "torch",
            [1.0],
            cell_id="gpu",
            status="skipped",
            reason="gpu requested but torch sees no GPU",
        ),
    ]
    for d in docs[:3]:
        d["monitor"]["samples"] = [
            {"t": 0.0, "phase": "warmup", "cpu": 40.0, "gpus": []},
            {"t": 1.0, "phase": "fit", "cpu": 95.0, "gpus": []},
            {"t": 2.0, "phase": "fit", "cpu": 99.0, "gpus": []},
            {"t": 3.0, "phase": "evaluate", "cpu": 60.0, "gpus": []},
        ]
        d["train"]["step_time_ms"] = {"p50": 1.0, "p90": 1.5, "p99": 2.0}
    return docs


def test_page_is_self_contained_with_charts_and_reasons():
    page = render_html(docs_with_samples())
    assert page.startswith("<!doctype html>")
    assert page.count("<svg") == 1 + 3  # one throughput chart, one utilization chart per ok cell
    assert not re.search(r'(src|href)=["\']?(https?:)?//', page)  # nothing fetched from a network
    assert "62,000 ± 2,000" in page and "noisy" in page  # tensorflow's cv is 20%
    assert "gpu requested but torch sees no GPU" in page
    assert "p50 1.000 / p90 1.500 / p99 2.000 ms" in page
    assert "<title>jax bs32: median 62,000 samples/s (min 60,000, max 64,000)</title>" in page


@pytest.mark.skipif(
    shutil.which("chromium") is None,
    reason="chromium is not installed here (apt-get install chromium)",
)
def test_page_renders_in_headless_chromium(tmp_path):
    page = tmp_path / "report.html"
    page.write_text(render_html(docs_with_samples()))
    flags = [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]  # fmt: skip
    dom = subprocess.run(
        ["chromium", *flags, "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "<h1>Keras backend comparison</h1>" in dom.stdout
    assert dom.stdout.count("<svg") == 4 and dom.stdout.count("<rect") >= 3
    shot = tmp_path / "shot.png"
    subprocess.run(
        ["chromium", *flags, "--window-size=1200,900", f"--screenshot={shot}", page.as_uri()],
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000  # a page with content, not blank


class Tables(HTMLParser):
    """Every table of a page as rows of (header or cell text, columns covered), as a browser
    would show the text: entities decoded, inner tags (<b>, <span>) dropped."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.tables: list[list[list[tuple[str, int]]]] = []
        self.cell: list[str] | None = None
        self.colspan = 1
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self.cell, self.colspan = [], int(dict(attrs).get("colspan") or 1)

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.tables[-1][-1].append(("".join(self.cell), self.colspan))
            self.cell = None


def markdown_tables(text: str) -> list[list[list[str]]]:
    """Every markdown table of a report as rows of cell texts, the header first (no rule line)."""
    tables, current = [], None
    for line in text.splitlines():
        if not line.startswith("|"):
            current = None
            continue
        if current is None:
            current = []
            tables.append(current)
        if not set(line) <= set("|-:"):
            current.append([c.strip() for c in line[1:-1].split("|")])
    return tables


def test_markdown_and_html_render_the_same_tables():
    """The page's details, portability and environment tables say what the markdown says, cell
    for cell: one definition (sections.py), two renderings."""
    docs = docs_with_samples()
    docs[0]["save"]["keras"]["predictions_match"] = False  # <b>MISMATCH</b> on the page
    for d, gpu in zip(docs, ["H100", "H100", None, "A100"], strict=True):
        d["environment"]["gpu"] = {"gpus": [{"name": gpu}] if gpu else []}
    docs[3]["run_id"] = "run-b"
    checks = [
        check("tensorflow", "jax", diff=3e-7),
        check("jax", "torch", status="failed", reason="load failed: ValueError: <x>"),
    ]
    text = render("md", docs, checks)
    md = markdown_tables(text)
    page = Tables(render("html", docs, checks)).tables
    md_comparison, md_settings, md_details, md_portability = md
    html_comparison, html_settings, *html_details, html_portability, html_environments = page

    def texts(table):
        return [[text for text, _ in r] for r in table]

    # At a glance: a row per cell, a column per backend, the fastest bold in both.
    assert texts(html_comparison) == [[c.strip("*") for c in r] for r in md_comparison]
    assert md_comparison[1] == [
        "bs32",
        "10,000 ± 2,000 (noisy)",
        "**62,000 ± 2,000**",
        "10,000 ± 1,000",
    ]
    assert md_comparison[2] == ["gpu", "-", "-", "skipped"]
    assert "<strong>62,000 ± 2,000</strong>" in render("html", docs, checks)
    assert texts(html_portability) == md_portability
    # What each backend ran, as recorded by its workers.
    assert texts(html_settings) == md_settings
    assert md_settings[3] == ["torch", "no", "float32 (CPU)", "float32", "2 / 2", "bs32"]
    assert "0/1 agree; s/c1: load failed: ValueError: <x>" in md_portability[2]
    # Environments: the markdown says each row of the page's table as a sentence, GPU included.
    header, *envs = texts(html_environments)
    assert header == ["backend", "versions", "keras", "host", "CPU", "GPU", "runs"]
    assert [e[5] for e in envs] == ["H100", "H100", "A100", "none"]  # torch: GPU apart, two rows
    for backend, versions, keras, host, cpu, gpu, runs in envs:
        on_gpu = "" if gpu == "none" else f", GPU {gpu}"
        assert (
            f"- {backend}: {versions} with keras {keras} on {host} ({cpu}){on_gpu}; runs: {runs}\n"
            in text
        )
    # Details: where both show a column, the same text (the page's one table per scenario).
    md_rows = [dict(zip(md_details[0], r, strict=True)) for r in md_details[1:]]
    html_rows = []
    for table in html_details:
        head = [text for text, _ in table[0]]
        for r in table[1:]:
            starts = [sum(n for _, n in r[:i]) for i in range(len(r))]
            html_rows.append({head[s]: text for s, (text, _) in zip(starts, r, strict=True)})
    assert len(html_rows) == len(md_rows) == 4
    for h, m in zip(html_rows, md_rows, strict=True):
        shared = set(h) & set(m)
        assert {k: h[k] for k in shared} == {k: m[k] for k in shared}
    assert (
        html_rows[0]["reload"] == "MISMATCH"
        and "noisy, cv 20%" in html_rows[0]["train samples/s (median ± MAD)"]
    )
    assert html_rows[3]["train samples/s (median ± MAD)"] == "gpu requested but torch sees no GPU"
    assert set(html_rows[1]) - set(md_rows[1]) == {"step time (chunks)"}
