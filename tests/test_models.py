"""The built-in models: the tutorial's MLP and the classic Keras MNIST convnet, each run for
real under every backend, with the FLOP count taken from the built model."""

from __future__ import annotations

import pytest
from conftest import ROOT, keras_script, run_cells, run_cli

from harness import backends, results, scenario

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
    (d,), _ = run_cells(sc, backend, tmp_path / "r")
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
    assert {c.dataset for c in sc.cells} == {"my_data:digits"}
    assert sc.cells[0].python_path == (str(EXAMPLE.resolve()),)  # relative to the file
    for text, key, message in (
        ('[defaults]\nmodel = "my_models.build"\n', "defaults.model",
         "unknown model 'my_models.build' (did you mean \"my_models:build\"?); accepted: mlp, "
         "cnn, or an import reference"),
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
    sc = tmp_path / "own-model.toml"
    small = "[defaults]\nmin_time = 0\nwarmup_steps = 1\ntrain_samples = 512\ntest_samples = 128\n"
    sc.write_text(text.replace("[defaults]\n", small).replace("repeats = 3", "repeats = 1"))
    return str(sc)


@pytest.mark.backend
def test_the_worked_example_runs_under_every_backend(backend, tmp_path):
    sc = _small_copy(tmp_path, (EXAMPLE / "own-model.toml").read_text().replace(', "mlp"', ""))
    (d,), _ = run_cells(sc, backend, tmp_path / "r")
    assert (d["status"], d["cell"]["model"]) == ("ok", "my_models:build"), d.get("reason")
    # the user's dataset function's arrays, 8x8 floats fed as they are: the model's input
    assert (d["data"]["dataset"], d["data"]["form"]) == ("my_data:digits", "arrays")
    assert (d["data"]["train_samples"], d["data"]["input_shape"]) == (512, [8, 8, 1])
    assert set(d["evaluate"]["metrics"]) == {"accuracy", "sparse_top_k_categorical_accuracy"}
    # Conv2D (6x6 outputs x 3x3x1 x 16) and the Dense layers (576 x 32, 32 x 10) counted; the
    # custom layer not: the figure is partial
    assert d["train"]["flops_per_sample"] == 3 * 2 * (36 * 9 * 16 + 576 * 32 + 32 * 10)
    assert d["train"]["flops_uncounted"] == ["Rescale"]
    assert d["efficiency"]["partial"] is True
    # registered with keras.saving.register_keras_serializable: it reloads
    assert d["save"]["keras"]["predictions_match"], d["save"]["keras"]
    if backend == "jax" and "torch" in backends.installed_backends():
        # ... under another backend too: the portability check imports its module (test-jax
        # holds torch; once is enough, and test-jax has room on CI's critical path), only
        # when told to: a result may come from another machine
        proc = run_cli("portability", str(tmp_path / "r"), "--backend", "torch")
        assert proc.returncode == 0, proc.stderr[-3000:]
        (check,) = results.load_portability([tmp_path / "r"])
        assert (check["status"], check["reason"]) == ("not checked", "needs --trust-code")
        proc = run_cli("portability", str(tmp_path / "r"), "--backend", "torch", "--trust-code")
        assert proc.returncode == 0, proc.stderr[-3000:]
        (check,) = results.load_portability([tmp_path / "r"])
        assert check["status"] == "ok", check


FLOPS_SCRIPT = """
import json, keras
from harness.worker import model as M

def per_layer(m):  # each call in the model's graph, by the layer's class
    out = {}
    for nodes in m._nodes_by_depth.values():
        for n in nodes:
            try:
                out[type(n.operation).__name__] = M._node_flops(n.operation,
                                                                M._kinds(n.operation), n)
            except Exception:
                out[type(n.operation).__name__] = None
    return out

i = keras.Input((12, 16))
mask = keras.Input((12, 12))
x = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4)(i, i, attention_mask=mask)
x = keras.layers.LSTM(8)(x)
x = keras.layers.Dense(3)(keras.layers.Reshape((2, 4))(x))
seq = keras.Model([i, mask], x)
j = keras.Input((8, 8, 3))
y = keras.layers.SeparableConv2D(4, 3)(j)
y = keras.layers.DepthwiseConv2D(3)(y)
y = keras.layers.Conv2DTranspose(2, 3)(y)
y = keras.layers.Conv2D(4, 3, groups=2)(keras.layers.BatchNormalization()(y))
y = keras.layers.EinsumDense("abc,cd->abd", (None, 5))(keras.layers.Reshape((16, 4))(y))
inner = keras.Model(j, y)
k = keras.Input((8, 8, 3))
twice = keras.layers.Concatenate()([inner(k), inner(k)])  # a nested model called twice
outer = keras.Model(k, keras.layers.Bidirectional(keras.layers.GRU(2))(twice))
def wrapped(units):  # a wrapper names its inner layer, numbered by the models built before
    return keras.Sequential([keras.Input((4, 3)), keras.layers.TimeDistributed(keras.layers.Dense(units))])

print(json.dumps({
    "layers": {**per_layer(seq), **per_layer(inner)},
    "outer": [M.train_flops_per_sample(outer), M.uncounted_layers(outer)],
    "architecture": [M.architecture(wrapped(2)), M.architecture(wrapped(2)), M.architecture(wrapped(3))],
}))
"""


def test_flops_of_the_layers_that_dominate_common_models(once):
    """Each counted by hand: 2 FLOPs a multiply-add, per sample, forward."""
    got = keras_script(FLOPS_SCRIPT, once)
    assert got["layers"] == {
        "InputLayer": None,
        # 12 queries and keys of 16 features, 2 heads of 4: the q, k, v projections
        # (12x16x8 each), scores and weighted sum (12x12x8 each), output (12x8x16); the mask
        # is no key
        "MultiHeadAttention": 2 * (3 * 12 * 16 * 8 + 2 * 12 * 12 * 8 + 12 * 8 * 16),
        "LSTM": 2 * 4 * (16 + 8) * 8 * 12,  # 4 gates, (inputs + units) x units, 12 steps
        "Reshape": None,
        "Dense": 2 * 4 * 3 * 2,  # along the last axis of each of 2 positions
        # 6x6 outputs of a 3x3x3 depthwise kernel, then a 1x1 3 -> 4 pointwise one
        "SeparableConv2D": 2 * 36 * (27 + 12),
        "DepthwiseConv2D": 2 * 16 * 3 * 3 * 4,  # 4x4 outputs
        "Conv2DTranspose": 2 * 16 * 3 * 3 * 2 * 4,  # each of 4x4 inputs through the kernel
        "BatchNormalization": None,
        "Conv2D": 2 * 16 * 3 * 3 * 1 * 4,  # 2 groups: 1 input channel per output channel
        "EinsumDense": 2 * 16 * 4 * 5,  # its output shape left open: from its input
    }
    # a nested model is opened up at each of its calls; a wrapper (Bidirectional) is listed,
    # not guessed
    inner = 2 * 36 * 39 + 2 * 16 * 36 + 2 * 16 * 72 + 2 * 16 * 36 + 2 * 16 * 20
    assert got["outer"] == [3 * 2 * inner, ["Bidirectional"]]
    # the workload's architecture: the same model built twice in one process is the same work
    # (Keras numbers the wrapped Dense dense_N by what was built before it); 3 units are not
    same, again, other = got["architecture"]
    assert same == again and same["params"] == 8 and same["layers"] == "TimeDistributed(8)"
    assert other["architecture"] != same["architecture"]
