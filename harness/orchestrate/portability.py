"""The portability matrix: a model saved in .keras under one backend, loaded under another.

``harness portability RESULTS`` takes every ok result whose saved model and reference
predictions are still on disk, and for each installed backend other than the one that saved
it, starts a fresh process under that backend which loads the file, predicts on the same test
inputs and compares with the predictions the saving backend made. One small JSON file per
(model, target backend) lands in ``RESULTS/portability/``; the reports read them from there.

Result files are data and may come from another machine: a model whose result names the
user's own module (an import reference, which registers its custom layers) is loaded only with
``--trust-code``, and a file that does not lie inside RESULTS (links followed) is never loaded.
Such models are recorded as not checked, with the reason.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from .. import backends, devices, results
from ..backends import resolve_backends
from ..errors import UsageError
from ..lifeline import run_module
from ..results import (
    NEEDS_TRUST,
    NOT_CHECKED,
    PORTABILITY_SCHEMA,
    lies_inside,
    load_results,
    reference_inputs,
    reference_paths,
)
from ..scenario import is_ref


def model_path(doc: dict, root: Path) -> Path | None:
    """The result's saved .keras file: as recorded, else beside the result in its run folder
    (run folders can be moved or copied; recorded paths may be relative to another cwd). Of
    those on disk, the first inside ``root``; else the first (which :func:`refusal` refuses)."""
    recorded = ((doc.get("save") or {}).get("keras") or {}).get("path")
    if not recorded:
        return None
    beside = Path(doc["_path"]).parent.parent / "models" / Path(recorded).name
    found = [p for p in (Path(recorded), beside) if p.exists()]
    return next((p for p in found if lies_inside(p, root)), found[0] if found else None)


def candidates(docs: list[dict], root: Path) -> list[dict]:
    """Results whose .keras file and reference predictions are still on disk."""
    out = []
    for d in docs:
        path = model_path(d, root) if d["status"] == "ok" else None
        if path and reference_paths(path).exists():
            out.append(d)
    return out


def refusal(doc: dict, model: Path, root: Path, trust_code: bool) -> str | None:
    """Why ``doc``'s saved model is not loaded here (a one-line reason), or None.

    A file that does not lie inside ``root`` (a path recorded elsewhere, a link out of it) is
    never loaded; a model whose module is the user's own is loaded only with ``trust_code``:
    loading it imports that module, and the result that names it may come from anywhere.
    """
    for file in (model, reference_paths(model), reference_inputs(model)):
        if (file.exists() or file.is_symlink()) and not lies_inside(file, root):
            return f"refused: {file} lies outside {root}; not loaded"
    if is_ref(str(doc["cell"].get("model", ""))) and not trust_code:
        return NEEDS_TRUST
    return None


def run(
    docs: list[dict],
    targets: list[str],
    out_dir: Path,
    *,
    root: Path,
    trust_code: bool = False,
    pythons: dict[str, str] | None = None,
    timeout: float = 900,
) -> list[dict]:
    """Checks every candidate model under every target backend but its own.

    One process per target backend checks all of its models: importing a backend costs
    seconds, a check milliseconds. ``root`` is the results folder the models must lie in;
    ``trust_code`` lets the checks import the user's own model modules. ``pythons`` names the
    interpreter of a target installed in another environment (default: this interpreter).
    """
    written = []
    for target in targets:
        todo = [d for d in candidates(docs, root) if d["backend"] != target]
        if not todo:
            continue
        models = [model_path(d, root) for d in todo]
        checks: list[dict | None] = []  # None: to load; else not checked, and why
        for doc, model in zip(todo, models, strict=True):
            why = refusal(doc, model, root, trust_code)
            checks.append(why and {"status": NOT_CHECKED, "reason": why,
                                   "target_versions": None, "batch_seconds": None})  # fmt: skip
        loads = [i for i, c in enumerate(checks) if c is None]
        if loads:
            tasks = [{"result": todo[i]["_path"], "model": str(models[i]),
                      "trust_code": trust_code} for i in loads]  # fmt: skip
            answers = _check(tasks, target, pythons, timeout)
            for i, check in zip(loads, answers or [None] * len(loads), strict=True):
                checks[i] = check  # None: the interpreter could not run; no file is written
        for doc, model, check in zip(todo, models, checks, strict=True):
            if check is None:
                continue
            check.update(
                schema=PORTABILITY_SCHEMA,
                schema_version=1,
                scenario=doc["scenario"]["name"],
                cell=doc["cell"]["id"],
                source_backend=doc["backend"],
                source_run=doc.get("run_id"),
                target_backend=target,
                model=str(model),
                checked=results.utc_now(),
            )
            name = f"{check['scenario']}--{check['cell']}--{doc['backend']}--to-{target}.json"
            if not lies_inside(out_dir / name, out_dir):  # the reader refuses such names
                print(f"note: {check['scenario']}/{check['cell']}: its check would go to "
                      f"{out_dir / name}, outside {out_dir}; not written", file=sys.stderr)  # fmt: skip
                continue
            results.write_json_atomic(out_dir / name, check, overwrite=True)
            written.append(check)
    return written


def _check(
    tasks: list[dict], target: str, pythons: dict[str, str] | None, timeout: float
) -> list[dict] | None:
    """The answers of one ``target`` process to ``tasks``, or None where it could not run."""
    import tempfile

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
        return None
    seconds = round(time.monotonic() - started, 3)
    out = []
    for check in answers:
        check = check or {"status": "failed", "reason": failure or "no answer"}
        check.setdefault("target_versions", None)  # the checking interpreter says
        check["batch_seconds"] = seconds
        out.append(check)
    return out


def main(*, backend, pythons, results_dir, trust_code) -> int:
    """Loads every saved .keras model under the other backends: those installed here, and
    those of other environments' interpreters (``--python BACKEND=PATH``)."""
    root = Path(results_dir)
    if not root.is_dir():
        raise UsageError(f"{root}: not a results folder")
    pythons = _pythons(pythons)
    available = [b for b in backends.NAMES if b in pythons or b in backends.installed_backends()]
    if not available:
        raise UsageError(
            "no backend to load models under: none is installed here, and no --python "
            "interpreter was found"
        )
    chosen = resolve_backends(backend, available) if backend else available
    targets = [b for b in available if b in chosen or b in pythons]  # --python adds to them
    docs, problems = load_results([root], runs_only=True)  # calibrations save models too
    for problem in problems:  # e.g. a name that is a path: the file is not read at all
        print(f"note: not checked: {problem}", file=sys.stderr)
    trust = trust_code
    todo = [
        (d, t)
        for d in candidates(docs, root)
        for t in targets
        if t != d["backend"] and not refusal(d, model_path(d, root), root, trust)
    ]
    print(
        f"portability: {len(todo)} load(s) of saved models under {', '.join(targets)}",
        file=sys.stderr,
    )
    checks = run(docs, targets, root / "portability", root=root, trust_code=trust, pythons=pythons)
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
    untrusted = sum(c.get("reason") == NEEDS_TRUST for c in checks)
    if untrusted:
        print(
            f"note: {untrusted} load(s) not checked: the model's module is the user's own code; "
            "pass --trust-code to import it, for results you trust (your own runs)",
            file=sys.stderr,
        )
    return 1 if any(c["status"] not in ("ok", NOT_CHECKED) for c in checks) else 0


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
