"""What no single key can tell: a cell whose loss or metrics cannot take its dataset's labels,
or whose data-parallel work does not split evenly.

Each function gives (key, message) pairs and raises nothing: the loader (load.py) turns the
first into a :class:`ScenarioError` before anything runs, and the worker asks again once the
data is loaded (the user's dataset tells its labels and sizes only then).
"""

from __future__ import annotations

from .keys import Cell
from .vocab import FOR_CLASS_IDS, FOR_ONE_HOT, is_ref


def label_problems(cell: Cell, labels: str | None) -> list[tuple[str, str]]:
    """Why the cell's loss or metrics cannot take its dataset's labels ("class ids" or
    "one-hot"; None: not known yet), as (key, message) pairs; the worker asks again once the
    data is loaded."""
    wrong = {"class ids": FOR_ONE_HOT, "one-hot": FOR_CLASS_IDS}.get(labels, set())
    out = []
    if cell.loss.name in wrong:
        fix = "sparse_categorical_crossentropy" if labels == "class ids" else (
            "categorical_crossentropy"
        )  # fmt: skip
        out.append(("loss", f"{cell.loss.name} takes {_other(labels)} labels; dataset "
                            f"{cell.dataset} gives {labels}: use {fix}"))  # fmt: skip
    for name in cell.metrics:
        if name in wrong:
            out.append(("metrics", f"{name} takes {_other(labels)} labels; dataset "
                                   f"{cell.dataset} gives {labels}"))  # fmt: skip
    if dict(cell.loss.kwargs).get("from_logits") and not is_ref(cell.model):
        out.append(("loss", f"from_logits: model {cell.model} ends in a softmax already (for "
                            "a model of your own that outputs logits)"))  # fmt: skip
    return out


def _other(labels: str) -> str:
    return "one-hot" if labels == "class ids" else "class ids"


def parallel_problems(cell: Cell, train: int | None, test: int | None) -> list[tuple[str, str]]:
    """Why a data-parallel cell cannot split its work evenly, as (key, message) pairs; the
    worker asks again once the data is loaded. Every step's batch, the last partial one too,
    must split evenly across the devices (JAX's sharding refuses an uneven one), and every
    process must get the same number of samples (they step together)."""
    n, procs = cell.data_parallel, cell.data_parallel_processes
    out: list[tuple[str, str]] = []
    if n % procs:
        out.append(("data_parallel", f"{n} devices do not split evenly across {procs} processes"))
    if cell.batch_size % n:
        out.append(("batch_size", f"{cell.batch_size} does not split evenly across {n} devices"))
    for key, size in (("train_samples", train), ("test_samples", test)):
        if size is None or n == 1 and procs == 1:
            continue
        if size % procs:
            out.append((key, f"{size} samples do not split evenly across {procs} processes"))
        elif size % cell.batch_size % n:
            out.append(
                (
                    key,
                    f"the last batch of {size} samples ({size % cell.batch_size}) does not "
                    f"split evenly across {n} devices",
                )
            )
    if n > 1 and cell.device.startswith("gpu:"):
        out.append(("device", f'data_parallel = {n} takes the first {n} GPUs: use device = "gpu"'))
    return out
