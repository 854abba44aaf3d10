"""A report over the same result files is byte-identical before and after a change of the code.

The result files are committed (tests/golden/results/, made once by make_results.py); every
page and table `harness compare`, `harness history` and `harness check` draw of them is compared
byte for byte with its committed rendering (tests/golden/outputs/): the compare report in each
format, the history page in each, and the gate's table (text and markdown), its messages, its
exit code, its JUnit file and what it appends to $GITHUB_STEP_SUMMARY.

Nothing in these outputs varies from run to run: the files hold their dates, the commands run in
a copy of the folder with relative paths, and, should a path still appear, the copy's location
is replaced by ``RESULTS`` (the one normalisation). A golden file that is missing is written and
the test fails, to be reviewed; ``HARNESS_UPDATE_GOLDEN=1`` rewrites them all, for a change of
output made on purpose (say so in its commit).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from conftest import run_cli

GOLDEN = Path(__file__).parent / "golden"
RESULTS = GOLDEN / "results"
OUTPUTS = GOLDEN / "outputs"
SUMMARY = "summary.md"

# golden name (its extension: what stdout is) -> the command's arguments; "JUNIT" stands for a
# JUnit file the test reads back. Beside NAME: NAME.log, NAME.junit.xml, NAME.summary.md.
INVOCATIONS = {
    "compare.md": ["compare", "compare"],
    "compare.html": ["compare", "compare", "--format", "html"],
    "compare.csv": ["compare", "compare", "--format", "csv"],
    "compare.json": ["compare", "compare", "--format", "json"],
    "compare-all.md": ["compare", "compare", "--all"],
    "history.md": ["history", "history"],
    "history.html": ["history", "history", "--format", "html"],
    "check.txt": ["check", "gate/current", "--baseline", "gate/baseline", "--junit", "JUNIT"],
    "check-bh-fail-on-skip.md": [
        "check", "gate/current", "--baseline", "gate/baseline", "--format", "md",
        "--correction", "bh", "--fail-on-skip", "--junit", "JUNIT",
    ],
    "check-changed.txt": ["check", "gate/changed", "--baseline", "gate/baseline", "--junit", "JUNIT"],
    "check-changed-allowed.txt": [
        "check", "gate/changed", "--baseline", "gate/baseline", "--allow-workload-change",
    ],
    "check-other-machine.txt": [
        "check", "gate/other-machine", "--baseline", "gate/baseline", "--junit", "JUNIT",
    ],
    "check-ab.txt": ["check", "gate/ab/candidate", "--baseline", "gate/ab/baseline"],
    "check-ab-typical.md": [
        "check", "gate/ab/candidate", "--baseline", "gate/ab/baseline", "--metric", "typical",
        "--format", "md", "--junit", "JUNIT",
    ],
    "check-history.txt": [
        "check", "history/run13-TestCPU", "--baseline-history", "history", "--window", "5",
    ],
}  # fmt: skip


def outputs(name: str, argv: list[str], tmp_path: Path) -> dict[str, str]:
    """What one command gives, run as a user runs it, by golden file name: its stdout; its exit
    code and stderr (``.log``); the JUnit file and the job summary it writes, where it does."""
    root = tmp_path / "results"
    shutil.copytree(RESULTS, root)
    junit = f"{name}.junit.xml"
    args = [junit if a == "JUNIT" else a for a in argv]
    proc = run_cli(*args, cwd=root, env={"GITHUB_STEP_SUMMARY": SUMMARY})
    found = {
        name: proc.stdout,
        f"{name}.log": f"$ harness {' '.join(argv)}\nexit {proc.returncode}\n{proc.stderr}",
    }
    for written, golden in ((junit, junit), (SUMMARY, f"{name}.summary.md")):
        if (root / written).exists():
            found[golden] = (root / written).read_text(encoding="utf-8")
    return {k: v.replace(str(root), "RESULTS") for k, v in found.items()}


@pytest.mark.parametrize("name", list(INVOCATIONS))
def test_output_is_byte_identical_to_its_golden_file(name, tmp_path):
    found = outputs(name, INVOCATIONS[name], tmp_path)
    update = os.environ.get("HARNESS_UPDATE_GOLDEN") == "1"
    written = []
    for file, text in found.items():
        golden = OUTPUTS / file
        if update or not golden.exists():
            golden.parent.mkdir(exist_ok=True)
            golden.write_bytes(text.encode())
            written.append(file)
            continue
        assert text.encode() == golden.read_bytes(), f"{file} differs from its golden file"
    stale = {p.name for p in OUTPUTS.glob(f"{name}.*")} - set(found)
    assert not stale, f"golden files this command no longer writes: {sorted(stale)}"
    if written and not update:
        pytest.fail(f"written {written}: review them, then commit them")


def test_every_output_has_its_golden_file():
    """No golden file is left that no invocation produces (a renamed one would go unchecked)."""
    orphans = [
        p.name
        for p in OUTPUTS.iterdir()
        if not any(p.name == n or p.name.startswith(f"{n}.") for n in INVOCATIONS)
    ]
    assert not orphans
