"""``python -m harness run|compare|validate|schema|env|monitor``: thin argparse over plain functions.

A user error is one line on stderr and exit code 2, never a traceback. Nothing here imports
keras or a backend: those live only in the worker process.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

from . import compare, report, results, runner, scenario

DEFAULT_RESULTS = Path("results")
CONFIDENCE_HELP = "of the rank test, from 0.5 to below 1, e.g. 0.95 (the default) or 99%%"
RETRY_HELP = "with --resume, also run again the cells that finished failed"
METRIC_HELP = (
    "what the gate ranks: throughput (samples/s over each repeat's measured epochs, the "
    "default) or typical (batch size / the median 10-step chunk's time per step: a burst of "
    "other work on a shared runner slows some chunks, not the median one; blind to slowdowns "
    "that hit only some steps)"
)


def _load_scenarios(paths: list[Path]) -> list[scenario.Scenario]:
    loaded = [scenario.load(p) for p in paths]  # every file validated before anything runs
    names: dict[str, str] = {}
    for sc in loaded:
        if sc.name in names:
            raise scenario.ScenarioError(
                sc.path, "name", f"{sc.name!r} is also the name of {names[sc.name]}"
            )
        names[sc.name] = sc.path
    return loaded


def _run_dir(
    args: argparse.Namespace,
    backends: list[str],
    prefix: str = "",
    what: str = "run folder",
    manifest: str = "run.json",
) -> Path:
    """The folder of a new run under ``--out`` (created now, so an unusable ``--out`` is one
    line before any cell runs), or the one ``--resume`` names (it must hold the run's
    manifest: resuming into any other folder would write results there)."""
    if args.resume:
        run_dir = Path(args.resume)
        if not (run_dir / manifest).is_file():
            raise runner.UsageError(f"--resume: {run_dir} is not a {what} (no {manifest})")
        return run_dir
    run_dir = Path(args.out) / (prefix + runner.new_run_id(backends))
    if run_dir.exists():
        raise runner.UsageError(f"{run_dir} already exists; wait a second or use --resume")
    _make_dir(run_dir, f"--out {args.out}")
    return run_dir


def _make_dir(path: Path, what: str) -> Path:
    """Creates a folder the harness will write to, or one line naming it (exit 2)."""
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise runner.UsageError(f"{what}: cannot create {path} ({exc.strerror})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise runner.UsageError(f"{what}: {path} is not writable")
    return Path(path)


def _write_text(path: Path, text: str, what: str) -> None:
    """Writes a report, or one line naming the path (exit 2)."""
    _make_dir(Path(path).parent, what)
    try:
        Path(path).write_text(text)
    except OSError as exc:
        raise runner.UsageError(f"{what}: cannot write {path} ({exc.strerror})") from None


def _plan_record(jobs: list[runner.Job]) -> dict[str, dict]:
    """Every cell's full settings, by its key: what a resumed run must still plan."""
    return {
        f"{j.subdir + '/' if j.subdir else ''}{j.scenario.name}/{j.cell.id}--{j.backend}": (
            j.cell.to_json()
        )
        for j in jobs
    }


def _read_manifest(path: Path, what: str = "--resume") -> dict:
    """A run's run.json or ab.json, or one line naming it (exit 2)."""
    try:
        started = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise runner.UsageError(f"{what}: {path}: unreadable ({exc})") from None
    if not isinstance(started, dict):
        raise runner.UsageError(f"{what}: {path}: not a run manifest")
    return started


