"""The orchestrator's own faults, against a stub worker that needs no backend.

What is tested here is the runner: resume after a crash at any line, signals during cleanup,
process groups, bad output paths. The stub (tests/stub_worker.py) speaks the worker's
protocol in milliseconds, so each case costs a fraction of a second per cell instead of a
backend import. The cases whose behaviour depends on a backend live in test_faults.py.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from conftest import ROOT, STUB_CLI, once_backend, stub_env

BACKEND, WHY = once_backend()  # the stub needs none, but the CLI plans for an installed one
if BACKEND is None:
    pytest.skip(WHY, allow_module_level=True)
CELLS = "[defaults]\nrepeats = 1\n[matrix]\nseed = [0, 1, 2]\n"


def harness(*args: str, **opts) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*STUB_CLI, *args], cwd=ROOT, env=stub_env(**opts),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def start(*args: str, **opts) -> subprocess.Popen:
    return subprocess.Popen(
        [*STUB_CLI, *args], cwd=ROOT, env=stub_env(**opts),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip


def run(scenario: Path, out: Path, *more: str, **opts) -> subprocess.CompletedProcess:
    return harness("run", str(scenario), "--backend", BACKEND, "--out", str(out), *more, **opts)


def wait_for(proc: subprocess.Popen, text: str, deadline: float = 60) -> list[str]:
    """Reads the harness's progress lines until one holds ``text``; fails after ``deadline``
    seconds even when the harness prints nothing (a hang must fail the test, not stall it)."""
    fd = proc.stderr.fileno()  # read raw: select() cannot see what a text buffer holds
    end = time.monotonic() + deadline
    seen, buffer = [], b""
    while time.monotonic() < end:
        ready, _, _ = select.select([fd], [], [], max(0.0, end - time.monotonic()))
        chunk = os.read(fd, 65536) if ready else b""
        if ready and not chunk:
            break  # the harness closed stderr: it ended
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            seen.append(line.decode(errors="replace"))
            if text in seen[-1]:
                return seen
    raise AssertionError(f"never saw {text!r} in {deadline} s:\n" + "\n".join(seen))


def docs_in(run_dir: Path) -> dict[str, dict]:
    return {
        f.stem.split("--")[0]: json.loads(f.read_text())
        for f in run_dir.rglob("*.json")
        if f.name != "run.json" and "logs" not in f.parts
    }


def one_run(out: Path) -> Path:
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    return run_dir


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def gone_within(pids: list[int], seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if not any(alive(p) for p in pids):
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def cells(tmp_path) -> Path:
    sc = tmp_path / "cells.toml"
    sc.write_text(CELLS)
    return sc


# --- resume -----------------------------------------------------------------------------------


def test_resume_reruns_a_cell_whose_worker_never_finished(tmp_path, cells):
    """A worker still running when the orchestrator died leaves status "failed" with
    finished: null. Resume must run that cell again (it used to be kept as if finished)."""
    out = tmp_path / "r"
    assert run(cells, out).returncode == 0
    run_dir = one_run(out)
    partial = next(run_dir.rglob(f"seed1--{BACKEND}.json"))
    doc = json.loads(partial.read_text())
    doc.update(status="failed", reason="worker did not finish", finished=None, phase="fit")
    doc.pop("train")
    partial.write_text(json.dumps(doc))
    kept = next(run_dir.rglob(f"seed0--{BACKEND}.json"))
    mtime = kept.stat().st_mtime_ns

    proc = run(cells, out, "--resume", str(run_dir))
    assert proc.returncode == 0, proc.stderr
    docs = docs_in(run_dir)
    assert {k: d["status"] for k, d in docs.items()} == {
        "seed0": "ok",
        "seed1": "ok",
        "seed2": "ok",
    }
    assert docs["seed1"]["finished"] is not None and docs["seed1"]["train"]
    assert kept.stat().st_mtime_ns == mtime  # finished cells are never run or written again
    # The abandoned attempt is kept for the record, out of the reports' way.
    (attempt,) = (run_dir / "logs").glob(f"*seed1--{BACKEND}.attempt-*Z.json")
    assert json.loads(attempt.read_text())["finished"] is None


def test_resume_keeps_finished_failures_unless_retry_failed(tmp_path, cells):
    out = tmp_path / "r"
    proc = run(cells, out, fail_cells=["seed1"])
    assert proc.returncode == 1
    run_dir = one_run(out)
    failed = next(run_dir.rglob(f"seed1--{BACKEND}.json"))
    assert json.loads(failed.read_text())["reason"].startswith("worker exited with code 3")
    mtime = failed.stat().st_mtime_ns

    proc = run(cells, out, "--resume", str(run_dir))  # the failure is a result: kept
    assert proc.returncode == 1
    assert failed.stat().st_mtime_ns == mtime

    proc = run(cells, out, "--resume", str(run_dir), "--retry-failed")
    assert proc.returncode == 0, proc.stderr
    assert docs_in(run_dir)["seed1"]["status"] == "ok"
    # The failed attempt stays on record with its own log (the retry writes a new one).
    (attempt,) = (run_dir / "logs").glob(f"*seed1--{BACKEND}.attempt-*Z.json")
    old = json.loads(attempt.read_text())
    assert old["status"] == "failed" and Path(old["log"]).name.endswith(".log")
    assert Path(old["log"]).exists() and Path(old["log"]).parent == run_dir / "logs"


def test_resume_refuses_edited_scenarios(tmp_path, cells):
    out = tmp_path / "r"
    assert run(cells, out).returncode == 0
    run_dir = one_run(out)
    # A setting the harness learnt after the run started reads as its default there.
    manifest = json.loads((run_dir / "run.json").read_text())
    for settings in manifest["settings"].values():
        for key in ("jax_preallocate", "loss", "metrics", "python_path"):
            del settings[key]
    (run_dir / "run.json").write_text(json.dumps(manifest))
    assert run(cells, out, "--resume", str(run_dir)).returncode == 0
    before = sorted(p.name for p in run_dir.rglob("*"))
    cells.write_text(CELLS.replace("repeats = 1", "repeats = 1\nbatch_size = 64"))
    proc = run(cells, out, "--resume", str(run_dir))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "cells/seed0" in proc.stderr and "batch_size = 32, now 64" in proc.stderr
    other = tmp_path / "other.toml"
    other.write_text(CELLS)
    proc = harness("run", str(other), "--backend", BACKEND, "--resume", str(run_dir))
    assert proc.returncode == 2 and "scenarios" in proc.stderr and proc.stderr.count("\n") == 1
    assert sorted(p.name for p in run_dir.rglob("*")) == before  # nothing written


def test_ctrl_c_then_resume_finishes_only_what_is_missing(tmp_path):
    sc = tmp_path / "three.toml"
    sc.write_text("[defaults]\nrepeats = 1\n[matrix]\nepochs = [1, 300, 2]\n")
    tiny = tmp_path / "tiny.toml"
    tiny.write_text("[defaults]\nrepeats = 1\n")
    out = tmp_path / "r"
    args = ("run", str(tiny), str(sc), "--backend", BACKEND, "--out", str(out))
    proc = start(*args)
    wait_for(proc, "three/e300")
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert f"--resume {one_run(out)}" in stderr
    docs = docs_in(one_run(out))
    assert {k: d["status"] for k, d in docs.items()} == {
        "default": "ok", "e1": "ok", "e300": "interrupted"
    }  # fmt: skip
    assert docs["e300"]["reason"].startswith("interrupted by the user during ")
    first = next(one_run(out).rglob(f"default--{BACKEND}.json"))
    mtime = first.stat().st_mtime_ns

    proc = harness(*args, "--resume", str(one_run(out)))
    assert proc.returncode == 0, proc.stderr
    docs = docs_in(one_run(out))
    assert {k: d["status"] for k, d in docs.items()} == {
        "default": "ok", "e1": "ok", "e300": "ok", "e2": "ok"
    }  # fmt: skip
    assert first.stat().st_mtime_ns == mtime  # a finished cell is never run or written again


def test_ab_resume_refuses_edited_scenarios(tmp_path):
    sc = tmp_path / "ab.toml"
    sc.write_text("[defaults]\nrepeats = 2\n")
    args = ("ab", str(sc), "--rounds", "4", "--backend", BACKEND)
    assert harness(*args, "--out", str(tmp_path / "r")).returncode == 0
    (ab_dir,) = (tmp_path / "r").iterdir()
    next(ab_dir.rglob(f"default--{BACKEND}.json")).unlink()
    sc.write_text("[defaults]\nrepeats = 2\nbatch_size = 64\n")
    proc = harness(*args, "--resume", str(ab_dir))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "batch_size = 32, now 64" in proc.stderr


def test_resume_into_a_folder_that_is_no_run_writes_nothing(tmp_path, cells):
    (tmp_path / "some-folder").mkdir()
    (tmp_path / "some-folder" / "keep.txt").write_text("mine")
    for cmd in ("run", "ab"):
        proc = harness(
            cmd, str(cells), "--backend", BACKEND, "--resume", str(tmp_path / "some-folder")
        )
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
        manifest = "run.json" if cmd == "run" else "ab.json"
        assert proc.stderr.endswith(f"is not a {'run' if cmd == 'run' else 'A/B run'} folder "
                                    f"(no {manifest})\n"), proc.stderr  # fmt: skip
    assert [p.name for p in (tmp_path / "some-folder").iterdir()] == ["keep.txt"]


@pytest.mark.parametrize("manifest", ["[]", '{"backends": null}', "{", '{"cells": 7}'])
def test_resume_of_a_malformed_manifest_is_one_line(tmp_path, cells, manifest):
    out = tmp_path / "r"
    assert run(cells, out).returncode == 0
    run_dir = one_run(out)
    (run_dir / "run.json").write_text(manifest)
    proc = run(cells, out, "--resume", str(run_dir))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("harness: --resume: ") and "Traceback" not in proc.stderr


# --- process safety ---------------------------------------------------------------------------


def test_worker_sigkilled_mid_fit_is_recorded_and_the_next_cell_runs(tmp_path):
    sc = tmp_path / "kill.toml"
    sc.write_text("[defaults]\nrepeats = 1\nepochs = 300\ntrain_samples = 640\n")
    after = tmp_path / "after.toml"
    after.write_text("[defaults]\nrepeats = 1\n")
    proc = start("run", str(sc), str(after), "--backend", BACKEND, "--out", str(tmp_path / "r"))
    wait_for(proc, "kill/default  fit 1/1")
    (worker,) = psutil.Process(proc.pid).children()
    worker.send_signal(signal.SIGKILL)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 1, stderr
    docs = {
        f.parent.name: json.loads(f.read_text()) for f in one_run(tmp_path / "r").glob("*/*.json")
    }
    assert docs["kill"]["status"] == "failed"
    assert docs["kill"]["reason"] == "worker killed by SIGKILL during fit 1/1"
    assert docs["kill"]["data"]["train_samples"] == 640  # what it had measured survives
    assert docs["after"]["status"] == "ok"  # the cell after it still ran


def test_sigterm_is_handled_like_ctrl_c(tmp_path):
    """A CI runner's cancel sends SIGTERM to the harness."""
    sc = tmp_path / "term.toml"
    sc.write_text("[defaults]\nrepeats = 1\nepochs = 300\n")
    proc = start("run", str(sc), "--backend", BACKEND, "--out", str(tmp_path / "r"))
    wait_for(proc, " fit 1/1")
    (worker,) = psutil.Process(proc.pid).children()
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    (doc,) = docs_in(one_run(tmp_path / "r")).values()
    assert doc["status"] == "interrupted" and doc["finished"] is not None
    assert not alive(worker.pid)  # no worker left behind


