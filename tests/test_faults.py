"""Fault injection, for real: a cell that raises, diverges, hangs or is killed costs only itself.

Each fault is a real one (a bad optimizer argument, a learning rate that diverges, a time limit
shorter than the import, SIGKILL from outside, Ctrl-C), not a hook in the harness. They run
under one backend (the first selected): what they test is the runner, not the backend.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from conftest import ROOT, SELECTED, cli_env

pytestmark = pytest.mark.backend

if not SELECTED:
    pytest.skip("no backend installed", allow_module_level=True)
BACKEND = SELECTED[0]
TINY = "train_samples = 256\ntest_samples = 64\nbatch_size = 64\nepochs = 1\nrepeats = 1\nwarmup_steps = 1\n"


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
    for f in folder.rglob("*.json"):
        if f.name != "run.json":
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


def test_sigkill_mid_fit_is_recorded_and_the_next_cell_runs(tmp_path):
    sc = tmp_path / "kill.toml"
    sc.write_text(
        "[defaults]\ntrain_samples = 60000\ntest_samples = 64\nbatch_size = 32\nepochs = 50\n"
        "repeats = 1\nwarmup_steps = 1\n[matrix]\nseed = [0, 1]\n"
    )
    after = tmp_path / "after.toml"
    after.write_text(f"[defaults]\n{TINY}")
    proc = start(str(sc), str(after), "--out", str(tmp_path / "r"))
    killed = False
    deadline = time.monotonic() + 300
    for line in proc.stderr:  # progress lines, one per phase when not on a terminal
        if not killed and "seed0" in line and " fit 1/1  elapsed" in line:
            (worker,) = psutil.Process(proc.pid).children()
            time.sleep(0.5)
            worker.send_signal(signal.SIGKILL)
            killed = True
        if killed and "seed1" in line and " fit 1/1  elapsed" in line:
            for child in psutil.Process(proc.pid).children():
                child.send_signal(signal.SIGKILL)
        assert time.monotonic() < deadline
    proc.communicate(timeout=120)  # drains and closes the pipes
    assert killed
    assert proc.returncode == 1
    docs = docs_in(tmp_path / "r")
    assert docs["seed0"]["status"] == "failed"
    assert docs["seed0"]["reason"] == "worker killed by SIGKILL during fit 1/1"
    assert docs["seed0"]["data"]["train_samples"] == 60000  # what it had measured survives
    assert docs["default"]["status"] == "ok"  # the cell after it still ran


def test_sigterm_marks_the_cell_interrupted(tmp_path):
    """A CI runner's cancel sends SIGTERM: handled like Ctrl-C."""
    sc = tmp_path / "term.toml"
    sc.write_text(
        "[defaults]\ntrain_samples = 60000\ntest_samples = 64\nbatch_size = 32\nrepeats = 1\n"
        "epochs = 20\nwarmup_steps = 1\n"
    )
    proc = start(str(sc), "--out", str(tmp_path / "r"))
    for line in proc.stderr:
        if " fit 1/1  elapsed" in line:
            proc.send_signal(signal.SIGTERM)
            break
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr[-2000:]
    (doc,) = docs_in(tmp_path / "r").values()
    assert doc["status"] == "interrupted"
    assert not psutil.Process(os.getpid()).children(recursive=True)  # no worker left behind


def test_interrupt_then_resume_finishes_only_what_is_missing(tmp_path):
    sc = tmp_path / "three.toml"
    sc.write_text(
        "[defaults]\ntrain_samples = 60000\ntest_samples = 64\nbatch_size = 32\nrepeats = 1\n"
        "warmup_steps = 1\n[matrix]\nepochs = [1, 3, 1]\n"
    )
    tiny = tmp_path / "tiny.toml"
    tiny.write_text(f"[defaults]\n{TINY}")
    out = tmp_path / "r"
    proc = start(str(tiny), str(sc), "--out", str(out))
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if "three/e3" in line and " fit 1/1  elapsed" in line:
            proc.send_signal(signal.SIGINT)
            break
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, "".join(seen) + stderr
    assert "--resume" in stderr
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    docs = docs_in(out)
    assert docs["default"]["status"] == "ok"
    assert docs["e3"]["status"] == "interrupted"
    assert docs["e3"]["reason"] == "interrupted by the user during fit 1/1"
    assert docs["e1"]["status"] == "ok"
    assert "e1-1" not in docs  # never started
    first = run_dir / "tiny" / f"default--{BACKEND}.json"
    mtime = first.stat().st_mtime_ns

    proc = start(str(tiny), str(sc), "--out", str(out), "--resume", str(run_dir))
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr[-2000:]
    docs = docs_in(out)
    assert {k: d["status"] for k, d in docs.items()} == {
        "default": "ok",
        "e1": "ok",
        "e3": "ok",
        "e1-1": "ok",
    }
    assert first.stat().st_mtime_ns == mtime  # a finished cell is never run or written again


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
