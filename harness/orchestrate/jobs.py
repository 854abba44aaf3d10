"""Planning: the jobs of a run (a cell under a backend, with where its result goes) and the
run's id."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from ..protocol import Options
from ..scenario import Cell, Scenario


@dataclasses.dataclass
class Job:
    scenario: Scenario
    cell: Cell
    backend: str
    # Set by `harness ab`: a sub-folder of the run (side/round), the interpreter that runs the
    # worker (a side may be another environment) and how its task departs from a plain cell.
    subdir: str = ""
    python: str | None = None
    options: Options = Options()

    @property
    def label(self) -> str:
        where = f"{self.subdir}: " if self.subdir else ""
        return f"{where}{self.scenario.name}/{self.cell.id}"

    @property
    def file_stem(self) -> str:
        return f"{self.cell.id}--{self.backend}"

    @property
    def key(self) -> str:
        """Its name in a run's manifest and in shards: ``[SUBDIR/]SCENARIO/CELL--BACKEND``."""
        where = f"{self.subdir}/" if self.subdir else ""
        return f"{where}{self.scenario.name}/{self.cell.id}--{self.backend}"

    @property
    def relpath(self) -> Path:
        """Its result file, inside the run folder."""
        return Path(self.subdir) / self.scenario.name / f"{self.file_stem}.json"


def plan(scenarios: list[Scenario], backends: list[str]) -> tuple[list[Job], list[str]]:
    """The jobs to run, backend by backend, and notes on cells a scenario excludes."""
    jobs, notes = [], []
    for backend in backends:
        for sc in scenarios:
            for cell in sc.cells:
                if backend in cell.backends:
                    jobs.append(Job(sc, cell, backend))
                else:
                    notes.append(
                        f"{sc.name}/{cell.id}: not run under {backend} (scenario backends)"
                    )
    return jobs, notes


def new_run_id(backends: list[str], clock=time.time) -> str:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(clock()))
    return f"{stamp}-{'+'.join(backends)}"
