"""The set-up every command that runs cells shares, written once: load the scenarios, resolve
the backends and plan the jobs (``plan``); then check the import references, make the run
folder (or take the one ``--resume`` names, checked against its manifest), probe the
environment, record the manifest and build the Runner (``start``).

``harness run``, ``harness ab``, ``harness worker-join`` and ``harness calibrate`` differ only
in the parameters: what kind of folder (manifest.Kind), which references to check in which
interpreter, what their manifest records, and their own checks between the two steps.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .. import scenario
from ..backends import resolve_backends
from ..environment import environment as probe_environment
from ..errors import UsageError
from ..results import make_dir, read_manifest, write_json_atomic
from ..scenario import Cell, Scenario
from . import jobs as jobs_mod
from . import refcheck
from .jobs import Job
from .manifest import Kind, check_resume, run_dir_for
from .runner import Runner


@dataclasses.dataclass
class Plan:
    """What a command runs: its scenarios, backends and jobs, in order."""

    scenarios: list[Scenario]
    backends: list[str]
    jobs: list[Job]


def no_cells(backends: list[str]) -> UsageError:
    return UsageError("no cells to run for backend(s) " + ", ".join(backends))


def plan(
    paths: list[Path], backend: str | list[str] | None, *, notes: bool = False, empty: bool = True
) -> Plan:
    """Loads the scenario files (each checked in full), resolves ``--backend`` and plans a job
    per cell and backend.

    Args:
        paths: the scenario files.
        backend: ``--backend`` as given.
        notes: print a note on each cell a scenario keeps from a backend.
        empty: refuse a plan without a job (one line, exit 2); a command that first narrows
            the plan says so itself.
    """
    scenarios = scenario.load_all(paths)
    backends = resolve_backends(backend)
    jobs, said = jobs_mod.plan(scenarios, backends)
    if notes:
        for note in said:
            print(f"note: {note}", file=sys.stderr)
    if empty and not jobs:
        raise no_cells(backends)
    return Plan(scenarios, backends, jobs)


@dataclasses.dataclass(frozen=True)
class References:
    """Scenarios whose import references are checked before anything is written: among
    ``cells`` (None: every cell), in the interpreter ``python`` (None: this one)."""

    scenarios: list[Scenario]
    cells: list[Cell] | None = None
    python: str | None = None


def start(
    kind: Kind,
    backends: list[str],
    jobs: list[Job] | Callable[[Path], list[Job]],
    *,
    out: str | Path,
    resume: str | Path | None = None,
    suffix: str = "",
    check: Sequence[References] = (),
    outputs: dict[str, str | None] | None = None,
    same: dict[str, Any] | None = None,
    record: Callable[[list[Job]], dict[str, Any]] | None = None,
    environment: dict[str, Any] | None = None,
    runner: type[Runner] = Runner,
    **options: Any,
) -> Runner:
    """Everything between a plan and its first cell, in this order: the import references
    checked; each output's path checked; the run folder chosen (or ``--resume``'s, which
    must hold ``kind``'s manifest); the jobs planned in it, where they depend on it; a
    resume checked against its manifest; the outputs' folders and the run folder made; the
    environment probed; the manifest recorded (a new run's); the Runner built. Every
    refusal is one line (exit 2) before anything is written.

    Args:
        kind: the kind of run folder (manifest.RUN, AB, JOIN).
        backends: the resolved backends.
        jobs: the jobs, or what gives them once the run folder is known (``harness ab``'s
            jobs name it).
        out: ``--out``, where a new run folder goes.
        resume: ``--resume``: the folder of a run to finish.
        suffix: the end of a new folder's name (a shard's, a calibration's).
        check: the import references to check, each in its interpreter.
        outputs: files written after the cells, by the option that names them (``--report``):
            one that is a folder, or whose folder cannot be made, is refused first.
        same: more manifest entries a resumed run must have been started with (see
            ``manifest.check_resume``).
        record: what the manifest records of the jobs besides the folder's name, the command
            line and the environment; None: no manifest (calibration runs).
        environment: the environment, already probed (several runs of one calibration).
        runner: the Runner class to build.
        **options: the Runner's keyword arguments.
    """
    for refs in check:
        refcheck.check(refs.scenarios, backends, refs.cells, python=refs.python)
    written = {option: path for option, path in (outputs or {}).items() if path}
    for option, path in written.items():
        if Path(path).is_dir():
            raise UsageError(f"{option} {path}: a folder, not a file")
    run_dir = run_dir_for(
        resume, out, backends, kind, suffix=suffix, make=False, resumable=record is not None
    )
    if callable(jobs):
        jobs = jobs(run_dir)
    if not jobs:
        raise no_cells(backends)
    manifest = run_dir / kind.manifest
    resumed = manifest.is_file()
    if resumed:  # the rest of the run must be the same experiment
        check_resume(read_manifest(manifest), run_dir, backends, jobs, same)
    for option, path in written.items():  # written after the cells: must fail before them
        make_dir(Path(path).parent, f"{option} {path}")
    if not resume:
        make_dir(run_dir, f"--out {out}")
    env = probe_environment() if environment is None else environment
    if record is not None and not resumed:
        write_json_atomic(
            manifest,
            {kind.id_key: run_dir.name, "argv": sys.argv, **record(jobs), "environment": env},
        )
    return runner(jobs, run_dir, environment=env, **options)
