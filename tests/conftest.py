"""Which backends the real end-to-end tests run under.

Under tox each environment sets KERAS_BACKEND and installs exactly that backend: it must be
there, so a missing one is an error, not a skip. Run by hand without KERAS_BACKEND, the tests
cover every installed backend and say which ones they skip and why.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness import backends

ROOT = Path(__file__).resolve().parent.parent


def _selected() -> tuple[list[str], dict[str, str]]:
    installed = backends.installed_backends()
    wanted = os.environ.get("KERAS_BACKEND")
    if wanted:
        backend = backends.ALIASES.get(wanted, wanted)
        others = {
            b: f"KERAS_BACKEND={wanted} selects one backend" for b in backends.NAMES if b != backend
        }
        return [backend], others
    skipped = {
        b: f"{b} is not installed in this environment" for b in backends.NAMES if b not in installed
    }
    return installed, skipped


SELECTED, NOT_SELECTED = _selected()

# Machinery that does not depend on the backend (the runner against a stub worker, the real
# interleaved A/B gate and its calibration) is tested in one environment only: jax's, the
# fastest to import. Run by hand without KERAS_BACKEND, it runs under the first installed.
ONCE = "jax"


def once_backend() -> tuple[str | None, str]:
    """The backend a run-once test uses here, or None and why it does not run here."""
    wanted = os.environ.get("KERAS_BACKEND")
    if wanted and backends.ALIASES.get(wanted, wanted) != ONCE:
        return None, f"backend-independent machinery, tested once in the {ONCE} environment"
    if ONCE in SELECTED:
        return ONCE, ""
    if SELECTED and not wanted:
        return SELECTED[0], ""
    return None, "no backend installed"


@pytest.fixture
def once():
    """A backend name for a test that runs in one environment only (see ONCE)."""
    name, why = once_backend()
    if name is None:
        pytest.skip(why)
    return name


def pytest_report_header(config):
    lines = [f"backends under test: {', '.join(SELECTED) or 'none'}"]
    name, why = once_backend()
    lines.append(f"backend-independent tests: {f'under {name}' if name else f'not here ({why})'}")
    lines += [f"backend {b} not tested: {why}" for b, why in NOT_SELECTED.items()]
    return lines


def pytest_collection_modifyitems(config, items):
    """Where KERAS_BACKEND selects another backend than ONCE's (tox's test-tf and test-torch),
    only the tests marked `backend` run: the rest (scenario parsing, the gate's statistics,
    reports, the sampler with a fake NVML...) import no backend and give the same answer in
    every environment, so they run once, in ONCE's."""
    name, _ = once_backend()
    wanted = os.environ.get("KERAS_BACKEND")
    if name is not None or not wanted:
        return
    keep = [item for item in items if item.get_closest_marker("backend")]
    if len(keep) < len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in keep])
        items[:] = keep


def pytest_generate_tests(metafunc):
    if "backend" in metafunc.fixturenames:
        params = [pytest.param(b, id=b) for b in SELECTED]
        params += [
            pytest.param(b, id=b, marks=pytest.mark.skip(reason=why))
            for b, why in NOT_SELECTED.items()
        ]
        metafunc.parametrize("backend", params)


@pytest.fixture
def backend(request):
    name = request.param
    if backends.installed_version(name) is None:
        # KERAS_BACKEND names a backend this environment lacks: that is a broken setup.
        pytest.fail(f"KERAS_BACKEND selects {name}, but {name} is not installed here")
    return name


def cli_env(extra: dict | None = None) -> dict:
    """The environment of a harness process started by a test (the checkout importable)."""
    from harness.lifeline import child_env

    env = child_env(extra or {})
    if "GITHUB_STEP_SUMMARY" not in (extra or {}):  # tests run inside Actions: not its summary
        env.pop("GITHUB_STEP_SUMMARY", None)
    return env


# `python -m STUB_HARNESS ARGS`: the CLI whose workers are the stub (tests/stub_worker.py),
# the runner's own machinery without a backend.
STUB_HARNESS = "tests.stub_harness"
STUB_CLI = [sys.executable, "-m", STUB_HARNESS]


def stub_env(**opts) -> dict:
    """The environment of a STUB_CLI process; ``opts`` set the stub's behaviour."""
    return cli_env({"HARNESS_STUB": json.dumps(opts)})


def run_cells(scenario: Path, backend: str, out: Path, *args: str) -> tuple[list[dict], str]:
    """``harness run SCENARIO --backend B --out OUT`` as a user would; it must exit 0. Returns
    the results it wrote and its stdout (the report)."""
    from harness import results

    proc = run_cli("run", str(scenario), "--backend", backend, "--out", str(out), *args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return results.load_results([out])[0], proc.stdout


def keras_script(code: str, backend: str, *args: str) -> dict:
    """Runs ``code`` with keras under ``backend`` on the CPU in a fresh process (this one
    imports no backend) and returns the JSON object its last line prints."""
    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=cli_env({"KERAS_BACKEND": backend, "JAX_PLATFORMS": "cpu"}),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_cli(
    *args: str,
    cwd: Path | None = None,
    env: dict | None = None,
    timeout: float = 600,
    module: str = "harness",
):
    """Runs ``python -m harness ARGS`` in a fresh process, as a user would (``module``: the
    tests' own entry point instead, e.g. STUB_HARNESS)."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd or ROOT,
        env=cli_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
