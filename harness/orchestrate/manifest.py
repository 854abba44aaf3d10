"""A run's manifest (``run.json``, ``ab.json`` of an A/B run, ``join.json`` of a joining
host): the kinds of run folder, what a run planned, and the checks that let ``--resume``
finish it without mixing in another experiment.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from .. import scenario
from ..errors import UsageError
from ..results import make_dir, name_problem
from ..scenario import BEFORE
from .jobs import Job, new_run_id


@dataclasses.dataclass(frozen=True)
class Kind:
    """A kind of run folder: its name's prefix, what a message calls it, its manifest and
    the manifest's key for the folder's name."""

    prefix: str
    what: str
    manifest: str
    id_key: str = "run_id"


RUN = Kind("", "run folder", "run.json")
AB = Kind("ab-", "A/B run folder", "ab.json", id_key="ab_id")
JOIN = Kind("join-", "join folder", "join.json")


def run_dir_for(
    resume: str | Path | None,
    out: str | Path,
    backends: list[str],
    kind: Kind = RUN,
    suffix: str = "",
    make: bool = True,
    resumable: bool = True,
) -> Path:
    """The folder of a new run under ``--out`` (created now unless ``make`` is false, so an
    unusable ``--out`` is one line before any cell runs), or the one ``--resume`` names (it
    must hold the run's manifest: resuming into any other folder would write results
    there). ``resumable``: the command has a ``--resume`` (calibrate's runs have none)."""
    if resume:
        run_dir = Path(resume)
        if not (run_dir / kind.manifest).is_file():
            raise UsageError(f"--resume: {run_dir} is not a {kind.what} (no {kind.manifest})")
        # The run id its results record is the folder's name: `--resume .` names it too.
        if run_dir.name in ("", ".", ".."):
            run_dir = run_dir.resolve()
        problem = name_problem(run_dir.name)
        if problem:  # a reader would refuse the results
            raise UsageError(f"--resume: {run_dir}: the run folder's name {problem}")
        return run_dir
    run_dir = Path(out) / (kind.prefix + new_run_id(backends) + suffix)
    if run_dir.exists():
        again = "wait a second or use --resume" if resumable else "wait a second"
        raise UsageError(f"{run_dir} already exists; {again}")
    if make:
        make_dir(run_dir, f"--out {out}")
    return run_dir


def plan_record(jobs: list[Job]) -> dict[str, dict]:
    """Every cell's full settings, by its key: what a resumed run must still plan."""
    return {j.key: j.cell.to_json() for j in jobs}


def check_resume(
    started: dict, run_dir: Path, backends: list[str], jobs: list[Job], same: dict | None = None
) -> None:
    """Refuses to finish a run with other scenarios, settings or backends than it started
    with: one run would silently mix two experiments. ``same``: more of the manifest's
    entries that must hold the values given (the options of ``harness ab``)."""
    for k, v in (same or {}).items():
        if started.get(k) != v:
            raise UsageError(
                f"--resume: {run_dir} was started with {k} = {started.get(k)}, not {v}; "
                "resume with the options it was started with"
            )
    again = "resume with the scenario files, --backend and --shard it was started with"
    if started.get("backends") != backends:
        raise UsageError(
            f"--resume: {run_dir} was started with backends {started.get('backends')}, not "
            f"{backends}; {again}"
        )
    then = started.get("settings")  # older manifests list only the cells, or nothing
    keys = list(then) if isinstance(then, dict) else started.get("cells")
    if keys is None:
        return
    if (
        not isinstance(keys, list)
        or not all(isinstance(k, str) for k in keys)
        or not all(isinstance(v, dict) for v in (then or {}).values())
    ):
        raise UsageError(f"--resume: {run_dir}: its manifest's cells are not readable")
    now = plan_record(jobs)
    gone = [k for k in keys if k not in now]
    new = [k for k in now if k not in keys]
    if gone or new:
        listed = "; ".join(
            f"{what}: {', '.join(ks[:3])}{' ...' if len(ks) > 3 else ''}"
            for what, ks in (("only in the run", gone), ("only in the scenarios given now", new))
            if ks
        )
        raise UsageError(f"--resume: {run_dir} plans other cells ({listed}); {again}")
    # A setting added to the harness after the run started reads as its default there, or as
    # the run ran it (BEFORE) where the default came with a change of behaviour.
    # In run.json's own form (a loss as a table, tuples as lists), as every cell holds them.
    defaults = json.loads(json.dumps(scenario.Cell(scenario="", id="").to_json()))
    for always in ("scenario", "id", "optimizer", "backends"):  # in every manifest
        del defaults[always]
    defaults.update(BEFORE)
    for key, settings in (then if isinstance(then, dict) else {}).items():
        was = {**defaults, **settings}
        is_ = json.loads(json.dumps(now[key]))  # as run.json holds it: tuples become lists
        changed = [f for f in sorted(set(was) | set(is_)) if was.get(f) != is_.get(f)]
        if changed:
            f = changed[0]
            raise UsageError(
                f"--resume: {run_dir} was started with {key} {f} = "
                f"{json.dumps(was.get(f))}, now {json.dumps(is_.get(f))}; {again}"
            )
