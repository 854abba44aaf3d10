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