def test_stopping_a_worker_kills_its_whole_process_group(tmp_path):
    """A time limit stops the worker's whole group: a child that ignores SIGTERM outlived its
    leader before."""
    sc = tmp_path / "slow.toml"
    sc.write_text("[defaults]\nrepeats = 1\nepochs = 100\ntime_limit = 1.0\n")
    pid_file = tmp_path / "child.pid"
    proc = run(sc, tmp_path / "r", fit_seconds=1, child=str(pid_file))
    assert proc.returncode == 1
    (doc,) = docs_in(one_run(tmp_path / "r")).values()
    assert doc["reason"].startswith("time limit of 1 s exceeded")
    assert gone_within([int(pid_file.read_text())], 3)


def test_orchestrator_killed_takes_its_worker_along(tmp_path):
    sc = tmp_path / "long.toml"
    sc.write_text("[defaults]\nrepeats = 1\nepochs = 100\n")
    proc = start("run", str(sc), "--backend", BACKEND, "--out", str(tmp_path / "r"), fit_seconds=1)
    wait_for(proc, " fit 1/1")
    (worker,) = psutil.Process(proc.pid).children()
    proc.kill()
    proc.communicate(timeout=30)
    assert gone_within([worker.pid], 5), "the worker outlived its orchestrator"


def test_a_worker_behind_an_interpreter_wrapper_runs_and_dies_with_the_harness(tmp_path):
    """A side's interpreter may be a shell wrapper that does not exec: the worker's parent is
    then the wrapper, not the harness. It must neither kill itself at start nor outlive the
    harness."""
    wrapper = tmp_path / "python-wrapper"
    wrapper.write_text(f'#!/bin/sh\n"{sys.executable}" "$@"\n')
    wrapper.chmod(0o755)
    sc = tmp_path / "ab.toml"
    sc.write_text("[defaults]\nrepeats = 2\n")
    proc = harness("ab", str(sc), "--rounds", "4", "--backend", BACKEND, "--out",
                   str(tmp_path / "r"), "--baseline-python", str(wrapper))  # fmt: skip
    docs = [json.loads(f.read_text()) for f in (tmp_path / "r").rglob(f"default--{BACKEND}.json")]
    assert len(docs) == 9 and {d["status"] for d in docs} == {"ok"}, proc.stderr  # 8 + min_time's
    assert proc.returncode == 0, proc.stderr

    sc.write_text("[defaults]\nrepeats = 1\nepochs = 100\n")
    proc = start("ab", str(sc), "--rounds", "4", "--backend", BACKEND, "--out",
                 str(tmp_path / "r2"), "--baseline-python", str(wrapper), fit_seconds=1)  # fmt: skip
    wait_for(proc, " fit 1/1")
    (shell,) = psutil.Process(proc.pid).children()
    workers = shell.children()
    assert workers  # the real worker, below the wrapper
    proc.kill()
    proc.communicate(timeout=30)
    assert gone_within([w.pid for w in workers], 5), "the worker outlived its harness"


