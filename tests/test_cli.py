"""The command line as a user meets it: one-line errors, exit codes, nothing written on bad input."""

from __future__ import annotations

import json

import pytest
from conftest import ROOT, run_cli
from factories import result

from harness import backends, results
from harness.errors import UsageError


def test_bad_scenario_is_one_line_exit_2_and_writes_nothing(tmp_path):
    good = ROOT / "scenarios" / "smoke.toml"
    bad = tmp_path / "bad.toml"
    bad.write_text("[defaults]\nbatch_size = -4\n")
    out = tmp_path / "results"
    proc = run_cli("run", str(good), str(bad), "--out", str(out), "--backend", "all")
    assert proc.returncode == 2
    assert (
        proc.stderr
        == f"harness: {bad}: key 'defaults.batch_size': must be an integer >= 1, got -4\n"
    )
    assert "Traceback" not in proc.stderr
    assert not out.exists()  # validated in full before anything ran


def test_unknown_backend_and_missing_file(tmp_path):
    proc = run_cli("run", "scenarios/smoke.toml", "--backend", "mxnet", "--out", str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.startswith(
        "harness: --backend: unknown backend 'mxnet'; accepted: tensorflow, jax, torch"
    )
    proc = run_cli("run", str(tmp_path / "nope.toml"))
    assert (
        proc.returncode == 2 and proc.stderr == f"harness: {tmp_path / 'nope.toml'}: no such file\n"
    )


def test_resolve_backends_rules(monkeypatch):
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    assert backends.resolve_backends(None, ["jax"]) == ["jax"]
    assert backends.resolve_backends("all", ["jax", "torch"]) == ["jax", "torch"]
    assert backends.resolve_backends("tf,jax", ["tensorflow", "jax"]) == ["tensorflow", "jax"]
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    assert backends.resolve_backends(None, ["jax", "torch"]) == ["torch"]
    for requested, installed, message in [
        ("torch", ["jax"], "--backend: backend 'torch' is not installed here (installed: jax)"),
        ("all", [], "no Keras backend is installed"),
    ]:
        try:
            backends.resolve_backends(requested, installed)
        except UsageError as exc:
            assert str(exc).startswith(message), str(exc)
        else:
            raise AssertionError("expected a UsageError")
    monkeypatch.delenv("KERAS_BACKEND")
    try:
        backends.resolve_backends(None, ["jax", "torch"])
    except UsageError as exc:
        assert "several backends are installed (jax, torch)" in str(exc)
    else:
        raise AssertionError("expected a UsageError")


def test_validate_and_schema(tmp_path):
    proc = run_cli("validate", "scenarios/batch-sweep.toml")
    assert proc.returncode == 0
    assert proc.stdout == "scenarios/batch-sweep.toml: ok, 3 cell(s): bs32, bs128, bs512\n"
    proc = run_cli("schema")
    assert proc.returncode == 0
    assert json.loads(proc.stdout) == json.loads((ROOT / "scenario.schema.json").read_text())


def test_compare_formats_and_bad_files(tmp_path):
    doc = result("jax", [100.0, 110.0, 90.0])
    results.write_json_atomic(tmp_path / "run" / "a.json", doc)
    proc = run_cli("compare", str(tmp_path), "--format", "csv")
    assert proc.returncode == 0
    header, row = proc.stdout.splitlines()
    assert header.startswith("scenario,cell,backend,")
    assert row.startswith("sweep,bs32,jax,0.10.2,ok,,synthetic,numpy,32,adam,cpu,100.0,")
    out = tmp_path / "report.md"
    proc = run_cli("compare", str(tmp_path), "--out", str(out))
    assert proc.returncode == 0 and "## sweep" in out.read_text()
    assert "| bs32 | jax 0.10.2 | ok |" in out.read_text()
    corrupt = tmp_path / "only" / "x.json"
    corrupt.parent.mkdir()
    corrupt.write_text("{not json")
    proc = run_cli("compare", str(corrupt.parent))
    assert proc.returncode == 2
    proc = run_cli("compare", str(tmp_path / "missing"))
    assert (
        proc.returncode == 2
        and proc.stderr == f"harness: {tmp_path / 'missing'}: no such file or folder\n"
    )


def test_existing_result_is_never_overwritten(tmp_path):
    path = tmp_path / "r.json"
    results.write_json_atomic(path, {"a": 1})
    try:
        results.write_json_atomic(path, {"a": 2})
    except FileExistsError:
        pass
    else:
        raise AssertionError("overwrote a result")
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temporary file left behind


def test_monitor_prints_dmon_lines():
    proc = run_cli("monitor", "--count", "2", "--interval", "0.1")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split() == [
        "#",
        "gpu",
        "pwr",
        "gtemp",
        "sm",
        "mem",
        "fb",
        "mclk",
        "pclk",
        "cpu",
        "pcpu",
        "rss",
    ]
    assert len(lines) == 4
    proc = run_cli("monitor", "--pid", "999999999")
    assert (
        proc.returncode == 2 and proc.stderr == "harness monitor: no process with pid 999999999\n"
    )


@pytest.mark.backend  # asks every backend installed in this environment
def test_env_reports_backends_and_nvml():
    proc = run_cli("env", "--json")
    assert proc.returncode == 0, proc.stderr
    env = json.loads(proc.stdout)
    status = env["gpu"]["status"]
    assert status == "ok" or status.startswith("NVML unavailable"), status
    for backend, info in env["backend_devices"].items():
        assert "error" not in info, (backend, info)
        assert info["devices"], backend


def test_resume_of_a_run_recorded_before_min_time_reads_it_as_it_ran(tmp_path):
    """A run recorded before min_time existed measured exactly its epochs (min_time 0): a
    scenario asking for that resumes; one now measuring for a second is another experiment."""
    from harness import scenario
    from harness.orchestrate import manifest
    from harness.orchestrate.jobs import plan

    exact = tmp_path / "exact.toml"
    exact.write_text("[defaults]\nmin_time = 0\n")
    timed = tmp_path / "timed.toml"
    timed.write_text('name = "exact"\n[defaults]\n')
    for path, refused in ((exact, False), (timed, True)):
        jobs, _ = plan([scenario.load(path)], ["jax"])
        settings = manifest.plan_record(jobs)
        for cell in settings.values():
            del cell["min_time"]  # as an older harness recorded it
        started = {"backends": ["jax"], "settings": settings}
        if refused:
            with pytest.raises(UsageError, match="min_time = 0.0, now 1.0"):
                manifest.check_resume(started, tmp_path, ["jax"], jobs)
        else:
            manifest.check_resume(started, tmp_path, ["jax"], jobs)
