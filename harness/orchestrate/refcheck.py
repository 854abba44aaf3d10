"""Checks a run's import references (``model`` / ``dataset = "package.module:function"``)
before any cell runs: one quick worker imports them, calls the dataset function and builds the
model, as the cells will. A bad one is a ScenarioError naming the file and key (exit 2,
nothing written), not a failed cell found minutes into a run."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from .. import devices as dev
from ..lifeline import run_module
from ..scenario import Cell, Scenario, ScenarioError, is_ref

TIMEOUT = 600.0  # seconds: the user's dataset function may load files


def tasks(
    scenarios: list[Scenario], cells: list[Cell] | None = None
) -> list[tuple[Scenario, Cell]]:
    """One cell per distinct model, dataset, loss, metrics and data settings where the model or
    the dataset is an import reference, among ``cells`` (default: every cell of the
    scenarios). The check worker loads each dataset once, whatever the losses."""
    wanted = None if cells is None else {(c.scenario, c.id) for c in cells}
    seen, out = set(), []
    for sc in scenarios:
        for cell in sc.cells:
            if wanted is not None and (cell.scenario, cell.id) not in wanted:
                continue
            if not (is_ref(cell.model) or is_ref(cell.dataset)):
                continue
            key = (cell.model, cell.dataset, cell.python_path, cell.batch_size,
                   cell.train_samples, cell.test_samples, cell.loss, cell.metrics)  # fmt: skip
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
    run under (jax where it is one: it imports fastest), a worker per backend and python_path
    (two scenarios' modules of one name never meet in one process); returns how many were
    checked.

    Raises:
        ScenarioError: the first bad reference, naming its file and key.
    """
    groups: dict[tuple, list[tuple[Scenario, Cell]]] = {}
    for sc, cell in tasks(scenarios, cells):
        mine = [b for b in backends if b in cell.backends] or backends
        backend = "jax" if "jax" in mine else mine[0]
        groups.setdefault((backend, cell.python_path), []).append((sc, cell))
    return sum(_check(todo, key[0], python) for key, todo in groups.items())


def _check(todo: list[tuple[Scenario, Cell]], backend: str, python: str | None) -> int:
    print(
        f"checking the import references of {len(todo)} model/dataset pair(s) under {backend} "
        "before any cell runs",
        file=sys.stderr,
    )
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump([{"cell": cell.to_json()} for _, cell in todo], f)
    try:
        lines, cut_short = run_module(
            "harness.worker.refcheck",
            [f.name],
            dev.device_env("cpu", backend),
            timeout=TIMEOUT,
            python=python,
        )
    finally:
        Path(f.name).unlink(missing_ok=True)
    answers = {a["index"]: a for a in lines if a.get("index") in range(len(todo))}
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
        why = cut_short or "the check crashed on some"
        _warn(f"{why}; not checked: " + "; ".join(unchecked))
    return len(todo) - len(unchecked)


def _warn(why: str) -> None:
    print(
        f"warning: the quick check of import references could not finish ({why}); those "
        "cells check their own",
        file=sys.stderr,
    )


def validate(paths: list[Path], *, backend: str | None = None) -> int:
    """``harness validate``: every scenario file checked in full, its import references in a
    quick worker (under ``backend``, else every backend installed here); prints a line per
    file.

    Raises:
        UserError: a bad file or reference (one line naming the file and the key).
    """
    from .. import scenario
    from ..backends import installed_backends

    scenarios = scenario.load_all(paths)
    if tasks(scenarios):
        backends = [backend] if backend else installed_backends()
        if backends:
            check(scenarios, backends)
        else:
            print("note: import references not checked: no Keras backend installed here",
                  file=sys.stderr)  # fmt: skip
    for sc in scenarios:
        print(f"{sc.path}: ok, {len(sc.cells)} cell(s): " + ", ".join(c.id for c in sc.cells))
    return 0
