"""What CI systems read from the gate: JUnit XML (a testcase per cell, agreeing with the exit
code) and the markdown table appended to $GITHUB_STEP_SUMMARY."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from conftest import run_cli
from factories import result

from harness import results
from harness.gate import ci
from harness.gate.verdicts import Verdict

BASE = [100.0, 99.0, 101.0, 100.5, 99.5]

GOLDEN = """<?xml version="1.0" encoding="UTF-8"?>
<testsuites>
  <testsuite name="harness check" tests="5" failures="2" errors="0" skipped="2">
    <testcase classname="sweep" name="bs32--jax">
      <failure message="regressed: 10% slower (ratio 0.900)" type="regressed">regressed: 10% slower (ratio 0.900)</failure>
    </testcase>
    <testcase classname="sweep" name="bs32--torch">
      <failure message="missing: current run: failed: boom" type="missing">missing: current run: failed: boom</failure>
    </testcase>
    <testcase classname="sweep" name="bs64--jax">
      <skipped message="noisy: too few values (ratio 0.970)" />
    </testcase>
    <testcase classname="sweep" name="bs64--torch">
      <skipped message="not compared: not in the baseline" />
    </testcase>
    <testcase classname="sweep" name="bs8--jax">
      <system-out>unchanged (ratio 1.010)</system-out>
    </testcase>
  </testsuite>
</testsuites>
"""


def test_junit_xml_exact():
    found = [
        Verdict("sweep/bs32--jax", "regressed", ratio=0.9, why="10% slower"),
        Verdict("sweep/bs8--jax", "unchanged", ratio=1.01),
        Verdict("sweep/bs64--jax", "noisy", ratio=0.97, why="too few values"),
        Verdict("sweep/bs64--torch", "not compared", why="not in the baseline"),
        Verdict("sweep/bs32--torch", "missing", why="current run: failed: boom"),
    ]
    text = ci.junit_xml(found, "harness check")
    assert text == GOLDEN
    # a colour code in a reason would make the file unreadable to every JUnit consumer
    colour = ci.junit_xml([Verdict("s/c--jax", "missing", why="\x1b[31mboom\x00")], "x")
    assert "missing: ?[31mboom?" in colour
    ET.fromstring(colour.split("\n", 1)[1])
    ET.fromstring(text.split("\n", 1)[1])  # well-formed
    refused = ET.fromstring(ci.junit_xml([], "harness ab", ["other machine"]).split("\n", 1)[1])
    (case,) = refused.iter("testcase")
    assert case.find("error").get("message") == "other machine"


def test_check_writes_junit_and_appends_the_step_summary(tmp_path):
    base, slow = tmp_path / "base", tmp_path / "slow"
    results.write_json_atomic(base / "r.json", result("torch", BASE))
    results.write_json_atomic(slow / "r.json", result("torch", [x * 0.9 for x in BASE]))
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    junit = tmp_path / "out" / "gate.xml"
    env = {"GITHUB_STEP_SUMMARY": str(summary)}
    proc = run_cli("check", str(slow), "--baseline", str(base), "--junit", str(junit), env=env)
    assert proc.returncode == 1, proc.stderr
    suite = ET.parse(junit).getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures")) == ("1", "1")
    assert suite.find("testcase").get("name") == "bs32--torch"
    text = summary.read_text()
    assert text.startswith("earlier step\n### harness check: failed (1 regressed)\n\n")
    assert "| sweep/bs32--torch | REGRESSED | 0.900 |" in text
    # a second gate appends after the first, never over it
    proc = run_cli("check", str(base), "--baseline", str(base), env=env)
    assert proc.returncode == 0
    assert (
        summary.read_text().startswith(text) and "### harness check: passed" in summary.read_text()
    )


def test_unusable_junit_path_is_one_line_before_anything(tmp_path):
    base = tmp_path / "base"
    results.write_json_atomic(base / "r.json", result("torch", BASE))
    proc = run_cli("check", str(base), "--baseline", str(base), "--junit", str(tmp_path))
    assert (
        proc.returncode == 2
        and proc.stderr == f"harness: --junit {tmp_path}: a folder, not a file\n"
    )
    blocker = tmp_path / "file"
    blocker.write_text("")
    proc = run_cli("check", str(base), "--baseline", str(base), "--junit", str(blocker / "x.xml"))
    assert proc.returncode == 2 and proc.stderr.startswith(f"harness: --junit {blocker / 'x.xml'}:")
    assert len(proc.stderr.splitlines()) == 1
