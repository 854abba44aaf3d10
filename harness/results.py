"""Result files: the versioned schema, atomic writes, reading, and the environment fingerprint.

One JSON document per (cell, backend). A result is never half-written (temporary file, fsync,
rename) and never silently overwritten. Reading checks the schema version, so old files keep
loading and files from a newer harness are refused with a clear message.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Any

SCHEMA = "keras-backend-harness/result"
SCHEMA_VERSION = 1
STATUSES = ("ok", "failed", "skipped", "unsupported", "interrupted")


class ResultError(ValueError):
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
    doc["_path"] = str(path)
    return doc


def iter_result_files(paths: list[Path]) -> list[Path]:
    """Result files under the given files or folders (run manifests and logs left out)."""
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            out.extend(
                f
                for f in sorted(p.rglob("*.json"))
                if f.name not in ("run.json", "ab.json")
                and not {"logs", "portability", "models"} & set(f.relative_to(p).parts[:-1])
            )
        else:
            out.append(p)
    return out


# --- environment ----------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit(cwd: Path | None = None) -> dict[str, Any]:
    cwd = cwd or Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10
        )
        if commit.returncode != 0:
            return {"commit": None, "dirty": None}
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return {"commit": commit.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.TimeoutExpired):
        return {"commit": None, "dirty": None}


def environment() -> dict[str, Any]:
    """What the orchestrator can learn without importing any backend."""
    import importlib.metadata as md

    import psutil

    from . import devices, monitor

    def version(dist: str) -> str | None:
        try:
            return md.version(dist)
        except md.PackageNotFoundError:
            return None

    packages = {d: version(d) for d in ("keras", "numpy", "scikit-learn", "h5py", "psutil")}
    backends = {b: devices.backend_versions(b) for b in devices.installed_backends()}
    gpu = monitor.gpu_inventory()
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "hostname": socket.gethostname(),
        "cpu_model": cpu_model(),
        "cpu_count_logical": os.cpu_count(),
        "cpu_count_physical": psutil.cpu_count(logical=False),
        "memory_bytes": psutil.virtual_memory().total,
        "packages": packages,
        "backends": backends,
        "gpu": gpu,
        "git": git_commit(),
        "utc": utc_now(),
    }
