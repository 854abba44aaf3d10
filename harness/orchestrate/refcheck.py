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
    backends: list[str],
    cells: list[Cell] | None = None,
    python: str | None = None,
) -> int:
    """Runs the quick check on the CPU, each reference under one of the backends its cells
    run under (jax where it is one: it imports fastest); returns how many were checked.

    Raises:
        ScenarioError: the first bad reference, naming its file and key.
    """
    groups: dict[str, list[tuple[Scenario, Cell]]] = {}
    for sc, cell in tasks(scenarios, cells):
        mine = [b for b in backends if b in cell.backends] or backends
        groups.setdefault("jax" if "jax" in mine else mine[0], []).append((sc, cell))
    return sum(_check(todo, backend, python) for backend, todo in groups.items())


def _check(todo: list[tuple[Scenario, Cell]], backend: str, python: str | None) -> int:
    print(
        f"checking the import references of {len(todo)} model/dataset pair(s) under {backend} "
        "before any cell runs",
        file=sys.stderr,
    )
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump([{"cell": cell.to_json()} for _, cell in todo], f)
    cut_short = None
    try:
        try:
            proc = subprocess.run(
                [python or sys.executable, "-m", "harness.worker.refcheck", f.name],
                env=child_env(dev.device_env("cpu", backend)),
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
            )
            stdout, stderr = proc.stdout, proc.stderr
            if proc.returncode:
                cut_short = f"its worker exited with code {proc.returncode}"
        except subprocess.TimeoutExpired as exc:  # what it answered so far still counts
            stdout, stderr = _text(exc.stdout), _text(exc.stderr)
            cut_short = f"it took more than {TIMEOUT:.0f} s"
    finally:
        Path(f.name).unlink(missing_ok=True)
    answers = {}
    for line in stdout.splitlines():
        try:
            answer = json.loads(line)
        except ValueError:
            continue
        if isinstance(answer, dict) and answer.get("index") in range(len(todo)):
            answers[answer["index"]] = answer
    unchecked = []
    for index, (sc, cell) in enumerate(todo):
        answer = answers.get(index, {})
        if "error" in answer:
            field = answer["field"]
            raise ScenarioError(sc.path, sc.where(field, getattr(cell, field)), answer["error"])
        if "crashed" in answer:
            unchecked.append(f"{cell.scenario}/{cell.id}: {answer['crashed']}")
        elif not answer.get("ok"):
            unchecked.append(f"{cell.scenario}/{cell.id}")
    if unchecked:
        tail = " ".join(stderr.strip().splitlines()[-1:])[:300]
        why = cut_short or "no answer"
        _warn(f"{why}{f' ({tail})' if tail and cut_short else ''}; not checked: "
              + "; ".join(unchecked))  # fmt: skip
    return len(todo) - len(unchecked)


def _text(data: bytes | str | None) -> str:
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return data or ""


def _warn(why: str) -> None:
    print(
        f"warning: the quick check of import references could not finish ({why}); those "
        "cells check their own",
        file=sys.stderr,
    )
