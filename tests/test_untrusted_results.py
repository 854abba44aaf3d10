"""Result files are data (issue 23): one downloaded from another machine never runs code here
(``harness portability`` imports a model's own module only with ``--trust-code``), never names
a file to load outside the results folder, and never names a path to write outside the folder
given; and no environment variable makes the runner start another module than the worker.

Hand-made result files, and commands that start no backend: seconds in all.
"""

from __future__ import annotations

import json
import os
import sys

import pytest
from conftest import run_cli
from factories import result

from harness import backends, results, scenario
from harness.errors import UsageError, UserError
from harness.results import ResultError

RULE = "is not a safe name (letters, digits, . _ - = + only, not starting with a dot)"
PLANTED = """\
import pathlib
pathlib.Path({marker!r}).write_text("imported")


def build(settings):
    raise SystemExit("never called")
"""


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


def _set(doc, field, value):
    *where, key = field.split(".")
    node = doc
    for part in where:
        node = node.setdefault(part, {})
    node[key] = value


@pytest.mark.parametrize(
    "field, value, problem",
    [
        ("status", ["ok"], 'must be a string, got ["ok"]'),
        ("status", "done", "'done' is none of ok, failed, skipped, unsupported, interrupted"),
        ("cell.id", None, "must be a string, got null"),
        ("started", 1700000000, "must be a date string, got 1700000000"),
        ("environment", "box", 'must be an object, got "box"'),
        ("environment.git", "abc", 'must be an object, got "abc"'),
        ("ab", "x", 'must be an object, got "x"'),
        ("train", "fast", 'must be an object, got "fast"'),
        ("train.samples_per_sec", 5, "must be an object, got 5"),
        ("train.samples_per_sec.values", [100.0, 0.0], "must be a list of positive numbers"),
        ("train.samples_per_sec.values", [100.0, None], "must be a list of positive numbers"),
        ("train.samples_per_sec.median", "x", 'must be a number, got "x"'),
        ("workload", "w", 'must be an object, got "w"'),
        ("workload.parts", None, "must be an object, got null"),
    ],
)
def test_a_result_of_the_wrong_shape_is_one_line_never_a_traceback(tmp_path, field, value, problem):
    """Every field the gate, the history and the reports read is checked as the file is read:
    a malformed one is refused naming the file and the field (exit 2), where it crashed the
    commands (a traceback, exit 1: to CI, a regression)."""
    doc = result("jax", [100.0, 101.0, 99.0])
    doc["workload"] = {"id": "a", "parts": {}, "method": {}}
    _set(doc, field, value)
    path = _write(tmp_path / "cur" / "y.json", doc)
    with pytest.raises(ResultError) as err:
        results.read_result(path)
    assert str(err.value) == f"{path}: field '{field}': {problem}"
    if field == "status":
        _write(tmp_path / "base" / "y.json", result("jax", [100.0, 101.0, 99.0]))
        for args in (("check", str(path.parent), "--baseline", str(tmp_path / "base")),
                     ("history", str(path.parent)), ("compare", str(path.parent))):  # fmt: skip
            proc = run_cli(*args)
            assert proc.returncode == 2 or "warning" in proc.stderr, (args, proc.stderr)
            assert "Traceback" not in proc.stderr and f"field '{field}'" in proc.stderr


def test_every_name_the_harness_writes_reads_back():
    """Run ids (plain, A/B, joining, sharded, calibration), scenario names and cell ids as the
    harness makes them pass the reader's check."""
    from harness.orchestrate.jobs import new_run_id

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
    assert run_dir_for(".", None, ["jax"]).name == run.name
    odd = tmp_path / "my run"
    run.rename(odd)
    with pytest.raises(UsageError) as err:
        run_dir_for(str(odd), None, ["jax"])
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
    kwargs = dict(run=src.parent.parent, into=into, add=False, replace=False)
    with pytest.raises(UserError) as err:
        baseline.main(**kwargs)
    assert str(err.value).startswith(f"{src}: the copy would go to {into}/")
    assert str(err.value).endswith(f", outside --into {into}; nothing written")
    assert not (tmp_path / "a").exists() and not (tmp_path / "escape").exists()


# --- 1. portability: a user's module only with --trust-code; model files inside the folder ---


@pytest.fixture
def pair(once):
    """(saving backend of the hand-made results, the backend that would load them here)."""
    return next(b for b in backends.NAMES if b != once), once


