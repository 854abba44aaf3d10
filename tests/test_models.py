"""The built-in models: the tutorial's MLP and the classic Keras MNIST convnet, each run for
real under every backend, with the FLOP count taken from the built model."""

from __future__ import annotations

import pytest
from conftest import ROOT, run_cli

from harness import results, scenario

# By hand: conv1 26x26 outputs x 3x3x1 x 32 filters, conv2 11x11 x 3x3x32 x 64, dense 1600 x 10;
# 2 FLOPs a multiply-add, 3 x forward for a training step.
CNN_FLOPS = 3 * 2 * (26 * 26 * 9 * 1 * 32 + 11 * 11 * 9 * 32 * 64 + 1600 * 10)
MLP_FLOPS = 3 * 2 * (784 * 128 + 128 * 10)


def test_model_key_and_the_shipped_scenario(tmp_path):
    sc = scenario.load(ROOT / "scenarios" / "models.toml")
    assert [c.id for c in sc.cells] == ["mlp-bs64", "mlp-bs256", "cnn-bs64", "cnn-bs256"]
    bad = tmp_path / "bad.toml"
    bad.write_text('[defaults]\nmodel = "resnet"\n')
    with pytest.raises(scenario.ScenarioError) as err:
        scenario.load(bad)
    assert (
        str(err.value) == f"{bad}: key 'defaults.model': unknown model 'resnet'; accepted: mlp, cnn"
        ', or an import reference "package.module:function"'
    )


@pytest.mark.backend
def test_cnn_trains_saves_and_reloads(backend, tmp_path):
    """The convnet under every backend (the MLP is every other test's model)."""
    sc = tmp_path / "zoo.toml"
    sc.write_text(
        "[defaults]\ntrain_samples = 256\ntest_samples = 64\nbatch_size = 64\nrepeats = 1\n"
        'min_time = 0\nwarmup_steps = 1\nmodel = "cnn"\n'
    )
    proc = run_cli("run", str(sc), "--backend", backend, "--out", str(tmp_path / "r"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    (d,) = results.load_results([tmp_path / "r"])[0]
    assert d["status"] == "ok", d.get("reason")
    assert (d["train"]["model"], d["train"]["flops_per_sample"]) == ("cnn", CNN_FLOPS)
    assert d["train"]["flops_uncounted"] == [] and d["efficiency"]["partial"] is False
    assert d["save"]["keras"]["predictions_match"] and d["save"]["h5"]["predictions_match"]


def test_flops_of_both_built_in_models_by_hand():
    assert (MLP_FLOPS, CNN_FLOPS) == (609_792, 14_645_760)


# --- the user's own model ---------------------------------------------------------------------

EXAMPLE = ROOT / "examples" / "own_model"


def test_model_import_references_and_python_path(tmp_path):
    sc = scenario.load(EXAMPLE / "own-model.toml")
    assert [c.model for c in sc.cells] == ["my_models:build", "mlp"]
    assert sc.cells[0].python_path == (str(EXAMPLE.resolve()),)  # relative to the file
    for text, key, message in (
        ('[defaults]\nmodel = "my_models.build"\n', "defaults.model",
         "unknown model 'my_models.build'; accepted: mlp, cnn, or an import reference"),
        ('python_path = ["nowhere"]\n', "python_path", "'nowhere': no such folder"),
        ('python_path = "."\n', "python_path", 'must be a list of folders, e.g. ["."]'),
    ):  # fmt: skip
        bad = tmp_path / "bad.toml"
        bad.write_text(text)
        with pytest.raises(scenario.ScenarioError) as err:
            scenario.load(bad)
        assert str(err.value).startswith(f"{bad}: key '{key}': {message}")


def _small_copy(tmp_path, text: str) -> str:
    """The example scenario, small, its python_path made absolute."""
    text = text.replace('python_path = ["."]', f"python_path = [{str(EXAMPLE)!r}]")
    for key, value in (("train_samples", 512), ("test_samples", 128), ("repeats", 1)):
        text = text.replace(f"{key} = ", f"{key} = {value}\n# was: {key} = ", 1)
    sc = tmp_path / "own-model.toml"
    sc.write_text(text.replace("[defaults]\n", "[defaults]\nmin_time = 0\nwarmup_steps = 1\n"))
    return str(sc)


@pytest.mark.backend
def test_the_worked_example_runs_under_every_backend(backend, tmp_path):
    sc = _small_copy(tmp_path, (EXAMPLE / "own-model.toml").read_text().replace(', "mlp"', ""))
    proc = run_cli("run", sc, "--backend", backend, "--out", str(tmp_path / "r"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    (d,) = results.load_results([tmp_path / "r"])[0]
    assert (d["status"], d["cell"]["model"]) == ("ok", "my_models:build"), d.get("reason")
    # Conv2D and Dense counted; the custom layer and the pooling not: the figure is partial
    assert d["train"]["flops_uncounted"] == ["GlobalAveragePooling2D", "Rescale"]
    assert d["efficiency"]["partial"] is True
    # registered with keras.saving.register_keras_serializable: it reloads
    assert d["save"]["keras"]["predictions_match"], d["save"]["keras"]


def test_bad_model_references_fail_their_cell_with_the_reason(once, tmp_path):
    (tmp_path / "bad_models.py").write_text(
        "import keras\n"
        "def not_a_model(input_shape, num_classes, settings):\n    return 42\n"
        "def five(input_shape, num_classes, settings):\n"
        "    i = keras.Input(input_shape)\n"
        "    return keras.Model(i, keras.layers.Dense(5)(keras.layers.Flatten()(i)))\n"
    )
    sc = tmp_path / "bad.toml"
    sc.write_text(
        'python_path = ["."]\n[defaults]\ntrain_samples = 256\ntest_samples = 64\n'
        "batch_size = 64\nrepeats = 1\nmin_time = 0\n[matrix]\n"
        'model = ["no_such_module:build", "bad_models:missing", "bad_models:not_a_model", '
        '"bad_models:five"]\n'
    )
    proc = run_cli("run", str(sc), "--backend", once, "--out", str(tmp_path / "r"))
    assert proc.returncode == 1
    reasons = {d["cell"]["model"]: d["reason"] for d in results.load_results([tmp_path / "r"])[0]}
    assert reasons == {
        "no_such_module:build": "ModelRefError in build: model no_such_module:build: cannot "
        "import no_such_module: ModuleNotFoundError: No module named 'no_such_module'",
        "bad_models:missing": "ModelRefError in build: model bad_models:missing: bad_models "
        "has no function missing",
        "bad_models:not_a_model": "ModelRefError in build: model bad_models:not_a_model: "
        "not_a_model returned int, not a keras.Model",
        "bad_models:five": "ModelRefError in build: model bad_models:five: its output shape "
        "(1, 5) does not match the labels: 10 classes, one probability each (softmax)",
    }
