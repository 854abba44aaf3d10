"""What a result document says, read without touching the JSON by hand: a cell's statuses,
the names of the rates a result records, and ``Result``, the read-only view through which the
gate and the reports read a result (results.py reads and writes the files themselves).
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any


class Status(enum.StrEnum):
    """A cell's status, as its result file spells it (a StrEnum: it compares and serialises as
    the string, so files written before it read the same)."""

    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"  # the device is not here (no GPU on this runner)
    UNSUPPORTED = "unsupported"  # a setting this backend cannot honour, with the reason
    INTERRUPTED = "interrupted"


STATUSES = tuple(Status)
# Results that never ran, for a reason the harness chose (no GPU here, a setting a backend
# cannot honour): not a fault of the code under test.
NOT_RUN = (Status.SKIPPED, Status.UNSUPPORTED)

# The per-repeat figures the gate ranks and the reports draw, fields of a result's ``train``:
# each, where present, an object whose values are positive finite numbers (stats.summarize).
# Throughput: samples over each repeat's measured epochs / their wall time; typical: batch size
# / the median timed chunk's time per step.
THROUGHPUT, TYPICAL = "samples_per_sec", "typical_samples_per_sec"
RATE_FIELDS = (THROUGHPUT, TYPICAL)


@dataclasses.dataclass(frozen=True)
class Rate:
    """A per-repeat rate as a result records it (one of :data:`RATE_FIELDS`, a summary of
    stats.summarize): its median, spread and values."""

    summary: dict[str, Any]

    @property
    def median(self) -> float:
        return self.summary["median"]

    @property
    def mad(self) -> float | None:
        """The median absolute deviation of the repeats."""
        return self.summary.get("mad")

    @property
    def cv(self) -> float | None:
        """The coefficient of variation of the repeats."""
        return self.summary.get("cv")

    @property
    def min(self) -> float:
        """The slowest repeat."""
        return self.summary["min"]

    @property
    def max(self) -> float:
        """The fastest repeat."""
        return self.summary["max"]

    @property
    def values(self) -> list[float]:
        """One per repeat; none where the result recorded none."""
        return self.summary.get("values") or []

    @property
    def noisy(self) -> bool:
        """The repeats spread by more than stats.NOISY_CV."""
        return bool(self.summary.get("noisy", False))


@dataclasses.dataclass(frozen=True)
class Result:
    """A read-only view of one result document: what the reports and the gate read of it, each
    field named here once. The document stays what it was read as (JSON, as written).

    ``Result(doc).throughput.median`` is ``doc["train"]["samples_per_sec"]["median"]``.
    """

    doc: dict[str, Any]

    @property
    def status(self) -> str:
        """One of :class:`Status`."""
        return self.doc["status"]

    @property
    def ok(self) -> bool:
        return self.doc["status"] == Status.OK

    @property
    def not_run(self) -> bool:
        """Skipped or unsupported: a reason the harness chose, not a fault (:data:`NOT_RUN`)."""
        return self.doc["status"] in NOT_RUN

    @property
    def reason(self) -> str | None:
        """Why the cell did not end ok."""
        return self.doc.get("reason")

    @property
    def backend(self) -> str:
        return self.doc["backend"]

    @property
    def scenario(self) -> str:
        """The scenario's name."""
        return (self.doc.get("scenario") or {}).get("name", "?")

    @property
    def description(self) -> str:
        """What the scenario file says it measures."""
        return (self.doc.get("scenario") or {}).get("description") or ""

    @property
    def cell(self) -> dict[str, Any]:
        """The cell's settings."""
        return self.doc["cell"]

    @property
    def cell_id(self) -> str:
        return self.doc["cell"].get("id", "?")

    @property
    def key(self) -> tuple[str, str, str]:
        """(scenario, cell id, backend)."""
        return self.scenario, self.cell_id, self.backend

    @property
    def name(self) -> str:
        """``scenario/cell--backend``."""
        return "{}/{}--{}".format(*self.key)

    @property
    def devices(self) -> int:
        """The devices a data-parallel cell trains on (1 for others)."""
        return self.doc["cell"].get("data_parallel", 1)

    @property
    def processes(self) -> int:
        """The processes a data-parallel cell runs in (1 for others)."""
        return self.doc["cell"].get("data_parallel_processes", 1)

    @property
    def run_id(self) -> str | None:
        return self.doc.get("run_id")

    @property
    def started(self) -> str | None:
        """When the cell started (UTC, ISO 8601)."""
        return self.doc.get("started")

    @property
    def path(self) -> str | None:
        """The file it was read from (None for a document never written)."""
        return self.doc.get("_path")

    @property
    def ab(self) -> dict[str, Any]:
        """An A/B worker's job (its id, its side, its round); empty for a plain run."""
        return self.doc.get("ab") or {}

    @property
    def ab_id(self) -> str | None:
        return self.ab.get("id")

    @property
    def ab_side(self) -> str | None:
        """ "baseline" or "candidate"."""
        return self.ab.get("side")

    @property
    def shard(self) -> str | None:
        """``K/N`` of ``harness run --shard``."""
        return self.doc.get("shard")

    @property
    def distribution(self) -> dict[str, Any]:
        """How a data-parallel cell was spread (its engine, the processes on other hosts)."""
        return self.doc.get("distribution") or {}

    @property
    def environment(self) -> dict[str, Any]:
        return self.doc.get("environment") or {}

    @property
    def git(self) -> dict[str, Any]:
        """The commit measured (commit, date, dirty), where the harness found one."""
        return self.environment.get("git") or {}

    @property
    def variables_on(self) -> str | None:
        """The device the model's variables were placed on."""
        return (self.doc.get("device") or {}).get("variables_on")

    @property
    def backend_settings(self) -> dict[str, Any] | None:
        """What the backend really ran (jit, precision, thread pools), as the worker read it."""
        return self.doc.get("backend_settings")

    @property
    def train(self) -> dict[str, Any]:
        return self.doc.get("train") or {}

    def rate(self, field: str) -> Rate | None:
        """The per-repeat rate ``field`` of :data:`RATE_FIELDS`; None where not recorded."""
        found = self.train.get(field)
        return Rate(found) if found else None

    @property
    def throughput(self) -> Rate | None:
        """Samples over each repeat's measured epochs / their wall time."""
        return self.rate(THROUGHPUT)

    @property
    def typical(self) -> Rate | None:
        """Batch size / the median timed chunk's time per step."""
        return self.rate(TYPICAL)

    @property
    def workload_id(self) -> str | None:
        """The digest of what the cell computed (harness/workload.py); None before workloads
        were recorded."""
        return (self.doc.get("workload") or {}).get("id")