def test_second_ctrl_c_does_not_abort_cleanup(tmp_path):
    """The worker ignores SIGTERM, so stopping it takes seconds; a second Ctrl-C meanwhile
    used to abandon the worker and leave its result unfinished."""
    sc = tmp_path / "long.toml"
    sc.write_text("[defaults]\nrepeats = 1\nepochs = 100\n")
    out = tmp_path / "r"
    proc = start("run", str(sc), "--backend", BACKEND, "--out", str(out), fit_seconds=1,
                 ignore_sigterm=True)  # fmt: skip
    wait_for(proc, " fit 1/1")
    (worker,) = psutil.Process(proc.pid).children()
    proc.send_signal(signal.SIGINT)
    time.sleep(1.0)  # the runner now waits for the worker to stop
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    (doc,) = docs_in(one_run(out)).values()
    assert doc["status"] == "interrupted" and doc["finished"] is not None
    assert not alive(worker.pid)


def test_calibrate_stops_at_ctrl_c(tmp_path):
    sc = tmp_path / "long.toml"
    sc.write_text("[defaults]\nrepeats = 4\nepochs = 100\n")
    out = tmp_path / "r"
    proc = start("calibrate", str(sc), "--backend", BACKEND, "--out", str(out), "--runs", "3",
                 fit_seconds=0.5)  # fmt: skip
    wait_for(proc, " fit 1/4")
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert [p.name.endswith("calibrate1") for p in out.iterdir()] == [True]  # no second run


