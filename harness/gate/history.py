"""Throughput across commits: ``harness history`` and the gate's ``--baseline-history``.

A history is every plain run stored under some folders (A/B jobs and calibrations left out).
Its series are per machine (the gate's fingerprint: hardware and versions) and per cell: two
machines are never one line. A series is ordered by the commit's date (recorded by the harness
since it learned to, else the run's start), one point per run: its median samples/s and the
spread of its repeats. Step detection (step_detect.py) marks where a series moved for good.
The page and the table of ``harness history`` are drawn by report/history.py.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import hashlib
import json
from typing import Any

from .. import workload
from ..results import Result, cell_key
from . import step_detect
from .verdicts import fingerprint


@dataclasses.dataclass(frozen=True)
class Point:
    commit: str
    date: str
    run_id: str
    median: float
    mad: float
    doc: dict = dataclasses.field(repr=False, compare=False)


@dataclasses.dataclass(frozen=True)
class Break:
    """Where the work itself changed (harness/workload.py): a new segment, never a step."""

    index: int  # the first run of the new workload
    label: str  # "workload changed: batch_size: 32 -> 64"


@dataclasses.dataclass(frozen=True)  # frozen, with a cached property: __dict__ holds it
class Series:
    machine: str  # a short hash of the fingerprint
    machine_label: str
    key: str  # scenario/cell--backend
    points: tuple[Point, ...]

    @functools.cached_property
    def breaks(self) -> list[Break]:
        """Each run whose workload differs from the run before it, or, across runs recorded
        before workloads were (compared on their settings alone), from the last run since the
        previous break that recorded its whole workload."""
        out: list[Break] = []
        full = None  # the last run since the last break with a whole record
        for i, point in enumerate(self.points):
            if i:
                diffs = workload.differences(self.points[i - 1].doc, point.doc)
                if not diffs and full is not None and full != i - 1:
                    diffs = workload.differences(self.points[full].doc, point.doc)
                if diffs:
                    out.append(Break(i, "workload changed: " + "; ".join(diffs)))
                    full = None
            if workload.of(point.doc)["id"] is not None:
                full = i
        return out

    @functools.cached_property
    def steps(self) -> list[step_detect.Step]:
        """Lasting changes of speed, found within each workload's segment apart."""
        bounds = [0] + [b.index for b in self.breaks] + [len(self.points)]
        out = []
        for lo, hi in zip(bounds, bounds[1:], strict=False):
            found = step_detect.detect([p.median for p in self.points[lo:hi]])
            out += [dataclasses.replace(st, index=st.index + lo) for st in found]
        return out


def machine_of(doc: dict[str, Any]) -> tuple[str, str]:
    """A short id of a result's machine and versions, and a label a person can read."""
    fp = fingerprint(doc)
    digest = hashlib.sha256(json.dumps(fp, sort_keys=True).encode()).hexdigest()[:8]
    gpus = ", ".join(g for g in fp["gpus"] if g) or "no GPU"
    versions = ", ".join(f"{k} {v}" for k, v in sorted((fp["backend_versions"] or {}).items()))
    return digest, f"{fp['cpu_model']} x{fp['cpu_count']}, {gpus}; keras {fp['keras']}, {versions}"


def _utc(text: str | None) -> datetime.datetime | None:
    """An ISO date as an aware UTC datetime; None where it cannot be parsed."""
    if not isinstance(text, str):
        return None
    try:
        when = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return when.astimezone(datetime.UTC)


def _when(doc: dict[str, Any]) -> tuple[datetime.datetime, datetime.datetime] | None:
    """The commit's date (else, where none was recorded, the run's start), then the run's
    start: a series' order. None where a recorded date cannot be parsed: such a run has no
    place in the order, and sorting it first would make it the oldest."""
    r = Result(doc)
    started = _utc(r.started) if r.started else None
    committed = _utc(r.git["date"]) if r.git.get("date") else started
    if committed is None or (r.started and started is None):
        return None
    return committed, started or committed


def series(docs: list[dict[str, Any]], problems: list[str] | None = None) -> list[Series]:
    """Every (machine, cell) series of ok results, points in commit order.

    Args:
        docs: results.
        problems: where to add a line for each ok result left out (an unparseable date).
    """
    found: dict[tuple[str, str], list[tuple[tuple, dict]]] = {}
    labels: dict[str, str] = {}
    for d in docs:
        r = Result(d)
        if not r.ok or r.ab:
            continue
        when = _when(d)
        if when is None:
            if problems is not None:
                problems.append(
                    f"{r.path or r.name}: its date (commit {r.git.get('date')!r}, "
                    f"started {r.started!r}) cannot be parsed; left out of the history"
                )
            continue
        machine, label = machine_of(d)
        labels[machine] = label
        found.setdefault((machine, r.name), []).append((when, d))
    out = []
    for (machine, key), dated in sorted(found.items()):
        points = []
        for (committed, _), d in sorted(dated, key=lambda pair: pair[0]):
            r = Result(d)
            points.append(
                Point(
                    commit=(r.git.get("commit") or "unknown")[:10],
                    date=committed.isoformat(),
                    run_id=r.run_id or "?",
                    median=r.throughput.median,
                    mad=r.throughput.mad or 0.0,
                    doc=d,
                )
            )
        out.append(Series(machine, labels[machine], key, tuple(points)))
    return out


def last_runs(
    by_cell: dict[tuple[str, str], Series], current: dict[str, Any], window: int
) -> list[dict]:
    """The results of the last ``window`` runs of ``current``'s cell on its machine that did
    the same work, from the series of a history by (machine, cell). Where none did, the last
    runs of the newest workload: the gate then names the change of work."""
    found = by_cell.get((machine_of(current)[0], cell_key(current)))
    if found is None and not Result(current).ok:
        # A cell that did not run ok may record no device, nor (stopped before its worker
        # started) the versions: the series of the same cell on the same hardware, with every
        # version it did record, is its baseline, so that it is "lost", never "not compared".
        known = {k: v for k, v in fingerprint(current).items() if k != "device" and v}
        found = next(
            (
                s
                for (_, key), s in sorted(by_cell.items())
                if key == cell_key(current)
                and all(fingerprint(s.points[-1].doc).get(k) == v for k, v in known.items())
            ),
            None,
        )
    if not found:
        return []
    same = [p.doc for p in found.points if not workload.differences(p.doc, current)]
    if same:
        return same[-window:]
    newest = found.breaks[-1].index if found.breaks else 0
    return [p.doc for p in found.points[newest:]][-window:]
