"""``harness baseline``: keep a run's ok results as (part of) the baseline of this machine."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from ..errors import UsageError
from ..results import Result, ResultError, lies_inside, load_results
from .verdicts import fingerprint


def main(*, add, into, replace, run) -> int:
    """Stores a run's ok results as (part of) the baseline for this machine and versions.

    Layout: ``INTO/<machine>/<run_id>/<scenario>/<file>``, so a baseline can hold several runs
    (``--add``), from whose spread the gate learns this machine's run-to-run noise.
    """
    docs, problems = load_results([run], latest=False)
    if problems:
        raise ResultError(problems[0])
    if any(Result(d).ab for d in docs):
        raise UsageError(
            f"{run}: an A/B run holds its own baseline side; store a plain run "
            "(harness run) as a baseline"
        )
    ok = [d for d in docs if Result(d).ok]
    if not ok:
        raise UsageError(f"{run}: no ok results to keep as a baseline")
    plan = []
    for doc in ok:
        # The machine and its versions name the folder; a data-parallel cell's topology is
        # compared by the gate, but its cells are the same run's and stay with the others.
        machine_only = {k: v for k, v in fingerprint(doc).items() if k != "data_parallel"}
        fp = json.dumps(machine_only, sort_keys=True)
        machine = Path(into) / hashlib.sha256(fp.encode()).hexdigest()[:12]
        src = Path(Result(doc).path)
        run_name = Result(doc).run_id or src.parent.parent.name
        scenario_name = (doc.get("scenario") or {}).get("name") or src.parent.name
        dest = machine / run_name / scenario_name / src.name
        if not lies_inside(dest, into):  # the reader refuses such names: never here
            raise UsageError(
                f"{src}: the copy would go to {dest}, outside --into {into}; nothing written"
            )
        plan.append((src, machine, dest))
    machines = sorted({m for _, m, _ in plan})
    if replace:
        for m in machines:
            shutil.rmtree(m, ignore_errors=True)
    elif not add:
        held = [m for m in machines if m.exists()]
        if held:
            raise UsageError(
                f"{held[0]} holds a baseline; pass --add to add this run to it, or --replace"
            )
    for _, _, dest in plan:
        if dest.exists():
            raise UsageError(f"{dest} exists: this run is already in the baseline")
    for src, _, dest in plan:
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
    fewest = None
    for m in machines:
        runs = sorted(p.name for p in m.iterdir() if p.is_dir())
        fewest = len(runs) if fewest is None else min(fewest, len(runs))
        print(f"baseline {m}: {len(runs)} run(s): {', '.join(runs)}")
        print(f"  check a later run with: harness check results/RUN_ID --baseline {m}")
    if fewest < 3:
        print(
            "tip: add two more runs (harness baseline RUN --add) so the gate knows how far runs "
            "of the same code differ on this machine",
        )
    return 0