# --- bad output paths and empty inputs --------------------------------------------------------


@pytest.mark.parametrize("where", ["file", "under-file", "read-only"])
def test_unusable_out_is_one_line_before_any_cell(tmp_path, cells, where):
    target = {
        "file": tmp_path / "a-file",
        "under-file": tmp_path / "a-file" / "results",
        "read-only": Path("/proc/harness-results"),
    }[where]
    (tmp_path / "a-file").write_text("not a folder")
    proc = harness("run", str(cells), "--backend", BACKEND, "--out", str(target))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith(f"harness: --out {target}") and proc.stderr.count("\n") == 1
    assert "[1/" not in proc.stderr  # no cell ran


def test_report_that_is_a_folder_is_one_line_before_any_cell(tmp_path, cells):
    proc = run(cells, tmp_path / "r", "--report", str(tmp_path))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr == f"harness: --report {tmp_path}: a folder, not a file\n"
    assert not (tmp_path / "r").exists()


def test_compare_of_folders_without_results_refuses(tmp_path):
    (tmp_path / "empty").mkdir()
    proc = harness("compare", str(tmp_path / "empty"))
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr == f"harness: no result files under {tmp_path / 'empty'}\n"


def test_gpu_beyond_those_the_runner_was_given_is_skipped_without_a_worker(tmp_path):
    """gpu:N counts within the runner's CUDA_VISIBLE_DEVICES (a CI runner's share), never
    escaping it: gpu:1 of a one-GPU share is skipped, and no worker starts."""
    sc = tmp_path / "gpus.toml"
    sc.write_text('[defaults]\nrepeats = 1\n[matrix]\ndevice = ["gpu:1"]\n')
    env = stub_env()
    env["CUDA_VISIBLE_DEVICES"] = "3"
    proc = subprocess.run(
        [*STUB_CLI, "run", str(sc), "--backend", BACKEND,
         "--out", str(tmp_path / "r")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    run_dir = one_run(tmp_path / "r")
    (doc,) = docs_in(run_dir).values()
    assert doc["status"] == "skipped" and doc["finished"] is not None
    assert doc["reason"].startswith("gpu:1 requested but the runner was given 1 GPU")
    assert not list(run_dir.glob("logs/*.log"))  # no worker was started


# --- multi-process cells (data_parallel_processes > 1) ------------------------------------

PROCS = "[defaults]\nrepeats = 1\ndata_parallel = 2\ndata_parallel_processes = 2\n"


def test_multi_process_cell_merges_every_process_into_one_result(tmp_path):
    sc = tmp_path / "mp.toml"
    sc.write_text(PROCS)
    proc = run(sc, tmp_path / "r")
    assert proc.returncode == 0, proc.stderr
    run_dir = one_run(tmp_path / "r")
    (doc,) = docs_in(run_dir).values()  # process 1's result is in logs/, out of reports
    assert doc["status"] == "ok"
    views = doc["distribution"]["process_results"]
    assert [(v["process_id"], v["status"]) for v in views] == [(0, "ok"), (1, "ok")]
    assert (
        views[1]["samples_per_sec"] == 1000.0 and doc["distribution"]["processes_elsewhere"] == []
    )
    task = json.loads(next((run_dir / "logs").glob("*.task.json")).read_text())
    assert task["processes_here"] == [0, 1]
    (other,) = (run_dir / "logs").glob("*.process1.json")
    assert json.loads(other.read_text())["status"] == "ok"


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        ("kill", "process 1 of 2 was killed by SIGKILL; the others were stopped (during fit 1/1)"),
        ("exit", "process 1 of 2 exited with code 3; the others were stopped (during fit 1/1)"),
    ],
)
def test_one_process_of_a_cell_dying_stops_them_all(tmp_path, how, reason):
    """The others would wait in a collective for ever: the runner stops them, and the cell
    fails with which process died and how."""
    sc = tmp_path / "mp.toml"
    sc.write_text(PROCS + "epochs = 2000\n")  # process 0 fits for 100 s unless stopped
    go = tmp_path / "go"
    opts = {"fail_process": 1, "fail_after": str(go)} if how == "exit" else {}
    proc = start("run", str(sc), "--backend", BACKEND, "--out", str(tmp_path / "r"), **opts)
    try:
        wait_for(proc, "mp/default  fit 1/1")
        workers = psutil.Process(proc.pid).children()
        assert len(workers) == 2
        if how == "kill":
            (one,) = [w for w in workers if "process1" in " ".join(w.cmdline())]
            one.send_signal(signal.SIGKILL)
        else:
            go.touch()  # process 1 exits with code 3 now
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:  # a failed wait must not leave the harness running
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1, stderr
    (doc,) = docs_in(one_run(tmp_path / "r")).values()
    assert (doc["status"], doc["reason"]) == ("failed", reason)
    assert gone_within([w.pid for w in workers], 3)  # no process left behind