def _saved(run, doc, *, keras_at=None):
    """Writes ``doc`` as a result of ``run`` with a (fake) saved model and its predictions."""
    import numpy as np

    name = f"{doc['scenario']['name']}--{doc['cell']['id']}--{doc['backend']}"
    model = keras_at or run / "models" / f"{name}.keras"
    model.parent.mkdir(parents=True, exist_ok=True)
    if not model.exists():
        model.write_bytes(b"not a keras file")
        np.save(results.reference_paths(model), np.zeros((2, 10), "float32"))
    doc["save"]["keras"]["path"] = str(model)
    return _write(
        run / doc["scenario"]["name"] / f"{doc['cell']['id']}--{doc['backend']}.json", doc
    )


def _planted(tmp_path, name="planted_model"):
    """A user's model module that leaves a marker file when it is imported."""
    folder = tmp_path / "code"
    folder.mkdir(exist_ok=True)
    marker = tmp_path / f"{name}.imported"
    (folder / f"{name}.py").write_text(PLANTED.format(marker=str(marker)))
    return folder, marker


def test_portability_imports_no_module_a_result_names_without_trust_code(tmp_path, pair):
    src, dst = pair
    folder, marker = _planted(tmp_path)
    root = tmp_path / "downloaded"
    doc = result(src, [1.0], scenario="s", cell_id="c")
    doc["cell"].update(model="planted_model:build", python_path=[str(folder)])
    _saved(root / "run", doc)
    proc = run_cli("portability", str(root), "--backend", dst)
    assert proc.returncode == 0, proc.stderr
    assert not marker.exists()
    assert f"  s/c: {src} -> {dst}: not checked: needs --trust-code\n" in proc.stderr
    assert f"portability: 0 load(s) of saved models under {dst}\n" in proc.stderr
    check = json.loads((root / "portability" / f"s--c--{src}--to-{dst}.json").read_text())
    assert (check["status"], check["reason"]) == ("not checked", "needs --trust-code")
    report = run_cli("compare", str(root))
    assert report.returncode == 0, report.stderr
    matrix = report.stdout.split("## Portability", 1)[1].splitlines()
    (row,) = [line for line in matrix if line.startswith(f"| {src} |")]
    assert "| not checked: needs --trust-code |" in row


def test_the_worker_imports_no_module_it_was_not_trusted_with(tmp_path, pair):
    """The worker's own guard (the orchestrator sends it no such task): no import, no keras."""
    from harness.worker.portability import check_one

    folder, marker = _planted(tmp_path)
    doc = result(pair[0], [1.0], scenario="s", cell_id="c")
    doc["cell"].update(model="planted_model:build", python_path=[str(folder)])
    path = _saved(tmp_path / "run", doc)
    model = doc["save"]["keras"]["path"]
    before = set(sys.modules)
    assert check_one({"result": str(path), "model": model}) == {
        "status": "not checked",
        "reason": "needs --trust-code",
    }
    assert not marker.exists() and "keras" not in set(sys.modules) - before


def test_portability_loads_no_model_file_outside_the_results_folder(tmp_path, pair):
    """A model recorded outside the folder, a model that is a link out of it, predictions that
    are a link out of it: each refused for its cell, with --trust-code too; nothing loaded (no
    backend process starts: a load of these fake files would have failed instead)."""
    import numpy as np

    src, dst = pair
    outside = tmp_path / "elsewhere" / "m.keras"
    outside.parent.mkdir()
    outside.write_bytes(b"not a keras file")
    np.save(results.reference_paths(outside), np.zeros((2, 10), "float32"))
    root = tmp_path / "downloaded"
    run = root / "run"
    _saved(run, result(src, [1.0], scenario="s", cell_id="away"), keras_at=outside)
    link = run / "models" / f"s--link--{src}.keras"
    link.parent.mkdir(parents=True)
    link.symlink_to(outside)
    np.save(results.reference_paths(link), np.zeros((2, 10), "float32"))
    _saved(run, result(src, [1.0], scenario="s", cell_id="link"), keras_at=link)
    probs = run / "models" / f"s--probs--{src}.keras"
    probs.write_bytes(b"not a keras file")
    results.reference_paths(probs).symlink_to(results.reference_paths(outside))
    _saved(run, result(src, [1.0], scenario="s", cell_id="probs"), keras_at=probs)

    proc = run_cli("portability", str(root), "--backend", dst, "--trust-code")
    assert proc.returncode == 0, proc.stderr
    assert f"portability: 0 load(s) of saved models under {dst}\n" in proc.stderr
    for cell, file in (
        ("away", outside),
        ("link", link),
        ("probs", results.reference_paths(probs)),
    ):
        reason = f"refused: {file} lies outside {root}; not loaded"
        assert f"  s/{cell}: {src} -> {dst}: not checked: {reason}\n" in proc.stderr
        check = json.loads((root / "portability" / f"s--{cell}--{src}--to-{dst}.json").read_text())
        assert (check["status"], check["reason"]) == ("not checked", reason)


