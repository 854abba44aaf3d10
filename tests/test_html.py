"""The HTML report: self-contained, and what a browser really shows."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from factories import result

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
