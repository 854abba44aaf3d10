"""Fault injection, for real: a cell that raises, diverges, hangs or is killed costs only itself.

Each fault is a real one (a bad optimizer argument, a learning rate that diverges, a time limit
shorter than the import, the orchestrator SIGKILLed mid-fit), not a hook in the harness, in a
real worker under one backend (the first selected). The runner's own signal and resume cases
run against a stub worker in test_runner_faults.py.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from conftest import ROOT, SELECTED, cli_env

from harness import results

pytestmark = pytest.mark.backend

if not SELECTED:
    pytest.skip("no backend installed", allow_module_level=True)
BACKEND = SELECTED[0]
TINY = (
    "train_samples = 256\ntest_samples = 64\nbatch_size = 64\nepochs = 1\nrepeats = 1\n"
    "warmup_steps = 1\nmin_time = 0\n"
)


def _default_sigint() -> None:
    # A test suite started in the background (`cmd &` in a script, nohup) inherits SIGINT
    # ignored, and Python then installs no Ctrl-C handler in the child: give it a real one.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(*args: str) -> subprocess.Popen:
    env = cli_env()
    return subprocess.Popen(
        [sys.executable, "-m", "harness", "run", *args, "--backend", BACKEND],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=_default_sigint,
    )  # fmt: skip


def docs_in(folder: Path) -> dict[str, dict]:
    out = {}
    for f in results.iter_result_files([folder]):
        doc = json.loads(f.read_text())
        out[doc["cell"]["id"]] = doc
    return out


def test_raise_nan_and_timeout_stay_in_their_cells(tmp_path):
    sc = tmp_path / "faults.toml"
    sc.write_text(
        f"[defaults]\n{TINY}[matrix]\noptimizer = [\n"
        '  "adam",\n'
        '  { name = "adam", bogus_argument = 1 },\n'  # raises inside the worker
        '  { name = "sgd", learning_rate = 1e30 },\n'  # diverges to NaN
        "]\n"
    )
    slow = tmp_path / "slow.toml"
    slow.write_text(f"[defaults]\n{TINY}time_limit = 1.5\n")  # shorter than importing keras
    proc = start(str(sc), str(slow), "--out", str(tmp_path / "r"))
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 1, stderr[-2000:]
    assert "2 cell(s) failed" not in stderr and "3 cell(s) failed" in stderr
    docs = docs_in(tmp_path / "r")
    assert docs["adam"]["status"] == "ok"
    bad = docs["adam-bogus_argument1"]
    assert (
        bad["status"] == "failed"
        and bad["reason"]
        == "ValueError in build: Argument(s) not recognized: {'bogus_argument': 1}"
    )
    assert "Traceback" in bad["traceback"]
    nan = docs["sgd-lr1e+30"]
    assert nan["status"] == "failed"
    assert nan["reason"] == "RuntimeError in fit: loss became NaN at epoch 1; fit stopped early"
    assert nan["train"]["history"]  # partial measurements kept
    timed_out = docs["default"]
    assert timed_out["status"] == "failed"
    assert timed_out["reason"].startswith("time limit of 1.5 s exceeded (during ")
    assert "| failed |" in stdout  # the report shows them


def test_same_cell_twice_gives_the_same_loss_history(tmp_path):
    sc = tmp_path / "repro.toml"
    sc.write_text(f"[defaults]\n{TINY.replace('repeats = 1', 'repeats = 2')}")
    for name in ("a", "b"):
        proc = start(str(sc), "--out", str(tmp_path / name))
        _, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr[-2000:]
    (a,) = docs_in(tmp_path / "a").values()
    (b,) = docs_in(tmp_path / "b").values()
    assert a["train"]["repeat_loss_max_diff"] <= 1e-6  # repeats within a run agree
    for ha, hb in zip(a["train"]["history"], b["train"]["history"], strict=True):
        assert ha["loss"] == pytest.approx(hb["loss"], abs=1e-6)


def test_orchestrator_sigkilled_mid_fit_leaves_no_worker(tmp_path):
    """SIGKILL, the OOM killer or a cancelled CI job end the orchestrator with no cleanup: the
    real worker must die with it, not keep training while the next job measures."""
    sc = tmp_path / "orphan.toml"
    sc.write_text(
        "[defaults]\ntrain_samples = 60000\ntest_samples = 64\nbatch_size = 32\nepochs = 50\n"
        "repeats = 1\nwarmup_steps = 1\n"
    )
    proc = start(str(sc), "--out", str(tmp_path / "r"))
    for line in proc.stderr:
        if " fit 1/1  elapsed" in line:
            break
    (worker,) = psutil.Process(proc.pid).children()
    proc.kill()
    proc.communicate(timeout=60)
    deadline = time.monotonic() + 5
    while worker.is_running() and worker.status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "the worker outlived its orchestrator by 5 s"
        time.sleep(0.1)
    (result,) = docs_in(tmp_path / "r").values()
    assert result["finished"] is None  # left unfinished: --resume runs it again
    assert result["data"]["train_samples"] == 60000  # what it had measured survives