def test_coordinator_starts_process_0_only_with_a_port_per_cell(tmp_path):
    """`--coordinator HOST:PORT`: process 0 of each multi-process cell here, the k-th such
    cell at PORT + k - 1 (a host a cell behind meets no one, never the wrong cell)."""
    sc = tmp_path / "mp.toml"
    sc.write_text(PROCS + "[matrix]\nseed = [0, 1]\n")
    proc = run(sc, tmp_path / "r", "--coordinator", "10.0.0.1:7000")
    assert proc.returncode == 0, proc.stderr
    docs = docs_in(one_run(tmp_path / "r"))
    assert {k: d["joined"] for k, d in docs.items()} == {
        "seed0": "10.0.0.1:7000",
        "seed1": "10.0.0.1:7001",
    }
    for d in docs.values():
        assert d["distribution"]["processes_elsewhere"] == [1]
        assert [v["process_id"] for v in d["distribution"]["process_results"]] == [0]
    assert not list(one_run(tmp_path / "r").glob("logs/*.process1.*"))  # not started here


@pytest.mark.parametrize("address", ["", "7000", "host:", "host:x", " :80", "host:65535", "a b:80"])
def test_bad_coordinator_is_one_line(tmp_path, address):
    sc = tmp_path / "mp.toml"
    sc.write_text(PROCS + "[matrix]\nseed = [0, 1]\n")
    proc = run(sc, tmp_path / "r", "--coordinator", address)
    assert proc.returncode == 2 and proc.stderr.startswith(f"harness: --coordinator {address}:")
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "r").exists()


