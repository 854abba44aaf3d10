"""run_module: a harness child's answers (JSON lines) and its failure as one line."""

from __future__ import annotations

import os

from harness.lifeline import PARENT_ENV, run_module

CHILD = """
import json, os, sys, time
mode = sys.argv[1]
print(json.dumps({"parent": os.environ.get("PARENT_ENV"), "extra": os.environ.get("EXTRA")}))
print("{not json: a log line}")
print(json.dumps({"n": 2}), flush=True)
if mode == "fail":
    print("first\\nTheError: why it failed", file=sys.stderr)
    sys.exit(3)
if mode == "hang":
    time.sleep(30)
""".replace("PARENT_ENV", PARENT_ENV)


def _module(tmp_path) -> dict[str, str]:
    (tmp_path / "answering_child.py").write_text(CHILD)
    return {"PYTHONPATH": str(tmp_path), "EXTRA": "yes"}


def test_answers_are_the_json_lines_and_the_child_knows_its_parent(tmp_path):
    answers, failure = run_module("answering_child", ["ok"], _module(tmp_path), timeout=60)
    assert failure is None
    assert answers == [{"parent": str(os.getpid()), "extra": "yes"}, {"n": 2}]


def test_a_failing_child_keeps_its_answers_and_says_why_in_one_line(tmp_path):
    answers, failure = run_module("answering_child", ["fail"], _module(tmp_path), timeout=60)
    assert len(answers) == 2
    assert failure == "exit 3: TheError: why it failed"


def test_answers_given_before_a_timeout_are_kept(tmp_path):
    extra = _module(tmp_path)
    answers, failure = run_module("answering_child", ["hang"], extra, timeout=3)
    assert failure == "timed out after 3 s"
    assert answers[-1] == {"n": 2}  # printed (and flushed) before the child hung


def test_an_installed_harness_puts_only_itself_on_a_childs_path(tmp_path):
    """Installed, the package sits in its environment's site-packages: a child of another
    environment must get the harness from there, but keras and the backend from its own."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    import harness

    site = tmp_path / "site-packages"
    shutil.copytree(Path(harness.__file__).parent, site / "harness")
    (site / "keras").mkdir()  # the installing environment's keras: must stay out of sight
    (site / "pyproject.toml").write_text('[project]\nname = "some-wheel"\n')  # some ship one
    code = "from harness.lifeline import package_path; print(package_path())"
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(site)},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    folder = Path(proc.stdout.strip())
    assert folder != site and [p.name for p in folder.iterdir()] == ["harness"]
    assert (folder / "harness").resolve() == (site / "harness").resolve()
