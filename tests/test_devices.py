"""Tests for harness.devices' choice of device (pure: no backend is imported)."""

import pytest

from harness import devices
from harness.devices import DeviceUnavailable, device_env, select_gpu, visible_entries

UUID_A = "GPU-5e1d3c2a-0000-4000-8000-00000000000a"
UUID_B = "GPU-5e1d3c2a-0000-4000-8000-00000000000b"


@pytest.mark.parametrize(
    "visible, device, entry",
    [
        (None, "gpu", "0"),  # nothing set: gpu:N is CUDA's (PCI-ordered) device N
        (None, "gpu:3", "3"),
        ("2,3", "gpu", "2"),  # a shared runner's share: gpu:N is the N-th GPU of it
        ("2,3", "gpu:1", "3"),
        (f"{UUID_A},{UUID_B}", "gpu:1", UUID_B),
        (" 4 , 5 ", "gpu:1", "5"),
        ("6,7,", "gpu:1", "7"),
    ],
)
def test_gpu_n_selects_within_the_runners_gpus(visible, device, entry):
    env = device_env(device, "torch", visible=visible)
    assert env == {
        "KERAS_BACKEND": "torch",
        "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
        "CUDA_VISIBLE_DEVICES": entry,
        # tf.data (the tutorial's pipeline, a user's dataset) must not take the GPU's memory
        "TF_FORCE_GPU_ALLOW_GROWTH": "true",
    }


@pytest.mark.parametrize(
    "visible, device, given",
    [
        ("2,3", "gpu:2", "2 GPUs"),
        (UUID_A, "gpu:1", "1 GPU"),
        ("", "gpu", "no GPU"),
        ("-1", "gpu", "no GPU"),
        # CUDA stops reading at the first invalid entry: only device 0 is given.
        ("0,-1,1", "gpu:1", "1 GPU"),
    ],
)
def test_gpu_beyond_the_runners_gpus_is_unavailable(visible, device, given):
    with pytest.raises(DeviceUnavailable) as caught:
        device_env(device, "jax", visible=visible)
    assert str(caught.value) == (
        f"{device} requested but the runner was given {given} "
        f"(CUDA_VISIBLE_DEVICES={visible!r}; gpu:N counts from 0 within them)"
    )


@pytest.fixture(autouse=True)
def no_device_order(monkeypatch):
    """A GPU machine may set CUDA_DEVICE_ORDER; these tests state the default case."""
    monkeypatch.delenv("CUDA_DEVICE_ORDER", raising=False)


def test_an_order_the_runner_chose_is_kept(monkeypatch):
    monkeypatch.setenv("CUDA_DEVICE_ORDER", "FASTEST_FIRST")
    env = device_env("gpu:1", "torch", visible="4,5")
    assert env["CUDA_DEVICE_ORDER"] == "FASTEST_FIRST" and env["CUDA_VISIBLE_DEVICES"] == "5"


def test_default_reads_the_runners_environment_at_call_time(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "5,6")
    assert device_env("gpu:1", "torch")["CUDA_VISIBLE_DEVICES"] == "6"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(DeviceUnavailable, match="given no GPU"):
        device_env("gpu", "torch")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert device_env("gpu:1", "torch")["CUDA_VISIBLE_DEVICES"] == "1"


@pytest.mark.parametrize("visible", [None, "", "-1", "2,3"])
def test_cpu_cells_hide_every_gpu_whatever_the_runner_has(visible):
    assert device_env("cpu", "jax", visible=visible) == {
        "KERAS_BACKEND": "jax",
        "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
        "CUDA_VISIBLE_DEVICES": "",
        "JAX_PLATFORMS": "cpu",
        "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
    }
    env = device_env("cpu", "tensorflow", visible=visible)
    assert env["CUDA_VISIBLE_DEVICES"] == "" and env["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"


def test_jax_preallocation_is_off_unless_the_cell_turns_it_on():
    assert device_env("gpu", "jax", visible=None) == {
        "KERAS_BACKEND": "jax",
        "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
        "CUDA_VISIBLE_DEVICES": "0",
        "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
        "TF_FORCE_GPU_ALLOW_GROWTH": "true",
    }
    on = device_env("gpu", "jax", visible=None, jax_preallocate=True)
    assert on["XLA_PYTHON_CLIENT_PREALLOCATE"] == "true"
    # Only JAX reads it; the other backends' environments do not carry it.
    for backend in ("tensorflow", "torch"):
        env = device_env("gpu", backend, visible=None, jax_preallocate=True)
        assert "XLA_PYTHON_CLIENT_PREALLOCATE" not in env


@pytest.mark.parametrize(
    "value, preallocates",
    [(None, True), ("", True), ("true", True), ("false", False), ("False", False), ("0", False)],
)
def test_jax_preallocates_reads_the_variable_as_jaxlib_does(value, preallocates):
    environ = {} if value is None else {"XLA_PYTHON_CLIENT_PREALLOCATE": value}
    assert devices.jax_preallocates(environ) is preallocates


def test_visible_entries_and_select_gpu():
    assert visible_entries(None) is None
    assert visible_entries("") == visible_entries("-1") == []
    assert visible_entries(f"1,{UUID_A},MIG-abc") == ["1", UUID_A, "MIG-abc"]
    assert visible_entries("1,bogus,2") == ["1"]
    assert select_gpu(0, "7") == "7"
    with pytest.raises(DeviceUnavailable, match=r"^gpu:1 requested but the runner was given 1 GPU"):
        select_gpu(1, "7")
