import dataclasses
import json
from pathlib import Path

import pytest

from harness import scenario
from harness.scenario import ScenarioError

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path, text, name="s.toml"):
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def test_matrix_expands_in_order_with_ids(tmp_path):
    path = write(
        tmp_path,
        """
name = "sweep"
[defaults]
dataset = "synthetic"
epochs = 2
[matrix]
batch_size = [32, 128]
optimizer = ["adam", { name = "sgd", learning_rate = 0.01, momentum = 0.9 }]
device = ["cpu"]
""",
    )
    sc = scenario.load(path)
    assert sc.name == "sweep"
    assert [c.id for c in sc.cells] == [
        "bs32-adam",
        "bs32-sgd-lr0.01-momentum0.9",
        "bs128-adam",
        "bs128-sgd-lr0.01-momentum0.9",
    ]
    cell = sc.cells[1]
    assert cell.batch_size == 32 and cell.epochs == 2 and cell.device == "cpu"
    assert cell.optimizer.name == "sgd"
    assert dict(cell.optimizer.kwargs) == {"learning_rate": 0.01, "momentum": 0.9}
    # A cell survives the trip through JSON to the worker unchanged.
    assert scenario.Cell.from_json(json.loads(json.dumps(cell.to_json()))) == cell


def test_defaults_without_matrix_give_one_cell(tmp_path):
    sc = scenario.load(write(tmp_path, '[defaults]\nbatch_size = 16\nbackends = ["tf", "jax"]\n'))
    assert [c.id for c in sc.cells] == ["default"]
    assert sc.name == "s"  # the file stem
    assert sc.cells[0].backends == ("tensorflow", "jax")
    assert sc.cells_for("torch") == []


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "nmae = 'x'",
            "s.toml: key 'nmae': unknown key (did you mean 'name'?); accepted: name, description, python_path, defaults, matrix",
        ),
        (
            "[defaults]\nbatch_sise = 3",
            "s.toml: key 'defaults.batch_sise': unknown key (did you mean 'batch_size'?)",
        ),
        (
            "[defaults]\nbatch_size = 0",
            "s.toml: key 'defaults.batch_size': must be an integer >= 1, got 0",
        ),
        (
            "[defaults]\nbatch_size = 3.5",
            "s.toml: key 'defaults.batch_size': must be an integer >= 1, got 3.5",
        ),
        (
            "[defaults]\nbatch_size = true",
            "s.toml: key 'defaults.batch_size': must be an integer >= 1, got True",
        ),
        ("[defaults]\nepochs = 0", "s.toml: key 'defaults.epochs': must be an integer >= 1, got 0"),
        (
            "[defaults]\nrepeats = -1",
            "s.toml: key 'defaults.repeats': must be an integer >= 1, got -1",
        ),
        (
            "[defaults]\noptimizer = 'adamm'",
            "s.toml: key 'defaults.optimizer': unknown optimizer 'adamm' (did you mean 'adam'?); accepted: sgd, adam,",
        ),
        (
            "[defaults]\noptimizer = { learning_rate = 0.1 }",
            "s.toml: key 'defaults.optimizer': an optimizer table needs a \"name\"",
        ),
        (
            "[defaults]\ndataset = 'imagenet'",
            "s.toml: key 'defaults.dataset': unknown dataset 'imagenet'; accepted: mnist, digits, synthetic",
        ),
        (
            "[defaults]\npipeline = 'tfdata'",
            "s.toml: key 'defaults.pipeline': unknown pipeline 'tfdata' (did you mean 'tf.data'?)",
        ),
        (
            "[defaults]\ndevice = 'cuda'",
            "s.toml: key 'defaults.device': unknown device 'cuda'; accepted: cpu, gpu, gpu:N",
        ),
        (
            "[defaults]\nbackends = ['jaxx']",
            "s.toml: key 'defaults.backends': unknown backend 'jaxx' (did you mean 'jax'?)",
        ),
        (
            "[matrix]\nbatch_size = []",
            "s.toml: key 'matrix.batch_size': must be a non-empty list of values",
        ),
        (
            "[matrix]\nbatch_size = 32",
            "s.toml: key 'matrix.batch_size': must be a non-empty list of values",
        ),
        (
            "[matrix]\nbatch_size = [32, -1]",
            "s.toml: key 'matrix.batch_size[1]': must be an integer >= 1, got -1",
        ),
        ("[matrix]\nbackends = ['jax']", "s.toml: key 'matrix.backends': unknown key"),
        (
            "[matrix]\ndevice = ['cpu', 'gpu:x']",
            "s.toml: key 'matrix.device[1]': unknown device 'gpu:x'",
        ),
        ("defaults = 3", "s.toml: key 'defaults': must be a table ([defaults])"),
        (
            "[defaults]\ndataset = 'digits'\nbatch_size = 5000",
            "s.toml: key 'batch_size': 5000 exceeds the 1347 training samples of digits (cell default)",
        ),
        (
            "[defaults]\ntrain_samples = 100\nbatch_size = 128",
            "s.toml: key 'batch_size': 128 exceeds the 100 training samples of synthetic",
        ),
        (
            "[defaults]\ndata_path = 'x.npz'",
            "s.toml: key 'data_path': only applies to dataset = \"mnist\"",
        ),
        ("name = 'a b'", "s.toml: key 'name': must be a word of letters, digits"),
        # its results would land in a folder that reports skip
        (
            "name = 'models'",
            "s.toml: key 'name': 'models' names a results folder of the harness's own",
        ),
        ("[defaults\nx = 1", "s.toml: malformed TOML: "),
    ],
)
def test_bad_input_is_one_line_naming_file_and_key(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ScenarioError) as info:
        scenario.load(path)
    text_out = str(info.value)
    assert "\n" not in text_out
    assert text_out.startswith(str(tmp_path)), text_out
    assert message in text_out, text_out


