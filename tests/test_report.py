import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT
from factories import result

from harness import results
from harness.report import markdown, tabular
from harness.report import rows as report_rows
from harness.report.table import HTML, Cell, Column, Table, row, to_html, to_markdown, to_text

GOLDEN = Path(__file__).parent / "golden"


def write_all(folder: Path, docs: list[dict]) -> None:
    for i, doc in enumerate(docs):
        results.write_json_atomic(
            folder / doc["run_id"] / f"{doc['cell']['id']}--{doc['backend']}-{i}.json", doc
        )


@pytest.fixture
def docs():
    return [
        result("torch", [9000, 10000, 11000]),
        result("jax", [60000, 64000, 62000]),
        result("tensorflow", [8000, 10000, 12000]),
        result(
            "jax",
            [1000.0],
            cell_id="gpu",
            status="skipped",
            reason="gpu requested but jax sees no GPU",
        ),
    ]


def test_markdown_golden(tmp_path, docs):
    write_all(tmp_path, docs)
    loaded, problems = results.load_results([tmp_path])
    text = markdown.render_markdown(loaded, problems)
    golden = GOLDEN / "report.md"
    if not golden.exists():
        golden.write_text(text)
        pytest.fail(f"{golden} was missing and has been written: review it, then commit it")
    assert text == golden.read_text()


def test_rows_relative_speed_and_noise(docs):
    rows = {(r["cell"], r["backend"]): r for r in report_rows.rows(docs)}
    assert rows[("bs32", "jax")]["relative"] == 1.0
    assert rows[("bs32", "torch")]["relative"] == pytest.approx(10000 / 62000)
    assert rows[("bs32", "tensorflow")]["noisy"] is True  # cv 20%
    assert rows[("bs32", "jax")]["noisy"] is False
    assert rows[("gpu", "jax")]["status"] == "skipped"
    assert "samples_per_sec" not in rows[("gpu", "jax")]


def test_latest_result_per_cell_wins(tmp_path):
    old = result("jax", [100.0], started="2026-11-01T00:00:00Z", run_id="old")
    new = result("jax", [200.0], started="2026-11-02T00:00:00Z", run_id="new")
    write_all(tmp_path, [new, old])
    latest, _ = results.load_results([tmp_path])
    assert [d["run_id"] for d in latest] == ["new"]
    everything, _ = results.load_results([tmp_path], latest=False)
    assert len(everything) == 2


def test_unreadable_files_are_named_not_fatal(tmp_path, docs):
    write_all(tmp_path, docs[:1])
    (tmp_path / "corrupt.json").write_text('{"schema": "keras-backend-harness/res')
    newer = dict(docs[1], schema_version=99)
    (tmp_path / "newer.json").write_text(json.dumps(newer))
    loaded, problems = results.load_results([tmp_path])
    assert len(loaded) == 1
    assert any("corrupt.json: corrupt result file" in p for p in problems)
    assert any("newer.json: schema_version 99 is newer" in p for p in problems)
    assert "## Unreadable result files" in markdown.render_markdown(loaded, problems)


def test_csv_and_json_are_tidy(docs):
    lines = tabular.render_csv(docs).splitlines()
    assert lines[0].split(",") == tabular.CSV_COLUMNS
    assert len(lines) == 1 + len(docs)
    rows = json.loads(tabular.render_json(docs))
    assert {r["backend"] for r in rows} == {"torch", "jax", "tensorflow"}


# The worker side: the only package whose modules may import keras or a backend.
WORKER_SIDE = "harness.worker"


