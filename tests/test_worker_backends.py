"""The worker's backend modules (harness/worker/backends/): one per backend of the harness's
list, each of the same shape, none importing its framework before a function of it runs."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.backends import NAMES
from harness.worker import backends

ROOT = Path(__file__).resolve().parent.parent


def _public_functions(module) -> set[str]:
    return {
        name
        for name, value in vars(module).items()
        if inspect.isfunction(value) and value.__module__ == module.__name__
        and not name.startswith("_")
    }  # fmt: skip


def test_every_backend_has_a_module_of_the_same_shape():
    modules = {p.stem for p in (ROOT / "harness" / "worker" / "backends").glob("*.py")}
    assert modules - {"__init__"} == set(NAMES)
    for name in NAMES:
        assert _public_functions(backends.get(name)) == set(backends.FUNCTIONS), name


def test_a_name_outside_the_list_is_refused():
    with pytest.raises(ValueError, match="mxnet"):
        backends.get("mxnet")


def test_the_backend_modules_import_no_framework_at_load():
    code = (
        "import json, sys\n"
        "from harness.worker import backends, cell, devices, parallel, probe\n"
        f"for name in {list(NAMES)!r}: backends.get(name)\n"
        "print(json.dumps([m for m in ('keras', *backends.NAMES) if m in sys.modules]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout) == []