def _check_resume(
    started: dict, run_dir: Path, backends: list[str], jobs: list[runner.Job]
) -> None:
    """Refuses to finish a run with other scenarios, settings or backends than it started
    with: one run would silently mix two experiments."""
    again = "resume with the scenario files and --backend it was started with"
    if started.get("backends") != backends:
        raise runner.UsageError(
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
        raise runner.UsageError(f"--resume: {run_dir}: its manifest's cells are not readable")
    now = _plan_record(jobs)
    gone = [k for k in keys if k not in now]
    new = [k for k in now if k not in keys]
    if gone or new:
        listed = "; ".join(
            f"{what}: {', '.join(ks[:3])}{' ...' if len(ks) > 3 else ''}"
            for what, ks in (("only in the run", gone), ("only in the scenarios given now", new))
            if ks
        )
        raise runner.UsageError(f"--resume: {run_dir} plans other cells ({listed}); {again}")
    # A setting added to the harness after the run started reads as its default there.
    defaults = {
        f.name: f.default
        for f in dataclasses.fields(scenario.Cell)
        if f.default is not dataclasses.MISSING and f.name not in ("optimizer", "backends")
    }
    for key, settings in (then if isinstance(then, dict) else {}).items():
        was = {**defaults, **settings}
        is_ = json.loads(json.dumps(now[key]))  # as run.json holds it: tuples become lists
        changed = [f for f in sorted(set(was) | set(is_)) if was.get(f) != is_.get(f)]
        if changed:
            f = changed[0]
            raise runner.UsageError(
                f"--resume: {run_dir} was started with {key} {f} = "
                f"{json.dumps(was.get(f))}, now {json.dumps(is_.get(f))}; {again}"
            )


def _load_pair(current: list[Path], baseline: list[Path]) -> tuple[list[dict], list[dict]]:
    """Every result under both sides, unreadable files refused (one line, exit 2)."""
    cur, bad_cur = report.load_results(current, latest=False)
    base, bad_base = report.load_results(baseline, latest=False)
    if bad_cur or bad_base:
        raise results.ResultError((bad_cur + bad_base)[0])
    return cur, base


def cmd_run(args: argparse.Namespace) -> int:
    scenarios = _load_scenarios(args.scenarios)
    backends = runner.resolve_backends(args.backend)
    jobs, notes = runner.plan(scenarios, backends)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    if not jobs:
        raise runner.UsageError("no cells to run for backend(s) " + ", ".join(backends))
    if args.report and Path(args.report).is_dir():
        raise runner.UsageError(f"--report {args.report}: a folder, not a file")
    if args.resume and (Path(args.resume) / "run.json").is_file():
        manifest = Path(args.resume) / "run.json"
        _check_resume(_read_manifest(manifest), manifest.parent, backends, jobs)
    if args.report:  # written after the cells: an unusable path must fail before them
        _make_dir(Path(args.report).parent, f"--report {args.report}")
    run_dir = _run_dir(args, backends)
    env = results.environment()
    manifest = run_dir / "run.json"
    settings = _plan_record(jobs)
    if not manifest.exists():
        results.write_json_atomic(
            manifest,
            {
                "run_id": run_dir.name,
                "argv": sys.argv,
                "backends": backends,
                "scenarios": [sc.path for sc in scenarios],
                "cells": list(settings),  # the keys alone, as older manifests have them
                "settings": settings,
                "environment": env,
            },
        )
    print(
        f"run {run_dir.name}: {len(jobs)} cell(s) under {', '.join(backends)} -> {run_dir}",
        file=sys.stderr,
    )
    run = runner.Runner(
        jobs, run_dir, verbose=args.keras_verbose, environment=env, retry_failed=args.retry_failed
    )
    docs = run.run()
    print(report.render_markdown(docs))
    if args.report:
        all_docs, problems = report.load_results([Path(args.out)])
        text = report.render_markdown(all_docs, problems)
        _write_text(Path(args.report), text, f"--report {args.report}")
        print(f"\nreport over every run under {args.out}: {args.report}\n", file=sys.stderr)
        print(text)
    if run.interrupted:
        print(f"interrupted; finish with: harness run ... --resume {run_dir}", file=sys.stderr)
        return 130
    failed = [d for d in docs if d["status"] == "failed"]
    if failed:
        print(
            f"{len(failed)} cell(s) failed; see the reasons above and {run_dir}/logs",
            file=sys.stderr,
        )
        return 1
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    for p in args.results:
        if not Path(p).exists():
            raise runner.UsageError(f"{p}: no such file or folder")
    docs, problems = report.load_results(args.results, latest=not args.all)
    if problems:  # a report that silently drops a file would mislead: refuse, name the file
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise results.ResultError(problems[0] + more)
    if not docs:  # an empty report that exits 0 would pass a CI step that measured nothing
        raise runner.UsageError(f"no result files under {', '.join(map(str, args.results))}")
    if args.format == "md":
        from . import portability

        text = report.render_markdown(docs)
        matrix = portability.matrix_markdown(portability.load(args.results))
        if matrix:
            text += "\n" + matrix + "\n"
    elif args.format == "html":
        from . import portability
        from .html import render_html

        text = render_html(docs, portability.load(args.results))
    else:
        text = report.RENDERERS[args.format](docs)
    if args.out:
        _write_text(Path(args.out), text, f"--out {args.out}")
        print(f"wrote {args.out}", file=sys.stderr)
    if not args.out or args.tee:
        sys.stdout.write(text)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """The regression gate: 0 nothing regressed, 1 something did, 2 unusable input."""
    for p in [*args.current, *args.baseline]:
        if not Path(p).exists():
            raise runner.UsageError(f"{p}: no such file or folder")
    limit = compare.parse_limit(args.max_slowdown)
    confidence = compare.parse_confidence(args.confidence)
    current, baseline = _load_pair(args.current, args.baseline)
    return _gate(
        current, baseline, limit, confidence, args.allow_mismatch, args.format, args.metric,
        planned=_planned(args.current),
    )  # fmt: skip


def _planned(paths: list[Path]) -> set[str]:
    """The cells the run manifests (run.json) under these paths planned: one of them without
    a result is missing, not silently absent (a run killed before it)."""
    out: set[str] = set()
    for p in paths:
        for manifest in sorted(Path(p).rglob("run.json")) if Path(p).is_dir() else []:
            cells = _read_manifest(manifest, "check").get("cells")
            if not isinstance(cells, list) or not all(isinstance(c, str) for c in cells):
                raise runner.UsageError(f"{manifest}: 'cells' is not a list of cell names")
            out.update(cells)
    return out


def _gate(
    current, baseline, limit, confidence, allow_mismatch, fmt, metric, planned=frozenset()
) -> int:
    verdicts, refusals = compare.check(
        current, baseline, max_slowdown=limit, confidence=confidence,
        allow_mismatch=allow_mismatch, metric=metric, planned=planned,
    )  # fmt: skip
    for refusal in refusals:
        print(f"harness: {refusal}", file=sys.stderr)
    if refusals:
        return 2
    if all(v.status == "not compared" for v in verdicts):  # a gate that compared nothing
        raise runner.UsageError(
            "no cell is present (and ok) in both the current run and the baseline"
        )
    sys.stdout.write(compare.render_check(verdicts, markdown=fmt == "md", confidence=confidence))
    counts = {s: sum(v.status == s for v in verdicts) for s in compare.STATUSES}
    print("\n" + ", ".join(f"{n} {s}" for s, n in counts.items() if n), file=sys.stderr)
    if compare.is_interleaved(current + baseline):
        sides = compare.values_by_side(current + baseline, metric)
        for v in verdicts:
            if v.status == "noisy" and len(sides.get(v.key, {})) == 2:
                hint = _rounds_hint(v, list(sides[v.key].values()), limit, confidence)
                if hint:
                    print(hint, file=sys.stderr)
    elif compare.baseline_runs(baseline) < 2:
        print(
            "note: the baseline holds one run, so the gate cannot tell a slower moment of this "
            "machine from slower code; keep several runs (harness baseline RUN --add) or measure "
            "both sides interleaved (harness ab)",
            file=sys.stderr,
        )
    return 1 if compare.gate_fails(verdicts) else 0


def _rounds_hint(v: compare.Verdict, sides: list[list[float]], limit: float, confidence: float):
    """For a noisy interleaved cell: how many rounds would settle it, if its slowdown is real."""
    spread = compare.log_spread(sides)
    seen = 1 - v.ratio
    n = compare.rounds_needed(spread, seen, limit, confidence)
    if n is None:
        return None
    return (
        f"{v.key}: workers of one side spread by {spread:.1%}; if the measured {-seen:+.1%} is "
        f"real, about {n} rounds would show it past -{limit:.0%} 4 times in 5 (--rounds {n})"
    )


def cmd_baseline(args: argparse.Namespace) -> int:
    """Stores a run's ok results as (part of) the baseline for this machine and versions.

    Layout: ``INTO/<machine>/<run_id>/<scenario>/<file>``, so a baseline can hold several runs
    (``--add``), from whose spread the gate learns this machine's run-to-run noise.
    """
    import hashlib
    import shutil

    docs, problems = report.load_results([args.run], latest=False)
    if problems:
        raise results.ResultError(problems[0])
    if any(d.get("ab") for d in docs):
        raise runner.UsageError(
            f"{args.run}: an A/B run holds its own baseline side; store a plain run "
            "(harness run) as a baseline"
        )
    ok = [d for d in docs if d["status"] == "ok"]
    if not ok:
        raise runner.UsageError(f"{args.run}: no ok results to keep as a baseline")
    plan = []
    for doc in ok:
        fp = json.dumps(compare.fingerprint(doc), sort_keys=True)
        machine = Path(args.into) / hashlib.sha256(fp.encode()).hexdigest()[:12]
        src = Path(doc["_path"])
        run_name = doc.get("run_id") or src.parent.parent.name
        scenario_name = (doc.get("scenario") or {}).get("name") or src.parent.name
        plan.append((src, machine, machine / run_name / scenario_name / src.name))
    machines = sorted({m for _, m, _ in plan})
    if args.replace:
        for m in machines:
            shutil.rmtree(m, ignore_errors=True)
    elif not args.add:
        held = [m for m in machines if m.exists()]
        if held:
            raise runner.UsageError(
                f"{held[0]} holds a baseline; pass --add to add this run to it, or --replace"
            )
    for _, _, dest in plan:
        if dest.exists():
            raise runner.UsageError(f"{dest} exists: this run is already in the baseline")
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


def cmd_calibrate(args: argparse.Namespace) -> int:
    """Runs a scenario several times and says how small a slowdown the gate can catch here.

    Separate runs (the default) calibrate ``harness check`` against a stored baseline;
    ``--interleaved`` runs A/A jobs of ``harness ab`` and calibrates that.
    """
    scenarios = _load_scenarios([args.scenario])
    backends = runner.resolve_backends(args.backend)
    jobs, _ = runner.plan(scenarios, backends)
    if not jobs:
        raise runner.UsageError("no cells to run")
    if args.interleaved and args.rounds < 2:
        raise runner.UsageError("--rounds: at least 2 (the rank test needs several per side)")
    confidence = compare.parse_confidence(args.confidence)
    _make_dir(Path(args.out), f"--out {args.out}")
    env = results.environment()
    # per cell: the A/A comparisons, each (values of one measurement, values of the other)
    per_cell: dict[str, list[list[float]]] = {}
    pairs: dict[str, list[tuple[list[float], list[float]]]] = {}
    if args.interleaved:
        from . import ab

        pythons = dict.fromkeys(ab.SIDES, sys.executable)
    for k in range(args.runs):
        if args.interleaved:
            run_dir = Path(args.out) / f"ab-{runner.new_run_id(backends)}-calibrate{k + 1}"
            print(f"calibration A/A job {k + 1}/{args.runs} -> {run_dir}", file=sys.stderr)
            sides = {side: scenarios for side in ab.SIDES}
            plan = ab.plan(run_dir.name, sides, pythons, backends, args.rounds)
            run = runner.Runner(plan, run_dir, environment=env)
        else:
            run_dir = Path(args.out) / f"{runner.new_run_id(backends)}-calibrate{k + 1}"
            print(f"calibration run {k + 1}/{args.runs} -> {run_dir}", file=sys.stderr)
            run = runner.Runner(jobs, run_dir, environment=env)
        run.run()
        if run.interrupted:  # Ctrl-C ends the calibration, not just this run of it
            print(f"interrupted; calibration runs so far are in {args.out}", file=sys.stderr)
            return 130
        if args.interleaved:
            docs, _ = report.load_results([run_dir], latest=False)
            values = compare.values_by_side(docs, args.metric)
            for key, by_side in values.items():
                if len(by_side) == 2:
                    a, b = by_side["candidate"], by_side["baseline"]
                    pairs.setdefault(key, []).extend([(a, b), (b, a)])
        else:
            docs, _ = report.load_results([run_dir])
            for d in docs:
                if d["status"] == "ok" and compare.has_metric(d, args.metric):
                    per_cell.setdefault(compare.cell_key(d), []).append(
                        d["train"][compare.METRICS[args.metric]]["values"]
                    )
    unit = "rounds" if args.interleaved else "repeats"
    cal = None
    print(f"\n{'cell':<40} {'noise floor':>11} {'--max-slowdown':>14} {'detects':>8}")
    for key in sorted(set(per_cell) | set(pairs)):
        if args.interleaved:
            cal = compare.calibrate([], pairs=pairs[key], confidence=confidence)
        elif len(per_cell[key]) < 2:
            print(f"{key:<40} fewer than two ok runs")
            continue
        else:
            cal = compare.calibrate(per_cell[key], confidence=confidence)
        limit = "-" if cal["max_slowdown"] is None else f"{cal['max_slowdown']:.1%}"
        detects = "-" if cal["detectable"] is None else f"{cal['detectable']:.1%}"
        print(f"{key:<40} {cal['noise_floor']:>11.1%} {limit:>14} {detects:>8}")
        if cal["min_p"] >= cal["alpha"]:
            print(f"  with {cal['repeats']} {unit} the rank test cannot reach p < {cal['alpha']:g}: "
                  f"raise {unit} to at least 4")  # fmt: skip
        if args.interleaved:
            n10, n5 = (
                compare.rounds_needed(cal["spread"], d, d / 2, confidence) for d in (0.1, 0.05)
            )
            print(f"  workers spread by {cal['spread']:.1%}: about {n10} rounds catch a 10% "
                  f"slowdown 4 times in 5 with --max-slowdown 5%, {n5} a 5% one with "
                  "--max-slowdown 2.5%")  # fmt: skip
    if cal is None:
        return 1
    what = "A/A jobs" if args.interleaved else "runs"
    print(f"\nnoise floor: largest difference between two {what} of the same code; "
          "--max-slowdown: the smallest limit with no false alarm among them; detects: the "
          f"smallest real slowdown the gate then catches for every pair ({cal['pairs']} pairs, "
          f"{cal['repeats']} {unit} each).")  # fmt: skip
    return 0


def cmd_ab(args: argparse.Namespace) -> int:
    """Baseline and candidate interleaved, one worker per round and side, then the gate."""
    import shutil

    from . import ab

    if args.rounds < 4 or args.rounds % 2:
        raise runner.UsageError(
            f"--rounds: an even number, at least 4, got {args.rounds} (ABBA pairs; with fewer "
            "than 4 per side no rank test can reach 95%)"
        )
    pythons: dict[str, str] = {}  # per side, the interpreter (default: this one)
    for side, py in (("baseline", args.baseline_python), ("candidate", args.candidate_python)):
        found = shutil.which(py) if py else sys.executable
        if not found:
            raise runner.UsageError(f"--{side}-python: {py}: no such interpreter")
        pythons[side] = str(Path(found).absolute())
    limit = compare.parse_limit(args.max_slowdown)
    confidence = compare.parse_confidence(args.confidence)
    loaded = _load_scenarios(args.scenarios)
    sides = {
        "baseline": [scenario.override(sc, args.baseline_set, "--baseline-set") for sc in loaded],
        "candidate": [
            scenario.override(sc, args.candidate_set, "--candidate-set") for sc in loaded
        ],
    }
    backends = runner.resolve_backends(args.backend)
    run_dir = _run_dir(args, backends, prefix="ab-", what="A/B run folder", manifest="ab.json")
    jobs = ab.plan(run_dir.name, sides, pythons, backends, args.rounds)
    if not jobs:
        raise runner.UsageError("no cells to run for backend(s) " + ", ".join(backends))
    env = results.environment()
    plan = {
        "rounds": args.rounds,
        "backends": backends,
        "scenarios": [sc.path for sc in loaded],
        "python": pythons,
        "set": {"baseline": args.baseline_set, "candidate": args.candidate_set},
    }
    manifest = run_dir / "ab.json"
    if manifest.exists():  # --resume: the rest of the job must be the same experiment
        started = _read_manifest(manifest)
        for k, v in plan.items():
            if started.get(k) != v:
                raise runner.UsageError(
                    f"--resume: {run_dir} was started with {k} = {started.get(k)}, not {v}; "
                    "resume with the options it was started with"
                )
        _check_resume(started, run_dir, backends, jobs)  # and the files' settings
    else:
        run_dir.mkdir(parents=True, exist_ok=True)
        results.write_json_atomic(
            manifest,
            {
                "ab_id": run_dir.name,
                "argv": sys.argv,
                **plan,
                "settings": _plan_record(jobs),
                "order": "ABBA: each round one worker process per side; its median is one value",
                "environment": env,
            },
        )
    print(
        f"ab {run_dir.name}: {args.rounds} round(s) x 2 sides x "
        f"{len(jobs) // (2 * args.rounds)} cell(s), one worker each -> {run_dir}",
        file=sys.stderr,
    )
    run = runner.Runner(
        jobs, run_dir, verbose=args.keras_verbose, environment=env, retry_failed=args.retry_failed
    )
    run.run()
    if run.interrupted:
        print(f"interrupted; finish with: harness ab ... --resume {run_dir}", file=sys.stderr)
        return 130
    current, baseline = _load_pair([run_dir / "candidate"], [run_dir / "baseline"])
    again = (
        f"harness check {run_dir / 'candidate'} --baseline {run_dir / 'baseline'} "
        f"--max-slowdown {args.max_slowdown} --confidence {confidence:g} "
        f"--metric {args.metric} --allow-mismatch"
    )
    print(f"\ncandidate vs baseline (again: {again}):", file=sys.stderr)
    # Two interpreters may hold different versions on purpose: that is the question asked.
    return _gate(current, baseline, limit, confidence, True, args.format, args.metric)


def cmd_portability(args: argparse.Namespace) -> int:
    """Loads every saved .keras model under the other installed backends."""
    from . import portability

    root = Path(args.results)
    if not root.is_dir():
        raise runner.UsageError(f"{root}: not a results folder")
    targets = runner.resolve_backends(args.backend or "all")
    docs, _ = report.load_results([root])
    todo = [(d, t) for d in portability.candidates(docs) for t in targets if t != d["backend"]]
    print(
        f"portability: {len(todo)} load(s) of saved models under {', '.join(targets)}",
        file=sys.stderr,
    )
    checks = portability.run(docs, targets, root / "portability")
    for c in checks:
        line = f"  {c['scenario']}/{c['cell']}: {c['source_backend']} -> {c['target_backend']}: {c['status']}"
        if c["status"] == "ok":
            line += f" (max diff {c['max_abs_diff']:.1e})"
        else:
            line += f": {c.get('reason')}"
        print(line, file=sys.stderr)
    return 1 if any(c["status"] != "ok" for c in checks) else 0


def cmd_validate(args: argparse.Namespace) -> int:
    for sc in _load_scenarios(args.scenarios):
        print(f"{sc.path}: ok, {len(sc.cells)} cell(s): " + ", ".join(c.id for c in sc.cells))
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    text = json.dumps(scenario.json_schema(), indent=2) + "\n"
    if args.out:
        Path(args.out).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def cmd_env(args: argparse.Namespace) -> int:
    """Prints what the harness sees; each backend is asked in its own process."""
    import subprocess

    from . import devices

    env = results.environment()
    env["backend_devices"] = {}
    for backend in devices.installed_backends():
        # No device pinning here: `env` must see every GPU the backend can.
        child_env = runner.child_env({"KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"})
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "harness.devices", backend],
                env=child_env, capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            lines = proc.stdout.strip().splitlines()
            info = json.loads(lines[-1]) if proc.returncode == 0 and lines else None
            if info is None:
                tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
                info = {"error": f"exit {proc.returncode}: {tail[0]}"}
        except subprocess.TimeoutExpired:
            info = {"error": "timed out after 120 s"}
        env["backend_devices"][backend] = info
    if args.json:
        print(json.dumps(env, indent=2))
        return 0
    gpu = env["gpu"]
    print(f"python     {env['python']} on {env['platform']}")
    print(f"cpu        {env['cpu_model']} ({env['cpu_count_logical']} logical, "
          f"{env['cpu_count_physical']} physical), {env['memory_bytes'] / 2**30:.1f} GiB")  # fmt: skip
    print(f"keras      {env['packages'].get('keras')}")
    print(
        f"nvml       {gpu['status']}" + (f", driver {gpu['driver']}" if gpu.get("driver") else "")
    )
    for g in gpu.get("gpus", []):
        print(f"gpu {g['index']}      {g['name']}, {g['fb_total'] / 2**30:.1f} GiB")
    for backend, info in env["backend_devices"].items():
        versions = ", ".join(f"{k} {v}" for k, v in (env["backends"].get(backend) or {}).items())
        if "error" in info and "devices" not in info:
            print(f"{backend:<10} {versions}: {info['error']}")
            continue
        extra = "".join(f", {k} {info[k]}" for k in ("cuda", "cudnn") if info.get(k))
        print(f"{backend:<10} {versions}{extra}; devices: {', '.join(info['devices'])}")
    if not env["backend_devices"]:
        print("backends   none installed (pip install -e '.[jax]', or use tox)")
    git = env["git"]
    print(f"git        {git['commit']}{' (dirty)' if git['dirty'] else ''}")
    return 0