def test_no_module_outside_the_worker_side_imports_a_backend():
    """Every module of the package outside harness.worker, found by walking the package (a new
    module is covered without editing this list), imported in one fresh process."""
    import pkgutil

    import harness

    names = sorted(m.name for m in pkgutil.walk_packages(harness.__path__, "harness."))
    outside = [
        n
        for n in names
        if not (n == WORKER_SIDE or n.startswith(WORKER_SIDE + ".")) and not n.endswith("__main__")
    ]
    assert {"harness.cli", "harness.orchestrate.runner", "harness.gate.verdicts"} <= set(outside)
    assert {"harness.report.html", "harness.monitor", "harness.results"} <= set(outside)
    assert len(outside) >= 25, outside
    code = (
        f"import sys, importlib; [importlib.import_module(n) for n in {outside!r}];"
        "heavy = [m for m in ('keras', 'tensorflow', 'jax', 'torch') if m in sys.modules];"
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # The check can fail: a module that pulls in a backend is named (one stands in here, as
    # importing a real one costs seconds).
    planted = "import sys; sys.modules['jax'] = sys; " + code
    proc = subprocess.run([sys.executable, "-c", planted], cwd=root, capture_output=True, text=True)
    assert proc.returncode == 1 and proc.stdout.strip() == "['jax']"


def sample_table() -> Table:
    """Every feature once: right alignment, a column only the page shows, classes, trusted markup,
    text to escape, an empty cell, a greyed row whose reason spans the measurements."""
    return Table(
        (
            Column("cell"),
            Column("samples/s", "right"),
            Column("chunks", formats=(HTML,)),
            Column("reload"),
        ),
        (
            row(
                "a<b>", "1,000", "p50 1 ms", Cell("MISMATCH", css="warn", markup="<b>MISMATCH</b>")
            ),
            row("c|d", Cell("12", css="muted"), "", "ok"),
            row("gpu", Cell("no GPU & | no luck", span=True), off=True),
        ),
    )


def test_table_markdown():
    assert to_markdown(sample_table()) == (
        "| cell | samples/s | reload |\n"
        "|---|---:|---|\n"
        "| a<b> | 1,000 | MISMATCH |\n"
        "| c/d | 12 | ok |\n"
        "| gpu | no GPU & / no luck | |"
    )
    assert to_markdown(Table((Column("a"),), (row("one\ntwo"),))).endswith("| one two |")
    cut = to_markdown(sample_table(), span_width=10).splitlines()
    assert cut[-1] == "| gpu | no GPU... | |"  # cut to 10, the space before the cut dropped
    cut = to_markdown(sample_table(), span_width=7).splitlines()
    assert cut[2] == "| a<b> | 1,000 | MISMATCH |"  # only spanning text is cut
    assert to_markdown(sample_table(), span_width=18).splitlines()[-1] == (
        "| gpu | no GPU & / no luck | |"
    )


def test_table_html_escapes_text_and_keeps_markup():
    assert to_html(sample_table()) == (
        '<table><tr><th>cell</th><th class="num">samples/s</th><th>chunks</th><th>reload</th></tr>\n'
        '<tr><td>a&lt;b&gt;</td><td class="num">1,000</td><td>p50 1 ms</td>'
        '<td class="warn"><b>MISMATCH</b></td></tr>\n'
        '<tr><td>c|d</td><td class="num muted">12</td><td></td><td>ok</td></tr>\n'
        '<tr class="off"><td>gpu</td><td colspan="3">no GPU &amp; | no luck</td></tr>\n'
        "</table>"
    )


def test_table_text_aligns_columns():
    table = sample_table()
    assert to_text(table) == (
        "cell  samples/s  reload\n"
        "a<b>      1,000  MISMATCH\n"
        "c|d          12  ok\n"
        "gpu   no GPU & | no luck"
    )
    # A spanning cell whose own column a format hides still shows, from the next shown column.
    hidden = Table((Column("cell"), Column("x", formats=(HTML,)), Column("y")), table.rows[2:])
    assert to_text(hidden).splitlines() == ["cell  y", "gpu   no GPU & | no luck"]
    assert to_markdown(hidden).splitlines()[-1] == "| gpu | no GPU & / no luck |"


def test_table_refuses_a_row_that_does_not_fit():
    columns = (Column("a"), Column("b"), Column("c"))
    Table(columns, (row("1", "2", "3"), row("1", Cell("why", span=True))))
    for bad in (
        row("1", "2"),
        row("1", "2", "3", "4"),
        row("1", Cell("why", span=True), "3"),
        row(),
    ):
        with pytest.raises(ValueError, match="a row of 3 columns needs a cell per column"):
            Table(columns, (bad,))


def test_environments_are_listed_machine_by_machine():
    """Lines of one machine stay together (host first), whatever the backend's name."""
    docs = [result("jax", [1.0]), result("tensorflow", [1.0]), result("torch", [1.0])]
    docs[0]["environment"]["hostname"] = "zeta"
    docs[2]["environment"]["hostname"] = "alpha"
    text = markdown.render_markdown(docs)
    lines = [line for line in text.splitlines() if line.startswith("- ")]
    assert [line.split(" on ")[1].split(" ")[0] for line in lines] == ["alpha", "box", "zeta"]


def test_cumulative_report_keeps_ab_jobs_and_calibrations_apart(tmp_path):
    """A newer A/B worker (train only) or calibration run never replaces a run's full result
    in the report over every run; a report asked of an A/B folder alone still shows it."""
    full = result("jax", [1000.0, 1000.0, 1000.0])
    ab = result("jax", [5.0, 5.0], started="2026-11-28T00:00:00Z", run_id="ab-x")
    ab["ab"] = {"id": "ab-x", "side": "candidate", "round": 1}
    cal = result("jax", [7.0, 7.0], started="2026-11-29T00:00:00Z", run_id="r-calibrate2")
    for doc, path in ((full, "run-a"), (ab, "ab-x/candidate/round-01"), (cal, "r-calibrate2")):
        results.write_json_atomic(tmp_path / path / "sweep" / "bs32--jax.json", doc)
    docs, problems = results.load_results([tmp_path], runs_only=True)
    assert not problems and [d["run_id"] for d in docs] == ["run-a"]
    docs, _ = results.load_results([tmp_path])  # without runs_only the newest wins
    assert [d["run_id"] for d in docs] == ["r-calibrate2"]
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "compare", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0 and "1,000 ± 0" in proc.stdout and " 5 ± 0" not in proc.stdout
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "compare", str(tmp_path / "ab-x")],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0 and "5 ± 0" in proc.stdout


