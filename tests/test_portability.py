"""The portability matrix: hand-made checks render exactly; real cross-backend loads where
more than one backend is installed (tox's test-jax environment also holds torch for this)."""

from __future__ import annotations

import json
import sys

import pytest
from conftest import SELECTED, run_cli

from harness import backends
from harness.report.markdown import portability_markdown


def check(src, dst, status="ok", diff=1e-7, cell="c1", reason=None):
    return {
        "scenario": "s", "cell": cell, "source_backend": src, "target_backend": dst,
        "status": status, "max_abs_diff": diff, "reason": reason, "checked": "2026-11-27T00:00:00Z",
    }  # fmt: skip


def test_matrix_markdown_exact():
    text = portability_markdown(
        [
            check("tensorflow", "jax", diff=3e-7),
            check("tensorflow", "jax", diff=5e-7, cell="c2"),
            check("jax", "torch", status="failed", reason="load failed: ValueError: x"),
            check("torch", "jax", status="failed", reason="predictions differ", cell="c0"),
            {**check("torch", "jax", status="failed", reason="load failed: TypeError: t"),
             "compile_false": {"status": "ok", "max_abs_diff": 1e-7}},
        ]
    )  # fmt: skip
    lines = text.splitlines()
    assert lines[4] == (
        "| tensorflow | (same backend: see reload) | 2/2 agree (max diff 5.0e-07) | not checked |"
    )
    assert lines[5] == (
        "| jax | not checked | (same backend: see reload) | 0/1 agree; s/c1: load failed: ValueError: x |"
    )
    # only the models that did not load were loaded again, with compile=False
    assert lines[6] == (
        "| torch | not checked | 0/2 agree; 1/1 that did not load agree with compile=False "
        "(no optimizer); s/c0: predictions differ | (same backend: see reload) |"
    )
    assert portability_markdown([]) == ""


def test_matrix_says_which_models_were_not_checked_and_why():
    """A model whose module needs --trust-code, or whose file was refused, is not checked: the
    matrix says so, in markdown and html alike (one definition, sections.portability)."""
    from harness.report.html import render_html

    trust = {"status": "not checked", "reason": "needs --trust-code", "max_abs_diff": None}
    checks = [
        {**check("tensorflow", "jax"), **trust},
        check("jax", "torch", diff=2e-7),
        {**check("jax", "torch", cell="c2"), **trust},
        {**check("torch", "jax", cell="c3"), **trust},
        check("torch", "jax", status="failed", reason="load failed: ValueError: x"),
    ]
    lines = portability_markdown(checks).splitlines()
    assert lines[4] == (
        "| tensorflow | (same backend: see reload) | not checked: needs --trust-code | not checked |"
    )
    assert lines[5] == (
        "| jax | not checked | (same backend: see reload) | 1/1 agree (max diff 2.0e-07); "
        "1 not checked: needs --trust-code |"
    )
    assert lines[6] == (
        "| torch | not checked | 0/1 agree; s/c1: load failed: ValueError: x; "
        "1 not checked: needs --trust-code | (same backend: see reload) |"
    )
    page = render_html([], checks)
    assert page.count(">not checked: needs --trust-code<") == 1
    assert page.count("; 1 not checked: needs --trust-code<") == 2


# The backend under test first, then another one installed beside it.
PAIR = list(dict.fromkeys([*SELECTED, *backends.installed_backends()]))[:2]