def test_resume_of_a_multi_process_cell_sets_every_process_aside(tmp_path):
    """A cell whose orchestrator died before it merged the processes is run again, and the
    older attempt's process files go aside with it, never merged into the new result."""
    sc = tmp_path / "mp.toml"
    sc.write_text(PROCS)
    assert run(sc, tmp_path / "r").returncode == 0
    run_dir = one_run(tmp_path / "r")
    (path,) = [f for f in run_dir.rglob("*.json") if "logs" not in f.parts and f.name != "run.json"]
    doc = json.loads(path.read_text())
    del doc["distribution"]  # as process 0 wrote it, before the merge
    path.write_text(json.dumps(doc))
    (old,) = (run_dir / "logs").glob("*.process1.json")
    stale = json.loads(old.read_text())
    stale["train"]["samples_per_sec"]["median"] = 1.0
    old.write_text(json.dumps(stale))
    proc = run(sc, tmp_path / "r", "--resume", str(run_dir))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(path.read_text())
    assert [v["samples_per_sec"] for v in doc["distribution"]["process_results"]] == [1000.0] * 2
    (aside,) = (run_dir / "logs").glob("*.attempt-*.process1.json")
    assert json.loads(aside.read_text())["train"]["samples_per_sec"]["median"] == 1.0
    assert list((run_dir / "logs").glob("*.attempt-*.process1.log"))


