"""What CI systems read from the gate: the markdown table in GitHub's job summary, and a JUnit
XML file (one testcase per cell) that GitLab, Jenkins and others show natively.

A JUnit file agrees with the gate's exit code: a cell that fails the gate (regressed; lost: ok
in the baseline, not ok now; missing: it failed or ran on one side only) is a failed testcase
with the reason; one whose workload changed (the gate refuses to judge it) is an errored one;
one that cannot be judged (noisy, or not compared) is skipped with why; the others pass.
"""

from __future__ import annotations

import os
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from ..errors import UsageError
from ..results import make_dir
from .judge import FAILING, REFUSED, Verdict, VerdictStatus

# GitHub Actions sets it to a file per step; what a step appends there shows on the run's page.
SUMMARY_ENV = "GITHUB_STEP_SUMMARY"
SKIPPED = (VerdictStatus.NOISY, VerdictStatus.NOT_COMPARED)


def check_junit_path(path: Path | None) -> None:
    """Refuses an unusable ``--junit`` before anything runs (one line, exit 2)."""
    if path is None:
        return
    if Path(path).is_dir():
        raise UsageError(f"--junit {path}: a folder, not a file")
    make_dir(Path(path).parent, f"--junit {path}")
    if Path(path).exists() and not os.access(path, os.W_OK):
        raise UsageError(f"--junit {path}: not writable")


def append_summary(markdown: str, environ=os.environ) -> None:
    """Appends to GitHub's job summary when it is set (never overwrites what other steps
    wrote); a summary that cannot be written is a warning, never a change of verdict."""
    target = environ.get(SUMMARY_ENV)
    if not target:
        return
    try:
        with open(target, "a", encoding="utf-8") as out:
            out.write(markdown.rstrip("\n") + "\n\n")
    except OSError as exc:
        print(f"harness: warning: ${SUMMARY_ENV} {target}: {exc.strerror}", file=sys.stderr)


def junit_xml(
    found: list[Verdict], suite: str, refusals: list[str] = (), not_run: set[str] = frozenset()
) -> str:
    """The verdicts as JUnit XML: a testcase per cell, classname its scenario.

    Args:
        found: the gate's verdicts.
        suite: the testsuite's name ("harness check", "harness ab").
        refusals: why the gate refused to compare (exit 2): one errored testcase each.
        not_run: cells of the current run that were skipped or unsupported, failures under
            ``--fail-on-skip`` (the exit code says so too).
    """

    def failing(v: Verdict) -> bool:
        return v.status in FAILING or v.key in not_run

    failures = sum(failing(v) for v in found)
    skipped = sum(v.status in SKIPPED for v in found)
    root = ET.Element("testsuites")
    attrs = {
        "name": suite,
        "tests": str(len(found) + len(refusals)),
        "failures": str(failures),
        "errors": str(len(refusals) + sum(v.status in REFUSED for v in found)),
        "skipped": str(skipped),
    }
    node = ET.SubElement(root, "testsuite", attrs)
    for v in sorted(found, key=lambda v: v.key):
        scenario, _, name = v.key.partition("/")
        case = ET.SubElement(node, "testcase", {"classname": scenario, "name": name})
        message = _xml_text(f"{v.status}: {v.why}" if v.why else v.status)
        if v.ratio is not None:
            message += f" (ratio {v.ratio:.3f})"
        if v.key in not_run and v.status not in FAILING:
            message = f"did not run (--fail-on-skip): {message}"
            ET.SubElement(case, "failure", {"message": message, "type": "skipped"}).text = message
        elif v.status in FAILING:
            ET.SubElement(case, "failure", {"message": message, "type": v.status}).text = message
        elif v.status in REFUSED:
            ET.SubElement(case, "error", {"message": message, "type": v.status}).text = message
        elif v.status in SKIPPED:
            ET.SubElement(case, "skipped", {"message": message})
        else:
            ET.SubElement(case, "system-out").text = message
    for refusal in map(_xml_text, refusals):
        case = ET.SubElement(node, "testcase", {"classname": "gate", "name": "comparable"})
        ET.SubElement(case, "error", {"message": refusal, "type": "refused"}).text = refusal
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _xml_text(text: str) -> str:
    """Text XML 1.0 can hold: control characters (a colour code in a reason) replaced."""
    return re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", "?", text)


def write_junit(
    path: Path,
    found: list[Verdict],
    suite: str,
    refusals: list[str] = (),
    not_run: set[str] = frozenset(),
) -> None:
    try:
        Path(path).write_text(junit_xml(found, suite, refusals, not_run), encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--junit {path}: cannot write ({exc.strerror})") from None
