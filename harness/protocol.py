"""What the orchestrator tells a worker: one `Task`, written as JSON beside the cell's log.

Both sides import this module (it imports nothing heavy), so a key is declared once: the
runner builds a `Task`, the worker reads one back with `Task.from_json`, and a key that is
misspelt or unknown on either side is an error, never a value silently dropped.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any


class TaskError(ValueError):
    """A task file the worker cannot use; ``str()`` names the file and the key."""


@dataclasses.dataclass(frozen=True)
class ScenarioRef:
    """The scenario a cell came from, as its result records it."""

    name: str
    description: str = ""
    file: str | None = None


@dataclasses.dataclass(frozen=True)
class ABRole:
    """A worker's place in an interleaved A/B run (`harness ab`)."""

    id: str
    side: str
    round: int
    python: str | None = None


@dataclasses.dataclass(frozen=True)
class Options:
    """How a worker's run departs from a plain cell (set by `harness ab`)."""

    train_only: bool = False  # train and time only: no evaluate, predict or save
    calibrate_only: bool = False  # choose the epochs for min_time; measure nothing for the gate
    epochs_from: str | None = None  # the result whose calibration chose the epochs
    ab: ABRole | None = None


@dataclasses.dataclass(frozen=True)
class Task:
    cell: dict[str, Any]  # scenario.Cell.to_json()
    backend: str
    scenario: ScenarioRef
    run_id: str | None = None
    environment: dict[str, Any] = dataclasses.field(default_factory=dict)
    artifacts_dir: str | None = None  # where saved models go (default: beside the result)
    shard: str | None = None  # "K/N" of `harness run --shard`
    processes_here: list[int] | None = None  # a multi-process cell's ids started here
    options: Options = Options()

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json()))

    @classmethod
    def from_json(cls, data: Any, where: str = "task") -> Task:
        kw = _fields(cls, data, where)
        kw["scenario"] = ScenarioRef(
            **_fields(ScenarioRef, kw.get("scenario"), f"{where}.scenario")
        )
        opts = _fields(Options, kw.get("options", {}), f"{where}.options")
        if opts.get("ab") is not None:
            opts["ab"] = ABRole(**_fields(ABRole, opts["ab"], f"{where}.options.ab"))
        kw["options"] = Options(**opts)
        try:
            return cls(**kw)
        except TypeError as exc:  # a required key missing
            raise TaskError(f"{where}: {exc}") from None

    @classmethod
    def read(cls, path: Path) -> Task:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise TaskError(f"{path}: {exc}") from None
        return cls.from_json(data, str(path))


def _fields(cls: type, data: Any, where: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise TaskError(f"{where}: expected a table, got {type(data).__name__}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise TaskError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})")
    return dict(data)
