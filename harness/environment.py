"""The machine and versions a run happens on, learned without importing any backend; and
``harness env``, which also asks each installed backend, in its own process, what it sees.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import socket
import subprocess
from pathlib import Path
from typing import Any

from .backends import backend_versions, installed_backends, package_version
from .lifeline import run_module
from .results import utc_now


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
        # the commit, and its committer date: what orders a history (`harness history`)
        commit = subprocess.run(
            ["git", "show", "-s", "--no-show-signature", "--format=%H %ct", "HEAD"],
            cwd=cwd, capture_output=True, text=True, timeout=10,
        )  # fmt: skip
        if commit.returncode != 0 or len(commit.stdout.split()) != 2:
            return {"commit": None, "dirty": None, "date": None}
        sha, stamp = commit.stdout.split()
        # in UTC: committers' own time zones would misorder a history compared as text
        date = datetime.datetime.fromtimestamp(int(stamp), datetime.UTC).isoformat()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return {"commit": sha, "dirty": bool(dirty.stdout.strip()), "date": date}
    except (OSError, subprocess.TimeoutExpired):
        return {"commit": None, "dirty": None, "date": None}


def environment() -> dict[str, Any]:
    """Everything the fingerprint of a run needs: Python, CPU, memory, packages, GPUs, git."""
    import psutil

    from . import monitor

    packages = {d: package_version(d) for d in ("keras", "numpy", "scikit-learn", "h5py", "psutil")}
    backends = {b: backend_versions(b) for b in installed_backends()}
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


def main(*, as_json) -> int:
    """Prints what the harness sees; each backend is asked in its own process."""
    env = environment()
    env["backend_devices"] = {}
    for backend in installed_backends():
        # No device pinning here: `env` must see every GPU the backend can.
        answers, failure = run_module(
            "harness.worker.devices", [backend],
            {"KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}, timeout=120,
        )  # fmt: skip
        info = answers[-1] if answers and not failure else {"error": failure or "no output"}
        env["backend_devices"][backend] = info
    if as_json:
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
