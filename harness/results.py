"""Result files: the versioned schema, atomic writes, finding and reading them.

One JSON document per (cell, backend). A result is never half-written (temporary file, fsync,
rename) and never silently overwritten. Reading checks the schema version, so old files keep
loading and files from a newer harness are refused with a clear message. What a result says
(its statuses, its rates, the read-only view ``Result``) is in result_view.py; its names are
importable from here too.

Longer than 400 lines, and one concern: every check a result file gets before anything reads
it (result files are data from anywhere) sits beside the reading it guards.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any, TextIO

from . import result_shape
from .backends import rank
from .errors import UsageError, UserError
from .result_view import NOT_RUN, Result
from .result_view import RATE_FIELDS as RATE_FIELDS
from .result_view import STATUSES as STATUSES
from .result_view import THROUGHPUT as THROUGHPUT
from .result_view import TYPICAL as TYPICAL
from .result_view import Rate as Rate
from .result_view import Status as Status

SCHEMA = "keras-backend-harness/result"
SCHEMA_VERSION = 1
# One file per (saved model, backend that loaded it), under RESULTS/portability/.
PORTABILITY_SCHEMA = "keras-backend-harness/portability"
# What identifies a check (the first four) and what the reports read of every one.
PORTABILITY_KEYS = ("scenario", "cell", "source_backend", "target_backend", "checked", "status")
# A check compares predictions on this many test samples, saved by the backend that trained.
REFERENCE_SAMPLES = 256
TOLERANCE = 1e-5  # float32 kernels differ in summation order across backends
# A check's status where the model was not loaded (its reason says why), and the reason where
# loading it would import the user's own module: results may come from another machine.
NOT_CHECKED = "not checked"
NEEDS_TRUST = "needs --trust-code"


class ResultError(UserError):
    """A result file is unusable; ``str()`` is one line naming the file."""


def utc_now() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_result(cell: dict[str, Any], backend: str, scenario: dict[str, Any]) -> dict[str, Any]:
    """The skeleton every result starts from; measurements are filled in as phases finish."""
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "backend": backend,
        "scenario": scenario,
        "cell": cell,
        "status": "failed",
        "reason": "worker did not finish",
        "phase": None,
        "started": utc_now(),
        "finished": None,
    }


def write_json_atomic(path: Path, doc: dict[str, Any], *, overwrite: bool = False) -> Path:
    """Writes ``doc`` so that ``path`` holds either nothing or the whole document.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is false.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; refusing to overwrite a result")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(_finite(doc), f, indent=1, allow_nan=False, default=_jsonable)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _finite(obj: Any) -> Any:
    """NaN and infinity are not JSON: a diverged loss is written as null (the status and
    reason say what happened), so the file stays readable by every JSON parser."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def _jsonable(obj: Any) -> Any:
    # numpy scalars and the like: anything with item() becomes a plain Python number.
    if hasattr(obj, "item"):
        return obj.item()
    return str(obj)


def read_result(path: Path) -> dict[str, Any]:
    """Reads and checks one result file.

    Raises:
        ResultError: unreadable, not JSON, not a result, or from a newer schema.
    """
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ResultError(f"{path}: cannot read: {exc.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ResultError(f"{path}: corrupt result file ({exc})") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise ResultError(f"{path}: not a harness result file (no schema {SCHEMA!r})")
    version = doc.get("schema_version")
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise ResultError(
            f"{path}: schema_version {version!r} is newer than this harness reads "
            f"({SCHEMA_VERSION}); upgrade the harness"
        )
    for key in ("backend", "status", "cell"):
        if key not in doc:
            raise ResultError(f"{path}: corrupt result file (no {key!r})")
    for key in ("cell", "scenario"):
        if not isinstance(doc.get(key, {}), dict):
            raise ResultError(f"{path}: corrupt result file ({key!r} is not an object)")
    # A result may come from another machine: the names the harness builds file and folder
    # names from must be names, never paths ('../..', '/etc').
    for field in NAME_FIELDS:
        where, _, key = field.rpartition(".")
        value = (doc.get(where) or {}).get(key) if where else doc.get(key)
        problem = name_problem(value) if value is not None or field == "backend" else None
        if problem:
            raise ResultError(f"{path}: field '{field}': {problem}")
    problem = shape_problem(doc)
    if problem:
        raise ResultError(f"{path}: {problem}")
    doc["_path"] = str(path)
    return doc


def shape_problem(doc: dict[str, Any]) -> str | None:
    """Why a result's fields that the reports, the gate and the history read are not of the
    types they are read as (a file from another machine or a hand's edit), or None; the
    shape is declared in result_shape.py. Names a field: ``field 'train.samples_per_sec.values':
    ...``."""
    return result_shape.problem(doc)


# The fields of a result that name files and folders (baselines, portability checks): each a
# safe name where present (the backend always).
NAME_FIELDS = ("run_id", "scenario.name", "cell.id", "backend")
_SAFE_NAME = re.compile(r"[A-Za-z0-9_=+-][A-Za-z0-9._=+-]*")
SAFE_NAME_RULE = "letters, digits, . _ - = + only, not starting with a dot"


def is_safe_name(value: Any) -> bool:
    """Whether ``value`` is a file or folder name of its own: no separator, never '.' or '..'."""
    return isinstance(value, str) and _SAFE_NAME.fullmatch(value) is not None


def name_problem(value: Any) -> str | None:
    """Why ``value`` cannot name a file or folder, or None where it can."""
    return None if is_safe_name(value) else f"{value!r} is not a safe name ({SAFE_NAME_RULE})"


def lies_inside(path: str | Path, root: str | Path) -> bool:
    """Whether ``path`` lies in the folder ``root``, both resolved (``..`` and links followed):
    the second line of defence before the harness writes or loads a file a result named."""
    return Path(path).resolve().is_relative_to(Path(root).resolve())


# The folder where `harness ab` keeps the workers that choose min_time's epochs (no values).
CALIBRATION = "calibration"
# Folders of a results tree that hold no results to report (a scenario may not take a name).
RESERVED_FOLDERS = ("logs", "portability", "models", CALIBRATION)


# The most shards (`harness run --shard K/N`) a run may be cut into; the report trusts no
# other count a result names.
MAX_SHARDS = 1000

# The manifests of `harness run`, `harness ab` and `harness worker-join`: no results.
MANIFESTS = ("run.json", "ab.json", "join.json")


def iter_result_files(paths: list[Path]) -> list[Path]:
    """Result files under the given files or folders (run manifests and logs left out)."""
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            out.extend(
                f
                for f in sorted(p.rglob("*.json"))
                if f.name not in MANIFESTS
                and not set(RESERVED_FOLDERS) & set(f.relative_to(p).parts[:-1])
            )
        else:
            out.append(p)
    return out


def load_results(
    paths: list[Path], *, latest: bool = True, runs_only: bool = False
) -> tuple[list[dict], list[str]]:
    """Reads every result file under ``paths``.

    Args:
        paths: result files or folders (searched recursively).
        latest: keep only the newest result per (scenario, cell, backend), so a report over
            ``results/`` covers every backend run so far without repeating stale runs.
        runs_only: under each path, leave out A/B jobs and calibrations where other results
            are found (see :func:`full_runs`), before the newest are chosen.

    Returns:
        The results, and one-line problems with files that could not be read.
    """
    docs, problems = [], []
    # runs_only judges each folder given apart (one named alone is kept), and the files named
    # one by one together (a shell's glob of a whole tree)
    files = [p for p in paths if not Path(p).is_dir()]
    groups = [[p] for p in paths if Path(p).is_dir()] + ([files] if files else [])
    for group in groups:
        found = []
        for f in iter_result_files(group):
            try:
                found.append(read_result(f))
            except ResultError as exc:
                problems.append(str(exc))
        docs += full_runs(found) if runs_only else found
    if latest:
        newest: dict[tuple, dict] = {}
        for d in docs:
            key = result_key(d)
            if key not in newest or (d.get("started") or "") >= (newest[key].get("started") or ""):
                newest[key] = d
        docs = list(newest.values())
    docs.sort(
        key=lambda d: (
            result_key(d)[0],
            natural_key(result_key(d)[1]),
            rank(d["backend"]),
            d.get("started") or "",
        )
    )
    return docs, problems


def full_runs(docs: list[dict]) -> list[dict]:
    """The results of ``harness run`` among ``docs``.

    A/B jobs and calibrations measure on purpose what a run does not (an A/B worker only
    trains; a calibration repeats the same code to learn the noise), so a cumulative report
    over every run leaves them out. Where ``docs`` hold nothing else (a report asked of an
    A/B folder itself), they are kept.
    """
    kept = [d for d in docs if not d.get("ab") and not _CALIBRATION.search(d.get("run_id") or "")]
    return kept or docs


# The run folders of `harness calibrate` end in this and the calibration run's number.
CALIBRATION_SUFFIX = "-calibrate"
_CALIBRATION = re.compile(re.escape(CALIBRATION_SUFFIX) + r"\d+$")


def natural_key(text: str) -> list:
    """Sort key that puts bs32 before bs128."""
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", text) if p]


def result_key(doc: dict) -> tuple[str, str, str]:
    """(scenario, cell id, backend): what a result is the result of."""
    return Result(doc).key


def cell_key(doc: dict) -> str:
    """``scenario/cell--backend``: how a cell is named in verdicts, manifests and messages."""
    return Result(doc).name


def reference_paths(model_path: str | Path) -> Path:
    """Where the saving backend's predictions for a saved .keras model lie (beside it)."""
    return Path(str(model_path).removesuffix(".keras") + ".probs.npy")


def reference_inputs(model_path: str | Path) -> Path:
    """Where the inputs of those predictions lie, as the model sees them (beside it)."""
    return Path(str(model_path).removesuffix(".keras") + ".inputs.npy")


def load_portability(paths: list[Path]) -> list[dict]:
    """Portability checks under the given folders (newest per model and target).

    Raises:
        ResultError: a check file that cannot be read, or lacks a key the reports need.
    """
    found: dict[tuple, dict] = {}
    for root in paths:
        root = Path(root)
        folders = [root] if root.name == "portability" else list(root.rglob("portability"))
        for folder in folders:
            for f in sorted(folder.glob("*.json")):
                try:
                    doc = json.loads(f.read_text())
                except (OSError, ValueError) as exc:
                    raise ResultError(f"{f}: unreadable portability check ({exc})") from None
                if not isinstance(doc, dict) or doc.get("schema") != PORTABILITY_SCHEMA:
                    continue  # not a check: the folder is the user's too
                missing = [k for k in PORTABILITY_KEYS if not isinstance(doc.get(k), str)]
                if missing:
                    raise ResultError(f"{f}: key '{missing[0]}': missing from a portability check")
                key = tuple(doc[k] for k in PORTABILITY_KEYS[:4])
                if key not in found or doc["checked"] >= found[key]["checked"]:
                    found[key] = doc
    return list(found.values())


def make_dir(path: Path, what: str) -> Path:
    """Creates a folder the harness will write to, or one line naming it (exit 2)."""
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{what}: cannot create {path} ({exc.strerror})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise UsageError(f"{what}: {path} is not writable")
    return Path(path)


def write_text(path: Path, text: str, what: str) -> None:
    """Writes a report, or one line naming the path (exit 2)."""
    make_dir(Path(path).parent, what)
    try:
        Path(path).write_text(text)
    except OSError as exc:
        raise UsageError(f"{what}: cannot write {path} ({exc.strerror})") from None


def fail_on_skip(docs: list[dict[str, Any]], stream: TextIO = sys.stderr) -> int:
    """``--fail-on-skip``: names each cell that ended skipped or unsupported, one line each
    (a cell that several workers ran, as in ``harness ab``, once, with how many), and returns
    1; 0 when every cell ran."""
    counts: dict[tuple, int] = {}
    for doc in docs:
        if doc.get("status") in NOT_RUN:
            key = (
                f"{(doc.get('scenario') or {}).get('name')}/"
                f"{(doc.get('cell') or {}).get('id')}--{doc.get('backend')}",
                doc["status"],
                doc.get("reason"),
            )
            counts[key] = counts.get(key, 0) + 1
    for (name, status, reason), n in counts.items():
        workers = f" ({n} workers)" if n > 1 else ""
        print(f"--fail-on-skip: {name} {status}{workers}: {reason}", file=stream)
    cells = len({name for name, _, _ in counts})
    if cells:
        print(f"--fail-on-skip: {cells} cell(s) ended skipped or unsupported", file=stream)
    return 1 if cells else 0


def read_manifest(path: Path, what: str = "--resume") -> dict:
    """A run's run.json or ab.json, or one line naming it (exit 2)."""
    try:
        started = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"{what}: {path}: unreadable ({exc})") from None
    if not isinstance(started, dict):
        raise UsageError(f"{what}: {path}: not a run manifest")
    return started


def planned(paths: list[Path]) -> set[str]:
    """The cells the run manifests (run.json) under these paths planned: one of them without
    a result is missing, not silently absent (a run killed before it)."""
    out: set[str] = set()
    for p in paths:
        for manifest in sorted(Path(p).rglob("run.json")) if Path(p).is_dir() else []:
            cells = read_manifest(manifest, "check").get("cells")
            if not isinstance(cells, list) or not all(isinstance(c, str) for c in cells):
                raise UsageError(f"{manifest}: 'cells' is not a list of cell names")
            out.update(cells)
    return out
