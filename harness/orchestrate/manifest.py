"""A run's manifest (``run.json``, or ``ab.json`` of an A/B run): what it planned, and the
checks that let ``--resume`` finish it without mixing in another experiment.
"""

from __future__ import annotations

import json
from pathlib import Path

from .. import scenario
from ..errors import UsageError
from ..results import make_dir, name_problem
from ..scenario import BEFORE
from .jobs import Job, new_run_id


def run_dir_for(
    resume: str | Path | None,
    out: str | Path,
    backends: list[str],
    prefix: str = "",
    what: str = "run folder",
    manifest: str = "run.json",
    suffix: str = "",
) -> Path:
    """The folder of a new run under ``--out`` (created now, so an unusable ``--out`` is one
    line before any cell runs), or the one ``--resume`` names (it must hold the run's
    manifest: resuming into any other folder would write results there)."""
    if resume:
        run_dir = Path(resume)
        if not (run_dir / manifest).is_file():
            raise UsageError(f"--resume: {run_dir} is not a {what} (no {manifest})")
        # The run id its results record is the folder's name: `--resume .` names it too.
        if run_dir.name in ("", ".", ".."):
            run_dir = run_dir.resolve()
        problem = name_problem(run_dir.name)
        if problem:  # a reader would refuse the results
            raise UsageError(f"--resume: {run_dir}: the run folder's name {problem}")
        return run_dir
    run_dir = Path(out) / (prefix + new_run_id(backends) + suffix)
    if run_dir.exists():
        raise UsageError(f"{run_dir} already exists; wait a second or use --resume")
    make_dir(run_dir, f"--out {out}")
    return run_dir


def plan_record(jobs: list[Job]) -> dict[str, dict]:
    """Every cell's full settings, by its key: what a resumed run must still plan."""
    return {j.key: j.cell.to_json() for j in jobs}


def check_resume(started: dict, run_dir: Path, backends: list[str], jobs: list[Job]) -> None:
    """Refuses to finish a run with other scenarios, settings or backends than it started
    with: one run would silently mix two experiments."""
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
