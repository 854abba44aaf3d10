import json
import subprocess
import sys
from pathlib import Path

import pytest
from factories import result

from harness import results
from harness.report import markdown, tabular
from harness.report import rows as report_rows

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
