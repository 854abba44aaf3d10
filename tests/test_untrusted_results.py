"""Result files are data (issue 23): one downloaded from another machine never names a path to
write outside the folder given. The names the harness builds paths from are checked when a
result is read, and the writers refuse a destination outside their folder.

Hand-made result files, and commands that start no backend: seconds in all.
"""

from __future__ import annotations

import argparse
import json

import pytest
from conftest import run_cli
from factories import result

from harness import results, scenario
from harness.errors import UsageError, UserError
from harness.results import ResultError

RULE = "is not a safe name (letters, digits, . _ - = + only, not starting with a dot)"


def _write(path, doc):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


# --- 2. names that build paths are checked when a result is read --------------------------------


@pytest.mark.parametrize(
    "field, value",
    [("run_id", "../.."), ("run_id", "/etc"), ("scenario.name", ".."), ("cell.id", "../x"),
     ("backend", "jax/../../x"), ("cell.id", ".hidden"), ("run_id", 5)],
)  # fmt: skip
def test_a_result_naming_a_path_is_refused_with_one_line(tmp_path, field, value):
    doc = result("jax", [1.0])
    where, _, key = field.rpartition(".")
    (doc[where] if where else doc)[key] = value
    path = _write(tmp_path / "x" / "y.json", doc)
    with pytest.raises(ResultError) as err:
        results.read_result(path)
    assert str(err.value) == f"{path}: field '{field}': {value!r} {RULE}"


def test_every_name_the_harness_writes_reads_back():
    """Run ids (plain, A/B, joining, sharded, calibration), scenario names and cell ids as the
    harness makes them pass the reader's check."""
    from harness.orchestrate.runner import new_run_id

    run = new_run_id(["tensorflow", "jax", "torch"], clock=lambda: 0)
    cal = results.CALIBRATION_SUFFIX
    for name in (run, f"ab-{run}", f"join-{run}", f"{run}-shard2of3", f"{run}{cal}1",
                 f"ab-{run}{cal}2", "my_scenario.v2", "bs32-adam-lr0.001-gpu0-metrics+mae"):  # fmt: skip
        assert results.is_safe_name(name), name
    values = [("batch_size", 32), ("model", "pkg.mod:build"), ("pipeline", "tf.data"),
              ("metrics", ("accuracy", "mae")), ("device", "gpu:1"), ("step_delay_ms", 0.5),
              ("optimizer", scenario.Named("sgd", (("learning_rate", 0.01),))),
              ("jit_compile", True), ("dataset", ".odd value/..")]  # fmt: skip
    for item in values:
        cell_id = scenario._cell_id([item])
        assert results.is_safe_name(cell_id), (item, cell_id)
    assert results.is_safe_name(scenario._cell_id(values))


def test_a_resumed_run_folder_gives_a_safe_run_id(tmp_path, monkeypatch):
    """The run id is the run folder's name: `--resume .` names it by its real name, and a
    folder renamed to something a reader would refuse is refused before anything runs."""
    from harness.orchestrate.manifest import run_dir_for

    run = tmp_path / "20260101T000000Z-jax"
    _write(run / "run.json", {})
    monkeypatch.chdir(run)
    args = argparse.Namespace(resume=".", out=None)
    assert run_dir_for(args, ["jax"]).name == run.name
    odd = tmp_path / "my run"
    run.rename(odd)
    with pytest.raises(UsageError) as err:
        run_dir_for(argparse.Namespace(resume=str(odd), out=None), ["jax"])
    assert str(err.value) == f"--resume: {odd}: the run folder's name 'my run' {RULE}"


def test_baseline_of_a_result_naming_a_path_writes_nothing(tmp_path):
    """A downloaded run whose run_id is '../../escape': one line, exit 2, nothing written."""
    run = tmp_path / "downloaded" / "run"
    bad = _write(run / "s" / "c--jax.json", result("jax", [1.0], run_id="../../escape"))
    into = tmp_path / "deep" / "er" / "baselines"
    before = sorted(tmp_path.rglob("*"))
    proc = run_cli("baseline", str(run), "--into", str(into))
    assert proc.returncode == 2
    assert proc.stderr == f"harness: {bad}: field 'run_id': '../../escape' {RULE}\n"
    assert sorted(tmp_path.rglob("*")) == before


def test_baseline_refuses_a_destination_outside_into(tmp_path, monkeypatch):
    """The second line of defence: a document the reader did not check (here, handed in)
    still cannot make a copy land outside --into."""
    from harness.gate import baseline

    src = _write(tmp_path / "run" / "s" / "c--jax.json", result("jax", [1.0]))
    doc = {**json.loads(src.read_text()), "run_id": "../../../escape", "_path": str(src)}
    monkeypatch.setattr(baseline, "load_results", lambda *a, **k: ([doc], []))
    into = tmp_path / "a" / "b" / "into"
    args = argparse.Namespace(run=src.parent.parent, into=into, add=False, replace=False)
    with pytest.raises(UserError) as err:
        baseline.main(args)
    assert str(err.value).startswith(f"{src}: the copy would go to {into}/")
    assert str(err.value).endswith(f", outside --into {into}; nothing written")
    assert not (tmp_path / "a").exists() and not (tmp_path / "escape").exists()
