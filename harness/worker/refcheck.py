"""The quick check of a run's import references, before any cell runs.

``python -m harness.worker.refcheck TASKS.json`` (KERAS_BACKEND set, on the CPU) answers one
JSON line per task: the user's dataset function called and its data checked, the model built
for it and its output checked, as every cell will; nothing is compiled or trained. A bad
reference is ``{"index": I, "field": "model" | "dataset", "error": "..."}``; a good one
``{"index": I, "ok": true, "input_shape": [...], "num_classes": K}``.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Any

from ..errors import one_line


def check_one(task: dict[str, Any]) -> dict[str, Any]:
    from ..scenario import Cell, is_ref, label_problems
    from . import model as model_mod
    from . import userdata

    cell = Cell.from_json(task["cell"])
    input_shape, num_classes = model_mod.INPUT_SHAPE, model_mod.NUM_CLASSES
    if is_ref(cell.dataset):
        try:
            ds = userdata.load(
                cell.dataset,
                cell.python_path,
                task["cell"],
                batch_size=cell.batch_size,
                train_samples=cell.train_samples,
                test_samples=cell.test_samples,
            )
        except userdata.DataRefError as exc:
            return {"field": "dataset", "error": str(exc)}
        input_shape, num_classes = ds.input_shape, ds.num_classes
        for key, message in label_problems(cell, ds.labels):
            return {"field": key, "error": message}
    try:
        model_mod.build_model(
            cell.model,
            cell.python_path,
            task["cell"],
            input_shape=input_shape,
            num_classes=num_classes,
        )
    except model_mod.ModelRefError as exc:
        return {"field": "model", "error": str(exc)}
    except Exception as exc:  # a built-in model that cannot take the user's data
        return {
            "field": "model",
            "error": f"model {cell.model} cannot take samples of shape {tuple(input_shape)} "
            f"from dataset {cell.dataset}: {one_line(exc, typed=True, limit=300)}",
        }
    return {"ok": True, "input_shape": list(input_shape), "num_classes": num_classes}


if __name__ == "__main__":
    from ..lifeline import tie_to_parent

    tie_to_parent()  # the check dies with the harness that started it
    answers = sys.stdout
    for index, task in enumerate(json.loads(Path(sys.argv[1]).read_text())):
        try:
            with contextlib.redirect_stdout(sys.stderr):  # what the user's code prints
                answer = check_one(task)
        except Exception as exc:  # the check's own failure is not the reference's
            answer = {"crashed": one_line(exc, typed=True, limit=300)}
        print("\n" + json.dumps({"index": index, **answer}), file=answers, flush=True)