def test_a_process_that_ended_unsupported_gives_the_cell_its_status(tmp_path, monkeypatch):
    """When one process ends unsupported and another stays (waiting for it in a collective),
    the runner stops it after PEER_GRACE, and the cell is unsupported, not failed."""
    from harness import results
    from harness.orchestrate import processes
    from harness.orchestrate import runner as runner_mod

    monkeypatch.setattr(processes, "PEER_GRACE", 0.5)
    sc = tmp_path / "mp.toml"
    sc.write_text(PROCS)
    from harness import scenario

    loaded = scenario.load(sc)
    job = runner_mod.Job(loaded, loaded.cells[0], BACKEND)
    quiet = open(os.devnull, "w")  # noqa: SIM115 - closed at the end
    run = runner_mod.Runner([job], tmp_path / "r", environment={}, progress_stream=quiet)
    run.run_dir.mkdir(parents=True)
    out0 = tmp_path / "p0.json"
    out1 = tmp_path / "p1.json"
    doc = results.new_result(loaded.cells[0].to_json(), BACKEND, {"name": "mp"})
    doc.update(status="unsupported", reason="no such engine", finished=results.utc_now())
    results.write_json_atomic(out1, doc)
    stays = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True
    )
    ends = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    state = {"phase": "fit"}
    started = time.monotonic()
    outcome = run._watch([(0, stays, out0), (1, ends, out1)], 1, job, state, started, [])
    processes.kill_all([stays, ends])
    assert 0.5 <= time.monotonic() - started < 10
    assert outcome == "process 1 of 2 ended unsupported: no such engine; the others were stopped"
    assert state["peer_status"] == "unsupported"
    quiet.close()


def test_worker_join_meets_the_coordinator_cell_by_cell(tmp_path):
    """A joiner waits for the coordinator at its cell's port, and skips the cells the
    coordinator is already past (a resumed run, a cell skipped there)."""
    import socket

    from harness import scenario
    from harness.orchestrate import join
    from harness.orchestrate import runner as runner_mod

    sc = tmp_path / "mp.toml"
    sc.write_text(PROCS + "[matrix]\nseed = [0, 1, 2]\n")
    loaded = scenario.load(sc)
    jobs = [runner_mod.Job(loaded, c, BACKEND) for c in loaded.cells]
    with socket.socket() as first, socket.socket() as third:
        first.bind(("127.0.0.1", 0))
        base = first.getsockname()[1]
        third.bind(("127.0.0.1", base + 2))  # the coordinator at the third cell
        third.listen()
        quiet = open(os.devnull, "w")  # noqa: SIM115 - closed below
        run = join.JoinRunner(jobs, tmp_path / "r", environment={}, progress_stream=quiet,
                              coordinator=f"127.0.0.1:{base}", processes_here=[1], wait=0.6)  # fmt: skip
        assert run.catch_up(jobs[0]) == (
            f"the coordinator is already at mp/seed2--{BACKEND} (127.0.0.1:{base + 2}): this "
            "cell of the run is behind it"
        )
        assert run.catch_up(jobs[2]) is None  # its own cell: run it
        third.close()
        assert (
            run.catch_up(jobs[2]) == f"no coordinator listened at 127.0.0.1:{base + 2} within 0.6 s"
        )
        quiet.close()


# --- --fail-on-skip: a GPU runner whose CUDA broke must not go green ---------------------------

NOT_RUN = {
    "seed1": {"status": "skipped", "phase": "device", "reason": "gpu requested but no GPU"},
    "seed2": {"status": "unsupported", "phase": "data", "reason": "no such engine"},
}