def cmd_monitor(args: argparse.Namespace) -> int:
    from . import dmon

    return dmon.run(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="harness", description="Benchmark one Keras 3 model under TensorFlow, JAX and PyTorch."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run scenario files under a backend, one worker per cell")
    p.add_argument("scenarios", nargs="+", type=Path, help="scenario TOML files")
    p.add_argument(
        "--backend",
        help="tensorflow, jax, torch, a comma list, or all "
        "(default: $KERAS_BACKEND, else the only one installed)",
    )
    p.add_argument(
        "--out", default=DEFAULT_RESULTS, type=Path, help="results root (default results/)"
    )
    p.add_argument(
        "--resume", metavar="RUN_DIR", help="finish the unfinished cells of an earlier run"
    )
    p.add_argument("--retry-failed", action="store_true", help=RETRY_HELP)
    p.add_argument(
        "--report", metavar="PATH", help="also write a report over every run under --out"
    )
    p.add_argument(
        "--keras-verbose",
        action="store_true",
        help="show Keras' per-epoch output (its progress logger syncs every step)",
    )
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("compare", help="render a comparison report from result files")
    p.add_argument("results", nargs="+", type=Path, help="result files or folders")
    p.add_argument("--format", choices=[*sorted(report.RENDERERS), "html"], default="md")
    p.add_argument("--out", type=Path)
    p.add_argument("--all", action="store_true", help="every result, not only the newest per cell")
    p.add_argument("--tee", action="store_true", help="with --out, print the report too")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("check", help="regression gate: exit 1 when a cell got slower beyond noise")
    p.add_argument("current", nargs="+", type=Path, help="result files or run folders under test")
    p.add_argument("--baseline", nargs="+", type=Path, required=True)
    p.add_argument("--max-slowdown", default="5%", help="allowed slowdown, e.g. 5%% (default)")
    p.add_argument("--confidence", default="0.95", help=CONFIDENCE_HELP)
    p.add_argument("--allow-mismatch", action="store_true", help="compare across machines/versions")
    p.add_argument("--metric", choices=sorted(compare.METRICS), default="throughput",
                   help=METRIC_HELP)  # fmt: skip
    p.add_argument("--format", choices=["text", "md"], default="text")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser(
        "ab",
        help="baseline and candidate interleaved round by round, then the regression gate",
    )
    p.add_argument("scenarios", nargs="+", type=Path, help="scenario TOML files")
    p.add_argument(
        "--rounds", type=int, default=8, help="worker processes per side, even, >= 4 (8)"
    )
    p.add_argument("--backend", help="backend(s): a name, a comma-separated list, or all")
    p.add_argument("--baseline-python", help="interpreter of the baseline (default: this one)")
    p.add_argument("--candidate-python", help="interpreter of the candidate (default: this one)")
    p.add_argument("--baseline-set", action="append", default=[], metavar="KEY=VALUE",
                   help="scenario setting for the baseline side (repeatable)")  # fmt: skip
    p.add_argument("--candidate-set", action="append", default=[], metavar="KEY=VALUE",
                   help="scenario setting for the candidate, e.g. step_delay_ms=0.3")  # fmt: skip
    p.add_argument("--max-slowdown", default="5%", help="allowed slowdown, e.g. 5%% (default)")
    p.add_argument("--confidence", default="0.95", help=CONFIDENCE_HELP)
    p.add_argument("--format", choices=["text", "md"], default="text")
    p.add_argument("--out", type=Path, default=DEFAULT_RESULTS)
    p.add_argument("--metric", choices=sorted(compare.METRICS), default="throughput",
                   help=METRIC_HELP)  # fmt: skip
    p.add_argument("--resume", metavar="AB_DIR", help="finish an interrupted A/B run")
    p.add_argument("--retry-failed", action="store_true", help=RETRY_HELP)
    p.add_argument("--keras-verbose", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_ab)

    p = sub.add_parser(
        "calibrate",
        help="measure this runner's noise floor and the smallest slowdown the gate catches",
    )
    p.add_argument("scenario", type=Path)
    p.add_argument("--runs", type=int, default=3, help="runs (or A/A jobs) of the same code (3)")
    p.add_argument("--interleaved", action="store_true", help="calibrate `harness ab` instead")
    p.add_argument("--rounds", type=int, default=8, help="with --interleaved: rounds per side")
    p.add_argument("--backend")
    p.add_argument("--out", type=Path, default=DEFAULT_RESULTS)
    p.add_argument("--confidence", default="0.95", help=CONFIDENCE_HELP)
    p.add_argument("--metric", choices=sorted(compare.METRICS), default="throughput",
                   help=METRIC_HELP)  # fmt: skip
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("baseline", help="store a run as the baseline for this machine")
    p.add_argument("run", type=Path, help="a run folder (results/RUN_ID)")
    p.add_argument("--into", type=Path, default=DEFAULT_RESULTS / "baselines")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--add", action="store_true", help="add this run to the stored baseline")
    group.add_argument("--replace", action="store_true", help="start the baseline over")
    p.set_defaults(func=cmd_baseline)

    p = sub.add_parser("portability", help="load each saved .keras model under the other backends")
    p.add_argument("results", type=Path, help="results root (default layout: results/)")
    p.add_argument("--backend", help="target backends (default: all installed)")
    p.set_defaults(func=cmd_portability)

    p = sub.add_parser("validate", help="check scenario files without running them")
    p.add_argument("scenarios", nargs="+", type=Path)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("schema", help="print the JSON Schema of scenario files")
    p.add_argument("--out", type=Path)
    p.set_defaults(func=cmd_schema)

    p = sub.add_parser("env", help="what the harness sees: versions, CPU, GPU, NVML")
    p.add_argument("--json", action="store_true", help="everything, as JSON")
    p.set_defaults(func=cmd_env)

    from . import dmon  # light: psutil, and pynvml only when it runs

    p = sub.add_parser("monitor", help="nvidia-smi dmon style live utilization lines")
    dmon.build_parser(p)
    p.set_defaults(func=cmd_monitor)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (
        scenario.ScenarioError,
        results.ResultError,
        runner.UsageError,
        compare.LimitError,
    ) as exc:
        print(f"harness: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("harness: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