def test_at_a_glance_bolds_the_fastest_shown_and_settings_name_their_cells():
    """With --all a backend's older, faster result is not shown: the bold goes to the fastest
    of the row as shown. A backend whose cells ran differently gets a row per way, naming
    the cells; on a GPU the matmul precision shows; an unrecorded setting says why."""
    from harness.report import sections
    from harness.report.table import to_markdown

    old = result("jax", [1000.0], started="2026-11-26T00:00:00Z")
    new = result("jax", [500.0], started="2026-11-27T00:00:00Z")
    torch = result("torch", [800.0])
    lines = to_markdown(sections.comparison([old, new, torch])).splitlines()
    assert lines[2] == "| bs32 | 500 ± 0 | **800 ± 0** |"
    gpu = result("torch", [1.0], cell_id="gpu")
    gpu["device"]["variables_on"] = "gpu:0"
    gpu["backend_settings"].update(jit_compile=True, matmul_precision="tf32")
    broken = result("jax", [1.0], cell_id="x")
    broken["backend_settings"] = {"error": "AttributeError: no"}
    lines = to_markdown(sections.settings([torch, gpu, broken])).splitlines()[2:]
    assert lines == [
        "| jax | not recorded: AttributeError: no (x) | | | | |",
        "| torch | no | float32 (CPU) | float32 | 2 / 2 | bs32 |",
        "| torch | torch.compile | tf32 | float32 | 2 / 2 | gpu |",
    ]


def test_an_ab_folder_named_beside_a_run_folder_is_reported(tmp_path):
    run = result("jax", [1000.0])
    ab = result("torch", [5.0], run_id="ab-x")
    ab["ab"] = {"id": "ab-x", "side": "candidate", "round": 1}
    results.write_json_atomic(tmp_path / "run-a" / "sweep" / "bs32--jax.json", run)
    results.write_json_atomic(tmp_path / "ab-x" / "sweep" / "bs32--torch.json", ab)
    docs, _ = results.load_results([tmp_path / "ab-x", tmp_path / "run-a"], runs_only=True)
    assert sorted(d["backend"] for d in docs) == ["jax", "torch"]
    docs, _ = results.load_results([tmp_path], runs_only=True)
    assert [d["backend"] for d in docs] == ["jax"]