@pytest.mark.backend
@pytest.mark.skipif(len(PAIR) < 2, reason="loading across backends needs two installed here")
def test_models_load_across_backends(once, tmp_path):
    a, b = PAIR  # where the environment holds two backends (tox's test-jax: jax and torch)
    proc = run_cli("run", "scenarios/smoke.toml", "--backend", f"{a},{b}", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-2000:]
    # b as another environment's interpreter would be named (here: this one); the third
    # backend's environment either not made yet, or without keras: noted, nothing recorded
    (c,) = [n for n in backends.NAMES if n not in PAIR]
    missing = tmp_path / "no-env" / "bin" / "python"
    args = ["portability", str(tmp_path), "--backend", a, "--python", f"{b}={sys.executable}"]
    proc = run_cli(*args, "--python", f"{c}={missing}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (
        f"note: --python {c}={missing}: no such interpreter (yet); {c} not checked" in proc.stderr
    )
    assert f"{a} -> {b}: ok" in proc.stderr and f"{b} -> {a}: ok" in proc.stderr
    broken = tmp_path / "broken-python"
    broken.write_text(
        "#!/bin/sh\necho \"ModuleNotFoundError: No module named 'keras'\" >&2\nexit 1\n"
    )
    broken.chmod(0o755)
    # c alone: the loads between a and b are done above (each load a worker's import)
    proc = run_cli("portability", str(tmp_path), "--backend", c, "--python", f"{c}={broken}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (
        f"note: {c} not checked: {broken} could not run the checks (exit 1: "
        "ModuleNotFoundError: No module named 'keras')" in proc.stderr
    )
    proc = run_cli(*args, "--python", f"{b}={broken}")
    assert proc.returncode == 2 and f"{b} is named twice" in proc.stderr
    files = sorted((tmp_path / "portability").glob("*.json"))  # nothing under c
    assert [f.name for f in files] == sorted(
        [f"smoke--default--{a}--to-{b}.json", f"smoke--default--{b}--to-{a}.json"]
    )
    for f in files:
        doc = json.loads(f.read_text())
        assert (
            doc["status"] == "ok" and doc["max_abs_diff"] <= 1e-5 and doc["argmax_agreement"] == 1.0
        )
        assert doc["target_versions"] == backends.backend_versions(doc["target_backend"])
    proc = run_cli("compare", str(tmp_path))
    assert "## Portability" in proc.stdout and "1/1 agree" in proc.stdout

    # A .keras whose optimizer names a module the loading backend lacks (as keras 3.15.1's
    # do when saved under torch, for an environment without torch): the full load fails with
    # Keras' reason, the model itself still loads with compile=False, and the matrix says both.
    (saved,) = tmp_path.glob(f"*/models/smoke--default--{b}.keras")
    _rename_optimizer_module(saved, "keras.src.backend.torch.optimizers.torch_gone")
    proc = run_cli("portability", str(tmp_path), "--backend", a)
    assert proc.returncode == 1, proc.stderr[-2000:]
    doc = json.loads((tmp_path / "portability" / f"smoke--default--{b}--to-{a}.json").read_text())
    assert doc["status"] == "failed" and "torch_gone" in doc["reason"], doc
    assert doc["compile_false"]["status"] == "ok", doc
    assert "; with compile=False: ok" in proc.stderr
    proc = run_cli("compare", str(tmp_path))
    assert "0/1 agree; 1/1 that did not load agree with compile=False (no optimizer)" in proc.stdout


def _rename_optimizer_module(path, module):
    """Rewrites the optimizer's module in a .keras file's config.json, all else as saved."""
    import zipfile

    with zipfile.ZipFile(path) as z:
        members = {info: z.read(info) for info in z.infolist()}
    with zipfile.ZipFile(path, "w") as z:
        for info, data in members.items():
            if info.filename == "config.json":
                config = json.loads(data)
                config["compile_config"]["optimizer"]["module"] = module
                data = json.dumps(config).encode()
            z.writestr(info, data)


def test_a_malformed_check_file_is_one_line_and_csv_does_not_read_checks(tmp_path):
    from factories import result

    from harness import results

    results.write_json_atomic(tmp_path / "run" / "s" / "bs32--jax.json", result("jax", [1.0]))
    bad = tmp_path / "portability" / "bad.json"
    bad.parent.mkdir()
    bad.write_text(json.dumps({"schema": results.PORTABILITY_SCHEMA, "scenario": "s"}))
    proc = run_cli("compare", str(tmp_path))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr == f"harness: {bad}: key 'cell': missing from a portability check\n"
    proc = run_cli("compare", str(tmp_path), "--format", "csv")
    assert proc.returncode == 0 and proc.stdout.startswith("scenario,cell,backend"), proc.stderr
    bad.write_text("{")
    proc = run_cli("compare", str(tmp_path), "--format", "html")
    assert proc.returncode == 2 and f"harness: {bad}: unreadable portability check" in proc.stderr


def test_python_option_is_backend_equals_path(tmp_path):
    proc = run_cli("portability", str(tmp_path), "--python", "tf")
    assert proc.returncode == 2
    assert proc.stderr.startswith("harness: --python tf: expected BACKEND=PATH with BACKEND one of")
