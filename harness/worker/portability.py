"""The worker's half of the portability matrix: in the target backend's process, load a model
saved under another backend, predict, and compare with the saving backend's predictions.

``python -m harness.worker.portability TASKS.json`` answers one JSON line per task.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from .. import results
from ..errors import one_line
from ..results import NEEDS_TRUST, NOT_CHECKED, TOLERANCE, reference_inputs, reference_paths


def check_one(task: dict[str, Any]) -> dict[str, Any]:
    """In the target backend's process: load, predict, compare."""
    from ..scenario import Cell, is_ref

    doc = results.read_result(Path(task["result"]))
    cell = Cell.from_json(doc["cell"])
    if is_ref(cell.model) and task.get("trust_code") is not True:
        # `harness portability` sends no such task: a result file never makes this process
        # import the code it names (it may come from another machine)
        return {"status": NOT_CHECKED, "reason": NEEDS_TRUST}

    import keras
    import numpy as np

    from .data import load_for_cell, preprocess
    from .imports import import_ref

    reference = np.load(reference_paths(task["model"]), allow_pickle=False)
    if is_ref(cell.model):
        # its module registers the custom layers that loading the model needs
        import_ref(cell.model, cell.python_path, "model", RuntimeError)
    inputs = reference_inputs(task["model"])
    if inputs.exists():  # what the saving backend predicted from
        x = np.load(inputs, allow_pickle=False)
    else:  # saved before the inputs were kept: the built-in dataset again
        x = preprocess(load_for_cell(cell).x_test[: len(reference)])
    try:
        model = keras.saving.load_model(task["model"])
    except Exception as exc:
        failed = _failed("load", exc)
        # What is left for a user who only predicts: the architecture and weights without
        # the training state (keras 3.15.1 names torch's own optimizer module in a .keras
        # saved under torch, which other backends cannot import).
        try:
            bare = keras.saving.load_model(task["model"], compile=False)
        except Exception as bare_exc:
            failed["compile_false"] = _failed("load", bare_exc)
            return failed
        try:
            failed["compile_false"] = _compare(np, bare.predict(x, verbose=0), reference)
        except Exception as bare_exc:  # the first reason stays the check's
            failed["compile_false"] = _failed("predict", bare_exc)
        return failed
    return _compare(np, model.predict(x, verbose=0), reference)


def _failed(step: str, exc: Exception) -> dict[str, Any]:
    return {"status": "failed", "reason": f"{step} failed: {one_line(exc, typed=True, limit=300)}"}


def _compare(np, probs, reference) -> dict[str, Any]:
    """The loaded model's predictions against the saving backend's."""
    probs = np.asarray(probs)
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


if (
    __name__ == "__main__"
):  # python -m harness.worker.portability TASKS.json: one JSON line per task
    from ..lifeline import tie_to_parent

    tie_to_parent()  # no check outlives the `harness portability` that started it
    from ..backends import backend_versions

    # as installed in this interpreter, which may be another environment's than the harness's
    versions = backend_versions(os.environ["KERAS_BACKEND"])
    import keras  # noqa: F401  (an environment without it fails here, before any model)

    print(json.dumps({"ready": True}), flush=True)
    for index, task in enumerate(json.loads(Path(sys.argv[1]).read_text())):
        try:
            with contextlib.redirect_stdout(sys.stderr):  # what a user's model module prints
                answer = check_one(task)
        except (Exception, SystemExit) as exc:  # one bad model must not hide the others' answers
            answer = {
                "status": "failed",
                "reason": one_line(exc, typed=True, limit=300),
            }
        answer = {"index": index, **answer, "target_versions": versions}
        print("\n" + json.dumps(answer), flush=True)