def test_fail_on_skip_exits_1_naming_the_cells_after_everything_is_written(tmp_path, cells):
    proc = run(cells, tmp_path / "plain", outcomes=NOT_RUN)
    assert proc.returncode == 0, proc.stderr  # skipped and unsupported are no failure by default
    report = tmp_path / "report.md"
    proc = run(cells, tmp_path / "r", "--fail-on-skip", "--report", str(report), outcomes=NOT_RUN)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.endswith(
        f"--fail-on-skip: cells/seed1--{BACKEND} skipped: gpu requested but no GPU\n"
        f"--fail-on-skip: cells/seed2--{BACKEND} unsupported: no such engine\n"
        "--fail-on-skip: 2 cell(s) ended skipped or unsupported\n"
    )
    # nothing recorded is lost: every result, the report of this run and the --report file
    docs = docs_in(one_run(tmp_path / "r"))
    assert {k: d["status"] for k, d in docs.items()} == {
        "seed0": "ok", "seed1": "skipped", "seed2": "unsupported"
    }  # fmt: skip
    assert "| skipped |" in proc.stdout and "| skipped |" in report.read_text()


def test_fail_on_skip_passes_a_run_that_skipped_nothing(tmp_path):
    sc = tmp_path / "one.toml"
    sc.write_text("[defaults]\nrepeats = 1\n")
    proc = run(sc, tmp_path / "r", "--fail-on-skip")
    assert proc.returncode == 0, proc.stderr
    assert "--fail-on-skip" not in proc.stderr


def test_ab_fail_on_skip_names_each_cell_once_with_its_workers(tmp_path):
    sc = tmp_path / "ab.toml"
    sc.write_text("[defaults]\nrepeats = 1\nmin_time = 0\nseed = 1\n")
    args = ("ab", str(sc), "--rounds", "4", "--backend", BACKEND, "--out", str(tmp_path / "r"))
    proc = harness(*args, "--fail-on-skip", outcomes={"default": NOT_RUN["seed1"]})
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.endswith(
        f"--fail-on-skip: ab/default--{BACKEND} skipped (8 workers): gpu requested but no GPU\n"
        "--fail-on-skip: 1 cell(s) ended skipped or unsupported\n"
    )


def test_a_cell_failed_in_its_device_phase_quotes_the_cuda_libraries_its_log_names(tmp_path):
    """TensorFlow says which CUDA libraries it could not load only in its C++ log: the runner
    adds those lines to the reason of a cell that failed in its device phase."""
    sc = tmp_path / "gpu.toml"
    sc.write_text("[defaults]\nrepeats = 1\n")
    log = (
        "2026-01-01 10:00:00.000001: I external/local_xla/xla/tsl/cuda/cudart_stub.cc:32] "
        "Could not find cuda drivers on your machine, GPU will not be used.\n"
        "I0000 00:00:1.000002 1 dso_loader.cc:97] Could not load dynamic library "
        "'libcudnn.so.9'; dlerror: libcudnn.so.9: cannot open shared object file\n"
        "unrelated line\n"
        "W0000 00:00:1.000003 1 gpu_device.cc:2342] Cannot dlopen some GPU libraries. "
        "Skipping registering GPU devices...\n"
    )
    broken = {"status": "failed", "phase": "device", "reason": "GpuUnusable in device: no",
              "stderr": log}  # fmt: skip
    proc = run(sc, tmp_path / "r", outcomes={"default": broken})
    assert proc.returncode == 1
    (doc,) = docs_in(one_run(tmp_path / "r")).values()
    assert doc["reason"] == (
        "GpuUnusable in device: no; the worker's log: Could not find cuda drivers on your "
        "machine, GPU will not be used. | Could not load dynamic library 'libcudnn.so.9'; "
        "dlerror: libcudnn.so.9: cannot open shared object file | Cannot dlopen some GPU "
        "libraries. Skipping registering GPU devices..."
    )
    assert doc["reason"] in proc.stderr  # the progress line says it too
    # a failure in another phase is left as the worker wrote it
    proc = run(sc, tmp_path / "r2", outcomes={"default": {**broken, "phase": "fit"}})
    (doc,) = docs_in(one_run(tmp_path / "r2")).values()
    assert doc["reason"] == "GpuUnusable in device: no"
