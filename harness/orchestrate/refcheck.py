"""Checks a run's import references (``model`` / ``dataset = "package.module:function"``)
before any cell runs: one quick worker imports them, calls the dataset function and builds the
model, as the cells will. A bad one is a ScenarioError naming the file and key (exit 2,
nothing written), not a failed cell found minutes into a run."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from .. import devices as dev
from ..lifeline import child_env
from ..scenario import Cell, Scenario, ScenarioError, is_ref

TIMEOUT = 600.0  # seconds: the user's dataset function may load files


def tasks(
    scenarios: list[Scenario], cells: list[Cell] | None = None
) -> list[tuple[Scenario, Cell]]:
    """One cell per distinct (model, dataset, python_path) that names an import reference,
    among ``cells`` (default: every cell of the scenarios)."""
    wanted = None if cells is None else {(c.scenario, c.id) for c in cells}
    seen, out = set(), []
    for sc in scenarios:
        for cell in sc.cells:
            if wanted is not None and (cell.scenario, cell.id) not in wanted:
                continue
            if not (is_ref(cell.model) or is_ref(cell.dataset)):
                continue
            key = (cell.model, cell.dataset, cell.python_path, cell.batch_size,
                   cell.train_samples, cell.test_samples)  # fmt: skip
            if key not in seen:
                seen.add(key)
                out.append((sc, cell))
    return out


def check(
    scenarios: list[Scenario],
    backend: str,
    cells: list[Cell] | None = None,
    python: str | None = None,
) -> int:
    """Runs the quick check under ``backend`` on the CPU; returns how many were checked.

    Raises:
        ScenarioError: the first bad reference, naming its file and key.
    """
    todo = tasks(scenarios, cells)
    if not todo:
        return 0
    print(
        f"checking the import references of {len(todo)} model/dataset pair(s) under {backend} "
        "before any cell runs",
        file=sys.stderr,
    )
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump([{"cell": cell.to_json()} for _, cell in todo], f)
    try:
        env = child_env(dev.device_env("cpu", backend))
        try:
            proc = subprocess.run(
                [python or sys.executable, "-m", "harness.worker.refcheck", f.name],
                env=env,
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
            )
        except subprocess.TimeoutExpired:
            _warn(f"it took more than {TIMEOUT:.0f} s")
            return 0
    finally:
        Path(f.name).unlink(missing_ok=True)
    answers = {}
    for line in proc.stdout.splitlines():  # the user's own code may print too
        try:
            answer = json.loads(line)
        except ValueError:
            continue
        if isinstance(answer, dict) and answer.get("index") in range(len(todo)):
            answers[answer["index"]] = answer
    for index, (sc, cell) in enumerate(todo):
        answer = answers.get(index)
        if answer is None:
            tail = " ".join(proc.stderr.strip().splitlines()[-1:])[:300]
            _warn(f"its worker exited with code {proc.returncode} ({tail or 'no output'})")
            return 0
        if "crashed" in answer:
            _warn(answer["crashed"])
            return 0
        if "error" in answer:
            field = answer["field"]
            raise ScenarioError(sc.path, sc.where(field, getattr(cell, field)), answer["error"])
    return len(todo)


def quickest(backends: list[str]) -> str:
    """The backend the check runs under: jax where it is one of them (it imports fastest)."""
    return "jax" if "jax" in backends else backends[0]


def _warn(why: str) -> None:
    print(
        f"warning: the quick check of import references could not finish ({why}); each cell "
        "checks its own",
        file=sys.stderr,
    )
