"""The portability matrix: a model saved in .keras under one backend, loaded under another.

``harness portability RESULTS`` takes every ok result whose saved model and reference
predictions are still on disk, and for each installed backend other than the one that saved
it, starts a fresh process under that backend which loads the file, predicts on the same test
inputs and compares with the predictions the saving backend made. One small JSON file per
(model, target backend) lands in ``RESULTS/portability/``; the reports read them from there.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .. import backends, devices, results
from ..backends import resolve_backends
from ..errors import UsageError
from ..lifeline import run_module
from ..results import PORTABILITY_SCHEMA, load_results, reference_paths


def model_path(doc: dict) -> Path | None:
    """The result's saved .keras file: as recorded, else beside the result in its run folder
    (run folders can be moved or copied; recorded paths may be relative to another cwd)."""
    recorded = ((doc.get("save") or {}).get("keras") or {}).get("path")
    if not recorded:
        return None
    if Path(recorded).exists():
        return Path(recorded)
    beside = Path(doc["_path"]).parent.parent / "models" / Path(recorded).name
    return beside if beside.exists() else None


def candidates(docs: list[dict]) -> list[dict]:
    """Results whose .keras file and reference predictions are still on disk."""
    out = []
    for d in docs:
        path = model_path(d) if d["status"] == "ok" else None
        if path and reference_paths(path).exists():
            out.append(d)
    return out


def run(
    docs: list[dict],
    targets: list[str],
    out_dir: Path,
    *,
    pythons: dict[str, str] | None = None,
    timeout: float = 900,
) -> list[dict]:
    """Checks every candidate model under every target backend but its own.

    One process per target backend checks all of its models: importing a backend costs
    seconds, a check milliseconds. ``pythons`` names the interpreter of a target installed in
    another environment (default: this interpreter).
    """
    import tempfile

    written = []
    for target in targets:
        todo = [d for d in candidates(docs) if d["backend"] != target]
        if not todo:
            continue
        tasks = [{"result": d["_path"], "model": str(model_path(d))} for d in todo]
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(tasks, f)
        started = time.monotonic()
        answers: list[dict | None] = [None] * len(tasks)
        try:
            lines, failure = run_module(
                "harness.worker.portability", [f.name], devices.device_env("cpu", target),
                timeout=timeout, python=(pythons or {}).get(target),
            )  # fmt: skip
        finally:
            Path(f.name).unlink(missing_ok=True)
        for item in lines:
            index = item.pop("index", None)  # the ready line has none
            if isinstance(index, int) and 0 <= index < len(tasks):
                answers[index] = item
        if failure and not any(item.get("ready") for item in lines):
            # The interpreter could not even import keras (not there, an environment not
            # installed yet): that says nothing about the models, whose cells stay unchecked.
            # A child that crashes on a model, once ready, fails the models it did not answer.
            where = (pythons or {}).get(target) or sys.executable
            print(f"note: {target} not checked: {where} could not run the checks ({failure})",
                  file=sys.stderr)  # fmt: skip
            continue
        seconds = round(time.monotonic() - started, 3)
        for doc, task, check in zip(todo, tasks, answers, strict=True):
            check = check or {"status": "failed", "reason": failure or "no answer"}
            check.setdefault("target_versions", None)  # the checking interpreter says
            check.update(
                schema=PORTABILITY_SCHEMA,
                schema_version=1,
                scenario=doc["scenario"]["name"],
                cell=doc["cell"]["id"],
                source_backend=doc["backend"],
                source_run=doc.get("run_id"),
                target_backend=target,
                model=task["model"],
                batch_seconds=seconds,
                checked=results.utc_now(),
            )
            name = f"{check['scenario']}--{check['cell']}--{doc['backend']}--to-{target}.json"
            results.write_json_atomic(out_dir / name, check, overwrite=True)
            written.append(check)
    return written


def main(args: argparse.Namespace) -> int:
    """Loads every saved .keras model under the other backends: those installed here, and
    those of other environments' interpreters (``--python BACKEND=PATH``)."""
    root = Path(args.results)
    if not root.is_dir():
        raise UsageError(f"{root}: not a results folder")
    pythons = _pythons(args.python)
    available = [b for b in backends.NAMES if b in pythons or b in backends.installed_backends()]
    if not available:
        raise UsageError(
            "no backend to load models under: none is installed here, and no --python "
            "interpreter was found"
        )
    chosen = resolve_backends(args.backend, available) if args.backend else available
    targets = [b for b in available if b in chosen or b in pythons]  # --python adds to them
    docs, _ = load_results([root], runs_only=True)  # calibrations save models too
    todo = [(d, t) for d in candidates(docs) for t in targets if t != d["backend"]]
    print(
        f"portability: {len(todo)} load(s) of saved models under {', '.join(targets)}",
        file=sys.stderr,
    )
    checks = run(docs, targets, root / "portability", pythons=pythons)
    for c in checks:
        line = f"  {c['scenario']}/{c['cell']}: {c['source_backend']} -> {c['target_backend']}: {c['status']}"
        if c["status"] == "ok":
            line += f" (max diff {c['max_abs_diff']:.1e})"
        else:
            line += f": {c.get('reason')}"
            bare = c.get("compile_false")
            if bare:
                line += f"; with compile=False: {bare['status']}"
        print(line, file=sys.stderr)
    return 1 if any(c["status"] != "ok" for c in checks) else 0


def _pythons(given: list[str]) -> dict[str, str]:
    """``--python BACKEND=PATH`` values: the interpreters that exist, by backend. One not there
    yet (an environment that has not run) is noted and left out: its cells say not checked."""
    found: dict[str, str] = {}
    named: set[str] = set()
    for item in given:
        name, sep, path = item.partition("=")
        backend = backends.ALIASES.get(name.strip())
        if not sep or backend is None:
            raise UsageError(
                f"--python {item}: expected BACKEND=PATH with BACKEND one of "
                f"{', '.join(backends.NAMES)}"
            )
        if backend in named:
            raise UsageError(f"--python {item}: {backend} is named twice")
        named.add(backend)
        if Path(path).is_file():
            found[backend] = str(Path(path).absolute())
        else:
            print(
                f"note: --python {item}: no such interpreter (yet); {backend} not checked",
                file=sys.stderr,
            )
    return found
