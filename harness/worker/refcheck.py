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

# Datasets loaded so far in this worker: cells that differ in loss or model share one load.
_LOADED: dict[tuple, Any] = {}


def check_one(task: dict[str, Any]) -> dict[str, Any]:
    from ..scenario import Cell, is_ref, label_problems
    from . import model as model_mod
    from . import userdata

    cell = Cell.from_json(task["cell"])
    input_shape, num_classes = model_mod.INPUT_SHAPE, model_mod.NUM_CLASSES
    if is_ref(cell.dataset):
        key = (cell.dataset, cell.python_path, cell.batch_size, cell.train_samples,
               cell.test_samples)  # fmt: skip
        if key not in _LOADED:
            try:
                _LOADED[key] = userdata.load(
                    cell.dataset,
                    cell.python_path,
                    task["cell"],
                    batch_size=cell.batch_size,
                    train_samples=cell.train_samples,
                    test_samples=cell.test_samples,
                )
            except userdata.DataRefError as exc:
                _LOADED[key] = exc
        ds = _LOADED[key]
        if isinstance(ds, Exception):
            return {"field": "dataset", "error": str(ds)}
        input_shape, num_classes = ds.input_shape, ds.num_classes
        for field, message in label_problems(cell, ds.labels):
            return {"field": field, "error": message}
    try:  # its arguments, as compile will take them
        model_mod.make_loss(cell.loss.name, dict(cell.loss.kwargs))
    except Exception as exc:
        return {"field": "loss", "error": f"loss {cell.loss.label}: {one_line(exc, typed=True)}"}
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
        except (Exception, SystemExit) as exc:  # the check's own failure is not the reference's
            answer = {"crashed": one_line(exc, typed=True, limit=300)}
        print("\n" + json.dumps({"index": index, **answer}), file=answers, flush=True)