def test_portability_writes_no_check_outside_its_folder(tmp_path, pair, capsys):
    """The second line of defence: a document the reader did not check (here, handed in)."""
    from harness.orchestrate import portability

    src, dst = pair
    folder, marker = _planted(tmp_path)
    root = tmp_path / "r"
    doc = result(src, [1.0], scenario="s", cell_id="c")
    doc["cell"].update(model="planted_model:build", python_path=[str(folder)])
    path = _saved(root / "run", doc)
    doc = {**json.loads(path.read_text()), "_path": str(path)}
    doc["cell"]["id"] = "../../../c"
    written = portability.run([doc], [dst], root / "portability", root=root)
    assert written == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["code", "r"]
    assert not (root / "portability").exists() and not marker.exists()
    err = capsys.readouterr().err
    assert f"would go to {root / 'portability'}/s--../../../c--{src}--to-{dst}.json" in err
    assert f", outside {root / 'portability'}; not written" in err


# --- 3. no environment variable chooses the worker's module -------------------------------------


def test_no_environment_variable_chooses_the_module_a_worker_runs(tmp_path, once):
    """Once, HARNESS_WORKER_MODULE named it (any module could then write "ok" results). Each
    side's interpreter here is a wrapper that notes its arguments and fails: no backend."""
    wrapper = tmp_path / "python-wrapper"
    seen = tmp_path / "argv"
    wrapper.write_text(f'#!/bin/sh\necho "$@" >> "{seen}"\nexit 3\n')
    wrapper.chmod(0o755)
    sc = tmp_path / "ab.toml"
    sc.write_text("[defaults]\nrepeats = 2\nmin_time = 0\n")
    env = {"HARNESS_WORKER_MODULE": "tests.stub_worker"}
    proc = run_cli("ab", str(sc), "--rounds", "4", "--backend", once,
                   "--out", str(tmp_path / "r"), "--baseline-python", str(wrapper),
                   "--candidate-python", str(wrapper), env=env, timeout=120)  # fmt: skip
    assert os.path.exists(seen), proc.stderr
    starts = seen.read_text().splitlines()
    assert starts and all(line.startswith("-m harness.worker ") for line in starts), starts


def test_the_tests_stub_entry_point_runs_the_stub(tmp_path, once):
    """tests/stub_harness.py: the CLI with the stub as the worker (for the runner's tests)."""
    sc = tmp_path / "s.toml"
    sc.write_text("[defaults]\nrepeats = 1\n")
    proc = run_cli("run", str(sc), "--backend", once, "--out", str(tmp_path / "r"),
                   module="tests.stub_harness")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (doc,), _ = results.load_results([tmp_path / "r"])
    assert doc["status"] == "ok" and doc["stub"] is True


def _paths(value, path=()):
    """Every field of a result document, a list's first item standing for the rest."""
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*path, key))
    elif isinstance(value, list) and value:
        yield from _paths(value[0], (*path, 0))


def test_every_field_of_a_result_of_another_type_is_a_note_never_a_traceback(tmp_path):
    """Each field of a whole result, in turn, of the wrong type or null: compare (markdown,
    HTML), check and history read the folder, and either use the file or leave it out with a
    one-line note; none fails with an exception."""
    import contextlib
    import io
    import shutil

    from conftest import ROOT

    from harness import cli

    src = ROOT / "tests" / "golden" / "results" / "compare" / "run-a"
    (first,) = sorted(src.rglob("bs32--jax.json"))
    whole = json.loads(first.read_text())
    root = tmp_path / "r"
    shutil.copytree(src, root)
    target = root / first.relative_to(src)
    tried = 0
    for path in _paths(whole):
        if not path or path[0] in ("schema", "schema_version"):
            continue
        for bad in ("x", {"a": 1}, None):
            doc = json.loads(first.read_text())
            holder = doc
            for key in path[:-1]:
                holder = holder[key]
            holder[path[-1]] = bad
            target.write_text(json.dumps(doc))
            for argv in (
                ["compare", str(root)],
                ["compare", str(root), "--format", "html"],
                ["check", str(root), "--baseline", str(root)],
                ["history", str(root)],
            ):
                out, err = io.StringIO(), io.StringIO()
                with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                    try:
                        cli.main(argv)
                    except Exception as exc:
                        raise AssertionError(
                            f"{'.'.join(map(str, path))} = {bad!r}: {argv[0]}"
                        ) from exc
                tried += 1
    assert tried > 300  # the walk reached the whole document