def test_malformed_toml_gives_line_and_column(tmp_path):
    with pytest.raises(ScenarioError, match=r"line 2, column"):
        scenario.load(write(tmp_path, "name = 'x'\nbatch_size = = 3\n"))


def test_binary_and_missing_files(tmp_path):
    with pytest.raises(ScenarioError, match="not a text file"):
        scenario.load(write(tmp_path, b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", "img.toml"))
    with pytest.raises(ScenarioError, match="no such file"):
        scenario.load(tmp_path / "missing.toml")
    with pytest.raises(ScenarioError, match="is a directory"):
        scenario.load(tmp_path)


def test_shipped_scenarios_are_valid():
    names = {p.stem for p in (ROOT / "scenarios").glob("*.toml")}
    assert {"smoke", "seed", "batch-sweep", "optimizers", "gpu", "digits", "pipelines"} <= names
    for path in (ROOT / "scenarios").glob("*.toml"):
        sc = scenario.load(path)
        assert sc.cells and sc.description, path
    seed = scenario.load(ROOT / "scenarios" / "seed.toml")
    assert {(c.dataset, c.batch_size, c.optimizer.name) for c in seed.cells} == {
        ("mnist", 32, "adam")
    }
    gpu = scenario.load(ROOT / "scenarios" / "gpu.toml")
    assert all(c.device.startswith("gpu") for c in gpu.cells)


def test_the_docs_list_every_key_as_declared():
    """docs/scenarios.md holds the key table generated from the declarations: every key of the
    published schema, with its type, default, axis, workload part and meaning."""
    text = (ROOT / "docs" / "scenarios.md").read_text()
    block = text.split(scenario.KEYS_BEGIN, 1)[1].split(scenario.KEYS_END, 1)[0].strip()
    assert block == scenario.keys_table(), (
        "regenerate the table in docs/scenarios.md: python -m harness schema --markdown"
    )
    published = json.loads((ROOT / "scenario.schema.json").read_text())
    keys = published["properties"]["defaults"]["properties"]
    rows = [line.split("|")[1].strip().strip("`") for line in block.splitlines()[2:]]
    assert rows == list(keys)
    assert "| `step_delay_ms` | number >= 0 | `0.0` | yes | neither |" in block
    assert "| `batch_size` | integer >= 1 | `32` | yes | work |" in block


def test_json_schema_is_published_and_current():
    """scenario.schema.json is `harness schema`'s output, byte for byte."""
    text = (ROOT / "scenario.schema.json").read_text()
    assert text == json.dumps(scenario.json_schema(), indent=2) + "\n", (
        "regenerate: python -m harness schema --out scenario.schema.json"
    )
    published = json.loads(text)
    props = published["properties"]["defaults"]["properties"]
    assert set(props) == set(scenario.FIELDS)
    assert props["pipeline"]["enum"] == ["numpy", "pydataset", "tf.data", "torch"]


def test_override_applies_validated_settings_and_keeps_cell_ids(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text("[defaults]\nepochs = 2\n[matrix]\nbatch_size = [32, 64]\n")
    sc = scenario.load(path)
    out = scenario.override(sc, ["step_delay_ms=0.3", "optimizer=sgd", "jit_compile = false"])
    assert [c.id for c in out.cells] == ["bs32", "bs64"]
    assert {(c.step_delay_ms, c.optimizer.name, c.jit_compile) for c in out.cells} == {
        (0.3, "sgd", False)
    }
    assert scenario.override(sc, []) is sc
    with pytest.raises(scenario.ScenarioError) as err:
        scenario.override(sc, ["epochs=0"], "--candidate-set")
    assert str(err.value) == "--candidate-set: key 'epochs': must be an integer >= 1, got 0"
    with pytest.raises(scenario.ScenarioError, match="exceeds the 100 training samples"):
        scenario.override(sc, ["train_samples=100", "batch_size=512"])


def test_jax_preallocate_is_a_validated_setting_off_by_default(tmp_path):
    """JAX preallocates 75% of GPU memory unless told not to: off by default, so memory
    readings under JAX mean something; a run-wide setting, not a matrix axis."""
    assert scenario.load(write(tmp_path, "[defaults]\n")).cells[0].jax_preallocate is False
    sc = scenario.load(write(tmp_path, "[defaults]\njax_preallocate = true\n", "on.toml"))
    (cell,) = sc.cells
    assert cell.jax_preallocate is True and cell.id == "default"
    assert scenario.Cell.from_json(json.loads(json.dumps(cell.to_json()))) == cell
    with pytest.raises(ScenarioError) as err:
        scenario.load(write(tmp_path, '[defaults]\njax_preallocate = "yes"\n', "bad.toml"))
    assert str(err.value).endswith(
        "key 'defaults.jax_preallocate': must be true or false, got 'yes'"
    )
    with pytest.raises(ScenarioError, match="key 'matrix.jax_preallocate': unknown key"):
        scenario.load(write(tmp_path, "[matrix]\njax_preallocate = [true, false]\n", "m.toml"))
    assert [c.jax_preallocate for c in scenario.override(sc, ["jax_preallocate=false"]).cells] == [
        False
    ]
    props = scenario.json_schema()["properties"]["defaults"]["properties"]
    assert props["jax_preallocate"]["type"] == "boolean"


def test_threads_and_tf32_are_validated_axes_left_to_each_backend_by_default(tmp_path):
    (cell,) = scenario.load(write(tmp_path, "[defaults]\n")).cells
    assert (cell.threads, cell.tf32) == (None, None)  # each backend's own choice
    sc = scenario.load(write(tmp_path, "[defaults]\ntf32 = false\n[matrix]\nthreads = [1, 2]\n"))
    assert [(c.id, c.threads, c.tf32) for c in sc.cells] == [
        ("threads1", 1, False),
        ("threads2", 2, False),
    ]
    assert scenario.Cell.from_json(json.loads(json.dumps(sc.cells[0].to_json()))) == sc.cells[0]
    for text, message in (
        ("threads = 0", "key 'defaults.threads': must be an integer >= 1, got 0"),
        ('tf32 = "off"', "key 'defaults.tf32': must be true or false, got 'off'"),
    ):
        with pytest.raises(ScenarioError) as err:
            scenario.load(write(tmp_path, f"[defaults]\n{text}\n", "bad.toml"))
        assert str(err.value).endswith(message)


def _undeclared(cell_type: type) -> list[str]:
    """The fields of a cell type after scenario and id that are not declared with key()."""
    fields = dataclasses.fields(cell_type)
    assert [f.name for f in fields[:2]] == ["scenario", "id"]
    return [f.name for f in fields[2:] if not isinstance(scenario.key_of(f), scenario.Key)]


def test_every_cell_field_is_a_key_declared_in_full():
    """Each key states its default, kind, workload part and meaning once, on its Cell field;
    a field added without key() is caught here, and key() refuses a declaration that lacks a
    part (the schema, the docs' table, the cell ids and the workload groups are read from it)."""
    assert _undeclared(scenario.Cell) == []
    plain = dataclasses.make_dataclass(
        "Plain", [("extra", int, 1)], bases=(scenario.Cell,), frozen=True
    )
    assert _undeclared(plain) == ["extra"]
    names = [f.name for f in dataclasses.fields(scenario.Cell)[2:]]
    assert [k.name for k in scenario.KEYS] == names
    for k in scenario.KEYS:
        assert k.doc.strip() and isinstance(k.kind, scenario.Kind), k.name
        assert k.part in ("work", "method", "neither"), k.name
        if k.default is not None:  # the default is a value its own kind accepts, as JSON too
            as_json = json.loads(json.dumps(k.kind.to_json(k.default)))
            assert k.kind.check(as_json, k.name) == k.default, k.name
            assert k.kind.from_json(as_json) == k.default, k.name
    with pytest.raises(TypeError):
        scenario.key(1, scenario.checks.Int(1), "samples per step")  # no part
    for bad in (
        (1, "integer", scenario.Part.WORK, "samples per step"),  # no kind
        (1, scenario.checks.Int(1), "work", "samples per step"),  # a part not declared
        (1, scenario.checks.Int(1), scenario.Part.WORK, " "),  # no meaning
    ):
        with pytest.raises(TypeError, match="a key needs a kind, a workload part and a meaning"):
            scenario.key(*bad)


def test_what_is_read_from_the_declarations():
    from harness import workload
    from harness.orchestrate import ab

    assert list(scenario.FIELDS) == [k.name for k in scenario.KEYS if k.name != "python_path"]
    assert list(scenario.TOP_LEVEL_FIELDS) == ["python_path"]
    assert scenario.TOP_LEVEL == ("name", "description", "python_path", "defaults", "matrix")
    run_settings = ["data_path", "time_limit", "min_time", "sample_interval", "jax_preallocate"]
    assert [k for k in scenario.FIELDS if k not in scenario.MATRIX_FIELDS] == [
        *run_settings,
        "backends",
    ]
    assert scenario.REF_FIELDS == ("model", "dataset")
    assert scenario.BEFORE == {"min_time": 0.0}
    assert sorted(ab.WORK) == sorted(
        ["dataset", "data_path", "train_samples", "batch_size", "epochs", "min_time"]
    )
    assert workload.METHOD_FIELDS == (
        "epochs",
        "repeats",
        "warmup_steps",
        "min_time",
        "sync_every_step",
    )
    assert workload.NEITHER_FIELDS == (
        "scenario",
        "id",
        "data_path",
        "time_limit",
        "sample_interval",
        "step_delay_ms",
        "jax_preallocate",
        "python_path",
        "backends",
    )
    # the defaults a cell has are the declared ones
    assert scenario.Cell(scenario="s", id="c").batch_size == scenario.FIELDS["batch_size"].default


def test_cell_ids_label_each_axis_as_declared():
    named = scenario.Named("sgd", (("learning_rate", 0.01), ("nesterov", True)))
    values = [
        ("batch_size", 32, "bs32"),
        ("model", "pkg.mod:build", "pkg.mod_build"),
        ("pipeline", "tf.data", "tfdata"),
        ("metrics", ("accuracy", "mae"), "accuracy+mae"),
        ("metrics", (), "no-metrics"),
        ("device", "gpu:1", "gpu1"),
        ("step_delay_ms", 0.5, "delay0.5ms"),
        ("optimizer", named, "sgd-lr0.01-nesterovon"),
        ("loss", scenario.Named("kl_divergence"), "kl_divergence"),
        ("jit_compile", True, "jit-on"),
        ("jit_compile", "auto", "jit-auto"),
        ("dataset", ".odd value/..", "_odd_value_.."),
        ("epochs", 3, "e3"),
        ("repeats", 2, "r2"),
        ("seed", 1, "seed1"),
        ("warmup_steps", 0, "warm0"),
        ("train_samples", 5, "n5"),
        ("test_samples", 6, "t6"),
        ("steps_per_execution", 2, "spe2"),
        ("sync_every_step", True, "sync"),
        ("sync_every_step", False, "async"),
        ("threads", 2, "threads2"),
        ("tf32", True, "tf32"),
        ("tf32", False, "no-tf32"),
        ("data_parallel", 2, "dp2"),
        ("data_parallel_processes", 2, "procs2"),
        ("precision", "mixed_float16", "mixed_float16"),
    ]
    assert [scenario.cell_id([(k, v)]) for k, v, _ in values] == [want for *_, want in values]
    assert scenario.cell_id([("batch_size", 64), ("device", "cpu")]) == "bs64-cpu"
    assert scenario.cell_id([]) == "default"
