"""The portability matrix: a model saved in .keras under one backend, loaded under another.

``harness portability RESULTS`` takes every ok result whose saved model and reference
predictions are still on disk, and for each installed backend other than the one that saved
it, starts a fresh process under that backend which loads the file, predicts on the same test
inputs and compares with the predictions the saving backend made. One small JSON file per
(model, target backend) lands in ``RESULTS/portability/``; the reports read them from there.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from . import devices, results

SCHEMA = "keras-backend-harness/portability"
REFERENCE_SAMPLES = 256
TOLERANCE = 1e-5  # float32 kernels differ in summation order across backends


def reference_paths(model_path: str | Path) -> Path:
    return Path(str(model_path).removesuffix(".keras") + ".probs.npy")


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


def run(docs: list[dict], targets: list[str], out_dir: Path, *, timeout: float = 900) -> list[dict]:
    """Checks every candidate model under every target backend but its own.

    One process per target backend checks all of its models: importing a backend costs
    seconds, a check milliseconds.
    """
    import tempfile

    from .runner import child_env

    written = []
    for target in targets:
        todo = [d for d in candidates(docs) if d["backend"] != target]
        if not todo:
            continue
        tasks = [{"result": d["_path"], "model": str(model_path(d))} for d in todo]
        env = child_env(devices.device_env("cpu", target))
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(tasks, f)
        started = time.monotonic()
        answers: list[dict | None] = [None] * len(tasks)
        failure = None
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "harness.portability", f.name],
                env=env, capture_output=True, text=True, timeout=timeout,
            )  # fmt: skip
            for line in proc.stdout.splitlines():
                if line.startswith("{"):
                    item = json.loads(line)
                    answers[item.pop("index")] = item
            if proc.returncode != 0:
                tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
                failure = f"exit {proc.returncode}: {tail[:300]}"
        except subprocess.TimeoutExpired:
            failure = f"timed out after {timeout:g} s"
        finally:
            Path(f.name).unlink(missing_ok=True)
        seconds = round(time.monotonic() - started, 3)
        for doc, task, check in zip(todo, tasks, answers, strict=True):
            check = check or {"status": "failed", "reason": failure or "no answer"}
            check.update(
                schema=SCHEMA,
                schema_version=1,
                scenario=doc["scenario"]["name"],
                cell=doc["cell"]["id"],
                source_backend=doc["backend"],
                source_run=doc.get("run_id"),
                target_backend=target,
                target_versions=devices.backend_versions(target),
                model=task["model"],
                batch_seconds=seconds,
                checked=results.utc_now(),
            )
            name = f"{check['scenario']}--{check['cell']}--{doc['backend']}--to-{target}.json"
            results.write_json_atomic(out_dir / name, check, overwrite=True)
            written.append(check)
    return written


def load(paths: list[Path]) -> list[dict]:
    """Portability checks under the given folders (newest per model and target)."""
    found: dict[tuple, dict] = {}
    for root in paths:
        root = Path(root)
        folders = [root] if root.name == "portability" else list(root.rglob("portability"))
        for folder in folders:
            for f in sorted(folder.glob("*.json")):
                try:
                    doc = json.loads(f.read_text())
                except (OSError, ValueError):
                    continue
                if doc.get("schema") == SCHEMA:
                    key = (
                        doc["scenario"],
                        doc["cell"],
                        doc["source_backend"],
                        doc["target_backend"],
                    )
                    if key not in found or doc["checked"] >= found[key]["checked"]:
                        found[key] = doc
    return list(found.values())


def matrix_markdown(checks: list[dict]) -> str:
    """Rows: saved under; columns: loaded under; each entry over every model checked."""
    if not checks:
        return ""
    backends = ["tensorflow", "jax", "torch"]
    lines = [
        "## Portability (.keras saved under the row's backend, loaded under the column's)",
        "",
        "| saved under | " + " | ".join(f"loaded under {b}" for b in backends) + " |",
        "|---|" + "---|" * len(backends),
    ]
    for src in backends:
        cells = []
        for dst in backends:
            if src == dst:
                cells.append("(same backend: see reload)")
                continue
            sub = [c for c in checks if c["source_backend"] == src and c["target_backend"] == dst]
            if not sub:
                cells.append("not checked")
                continue
            ok = [c for c in sub if c["status"] == "ok"]
            worst = max((c["max_abs_diff"] for c in ok), default=None)
            text = f"{len(ok)}/{len(sub)} agree"
            if worst is not None:
                text += f" (max diff {worst:.1e})"
            if len(ok) < len(sub):
                bad = next(c for c in sub if c["status"] != "ok")
                text += f"; {bad['scenario']}/{bad['cell']}: {bad.get('reason')}"
            cells.append(text.replace("|", "/"))
        lines.append(f"| {src} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Agree: predictions on {REFERENCE_SAMPLES} test samples within {TOLERANCE:g} of the saving backend's.",
    ]
    return "\n".join(lines)


def check_one(task: dict[str, Any]) -> dict[str, Any]:
    """In the target backend's process: load, predict, compare."""
    import keras
    import numpy as np

    from .data import load_dataset, preprocess
    from .scenario import Cell

    doc = results.read_result(Path(task["result"]))
    cell = Cell.from_json(doc["cell"])
    reference = np.load(reference_paths(task["model"]))
    ds = load_dataset(
        cell.dataset,
        seed=cell.seed,
        train_samples=cell.train_samples,
        test_samples=cell.test_samples,
        data_path=cell.data_path,
    )
    x = preprocess(ds.x_test[: len(reference)])
    try:
        model = keras.saving.load_model(task["model"])
    except Exception as exc:
        return {
            "status": "failed",
            "reason": f"load failed: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}",
        }
    probs = np.asarray(model.predict(x, verbose=0))
    diff = float(np.max(np.abs(probs - reference)))
    agree = float(np.mean(np.argmax(probs, -1) == np.argmax(reference, -1)))
    status = "ok" if diff <= TOLERANCE else "failed"
    out = {
        "status": status,
        "max_abs_diff": diff,
        "argmax_agreement": agree,
        "samples": len(reference),
    }
    if status != "ok":
        out["reason"] = f"predictions differ by up to {diff:.3g} (> {TOLERANCE:g})"
    return out


if __name__ == "__main__":  # python -m harness.portability TASKS.json: one JSON line per task
    from .lifeline import tie_to_parent

    tie_to_parent()  # no check outlives the `harness portability` that started it
    for index, task in enumerate(json.loads(Path(sys.argv[1]).read_text())):
        try:
            answer = check_one(task)
        except Exception as exc:  # one bad model must not hide the others' answers
            answer = {
                "status": "failed",
                "reason": f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}",
            }
        print(json.dumps({"index": index, **answer}), flush=True)
