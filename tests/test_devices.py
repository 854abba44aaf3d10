"""Tests for harness.devices' choice of device (pure: no backend is imported)."""

import sys
from types import SimpleNamespace

import pytest

from harness import devices
from harness.devices import (
    DeviceUnavailable,
    GpuUnusable,
    device_env,
    select_gpu,
    visible_entries,
)
from harness.monitor import gpu_presence
from harness.worker.devices import gpu_probe, require

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


# --- a GPU that is there but unusable fails; only a machine without one skips -----------------

BROKEN = "RuntimeError: Backend 'cuda' failed to initialize: CUDA_ERROR_NO_DEVICE"


def no_nodes(pattern):
    assert pattern == "/dev/nvidia[0-9]*"
    return []


def one_node(pattern):
    return ["/dev/nvidia0"]


def test_gpu_presence_asks_nvml_then_the_device_nodes():
    from test_monitor import FakeNVML

    nvml = FakeNVML()
    assert gpu_presence(nvml, no_nodes) == (True, "NVML sees 2 GPUs")
    assert nvml.inits == nvml.shutdowns == 1
    nvml.gpus = nvml.gpus[:1]
    assert gpu_presence(nvml, no_nodes) == (True, "NVML sees 1 GPU")
    # NVML is what broke (no driver library, a driver/library mismatch): the node still shows it
    broken = FakeNVML(init_error="Driver/library version mismatch")
    assert gpu_presence(broken, one_node) == (
        True,
        "/dev/nvidia0 exists (NVML unavailable: Driver/library version mismatch)",
    )
    assert gpu_presence(broken, no_nodes) == (
        False,
        "NVML unavailable: Driver/library version mismatch; no /dev/nvidia[0-9]* device node",
    )
    nvml.gpus = []
    assert gpu_presence(nvml, no_nodes) == (
        False,
        "NVML sees 0 GPUs; no /dev/nvidia[0-9]* device node",
    )


def machine(present: bool):
    """A gpu_presence for a machine with (an NVML that sees) one GPU, or with none."""
    from test_monitor import FakeNVML

    nvml = FakeNVML(init_error=None if present else "NVML Shared Library Not Found")
    nvml.gpus = nvml.gpus[:1]
    return lambda: gpu_presence(nvml, no_nodes)


def probe_sees(gpus, why=""):
    calls = []

    def probe(backend):
        calls.append(backend)
        return gpus, why

    probe.calls = calls
    return probe


@pytest.mark.parametrize("visible", ["0", "GPU-0000", None])
def test_a_gpu_the_backend_cannot_use_fails_with_the_backends_own_words(visible):
    environ = {} if visible is None else {"CUDA_VISIBLE_DEVICES": visible}
    with pytest.raises(GpuUnusable) as caught:
        require("gpu", "jax", probe=probe_sees([], BROKEN), presence=machine(True), environ=environ)
    assert str(caught.value) == (
        f"gpu requested and NVML sees 1 GPU, but jax cannot use it: {BROKEN} "
        f"(CUDA_VISIBLE_DEVICES={visible!r})"
    )
    assert not isinstance(caught.value, DeviceUnavailable)  # the worker fails it, never skips it


def test_a_machine_without_an_nvidia_gpu_skips_the_cell():
    with pytest.raises(DeviceUnavailable) as caught:
        require("gpu:0", "torch", probe=probe_sees([], "torch.cuda.init(): RuntimeError: no"),
                presence=machine(False), environ={"CUDA_VISIBLE_DEVICES": "0"})  # fmt: skip
    assert str(caught.value) == (
        "gpu:0 requested but this machine has no NVIDIA GPU (NVML unavailable: NVML Shared "
        "Library Not Found; no /dev/nvidia[0-9]* device node)"
    )


@pytest.mark.parametrize("visible", ["", "-1"])
def test_gpus_hidden_by_cuda_visible_devices_skip_the_cell_even_where_one_is_there(visible):
    with pytest.raises(DeviceUnavailable) as caught:
        require("gpu", "torch", probe=probe_sees([], "no"), presence=machine(True),
                environ={"CUDA_VISIBLE_DEVICES": visible})  # fmt: skip
    assert (
        str(caught.value) == f"gpu requested but CUDA_VISIBLE_DEVICES={visible!r} hides every GPU"
    )


def test_a_gpu_the_backend_sees_is_used_and_cpu_cells_probe_nothing():
    def never():
        raise AssertionError("presence is asked only when the backend sees no GPU")

    probe = probe_sees(["cuda:0"])
    assert require("gpu", "torch", probe=probe, presence=never, environ={}) == ["cuda:0"]
    cpu = probe_sees([])
    assert require("cpu", "torch", probe=cpu, presence=never, environ={}) == []
    assert probe.calls == ["torch"] and cpu.calls == []


# The backends' own words, each backend faked (none is imported here).


def fake_torch(cuda_version, init_error=None):
    def init():
        if init_error:
            raise init_error

    cuda = SimpleNamespace(is_available=lambda: False, init=init)
    return SimpleNamespace(
        __version__="2.9.0", version=SimpleNamespace(cuda=cuda_version, hip=None), cuda=cuda
    )


def test_torch_says_why_it_cannot_use_the_gpu(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", fake_torch(None))
    assert gpu_probe("torch") == (
        [],
        "torch 2.9.0 is a CPU-only build (torch.version.cuda is None)",
    )
    error = RuntimeError("Found no NVIDIA driver on your system.\n Please check ...")
    monkeypatch.setitem(sys.modules, "torch", fake_torch("12.8", error))
    assert gpu_probe("torch") == (
        [],
        "torch 2.9.0 (CUDA 12.8): torch.cuda.init(): RuntimeError: Found no NVIDIA driver on "
        "your system. Please check ...",
    )


def test_jax_says_why_it_cannot_use_the_gpu(monkeypatch):
    errors = {
        "gpu": RuntimeError("Unknown backend: 'gpu' requested, but no platforms that are "
                            "instances of gpu are present. Platforms present are: cpu"),
        "cuda": RuntimeError("Backend 'cuda' failed to initialize: CUDA_ERROR_NO_DEVICE"),
    }  # fmt: skip

    def devices(platform=None):
        raise errors[platform]

    monkeypatch.setitem(sys.modules, "jax", SimpleNamespace(devices=devices))
    monkeypatch.delenv("JAX_PLATFORMS", raising=False)
    # the CUDA plugin's own failure, not only "no gpu platform"
    assert gpu_probe("jax") == (
        [],
        f"jax.devices('gpu'): RuntimeError: {errors['gpu']}; "
        f"jax.devices('cuda'): RuntimeError: {errors['cuda']}",
    )
    errors["cuda"] = RuntimeError("Unknown backend cuda. Available backends are ['cpu']")
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    assert gpu_probe("jax") == (
        [],
        f"jax.devices('gpu'): RuntimeError: {errors['gpu']} (JAX_PLATFORMS='cpu')",
    )


def test_tensorflow_says_whether_it_is_built_with_cuda(monkeypatch):
    built = {"cuda": False}
    tf = SimpleNamespace(
        __version__="2.21.0",
        config=SimpleNamespace(list_logical_devices=lambda kind: []),
        test=SimpleNamespace(is_built_with_cuda=lambda: built["cuda"]),
        sysconfig=SimpleNamespace(
            get_build_info=lambda: {"cuda_version": "12.5.1", "cudnn_version": "9"}
        ),
    )
    monkeypatch.setitem(sys.modules, "tensorflow", tf)
    assert gpu_probe("tensorflow") == (
        [],
        "tensorflow 2.21.0 is built without CUDA (tf.test.is_built_with_cuda() is False: "
        "tensorflow-cpu?)",
    )
    built["cuda"] = True
    assert gpu_probe("tensorflow") == (
        [],
        "tensorflow 2.21.0, built with CUDA 12.5.1 and cuDNN 9, lists no GPU (the CUDA "
        "libraries it could not load are in the worker's log)",
    )


def test_tensorflow_gpu_cells_log_the_cuda_libraries_they_cannot_load():
    """TensorFlow names the CUDA libraries it could not load in its C++ log, below the
    warnings level the harness keeps elsewhere: a GPU cell's worker logs them, and the runner
    quotes them when the cell fails in its device phase."""
    gpu = device_env("gpu", "tensorflow", visible=None)
    assert gpu["TF_CPP_MIN_LOG_LEVEL"] == "0" and gpu["TF_CPP_VMODULE"] == "dso_loader=1"
    cpu = device_env("cpu", "tensorflow", visible=None)
    assert cpu["TF_CPP_MIN_LOG_LEVEL"] == "2" and "TF_CPP_VMODULE" not in cpu


@pytest.mark.parametrize("present", [True, False])
def test_a_data_parallel_gpu_cell_that_sees_no_gpu_fails_where_one_is_there(
    tmp_path, monkeypatch, present
):
    """Keras' engine meets a broken CUDA stack first, as "0 gpu devices": that is a failure
    where a GPU is there, and the engine's skip only on a machine without one."""
    from harness import monitor
    from harness.protocol import Task
    from harness.scenario import Cell
    from harness.worker import cell as worker_cell
    from harness.worker import devices as worker_devices
    from harness.worker import parallel

    def missing(*args):
        raise parallel.Missing("data_parallel = 2 but jax sees 0 gpu device(s): ")

    monkeypatch.setattr(parallel, "start", missing)
    monkeypatch.setattr(worker_devices, "gpu_probe", probe_sees([], BROKEN))
    monkeypatch.setattr(monitor, "gpu_presence", machine(present))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    cell = Cell(scenario="s", id="dp2", device="gpu", data_parallel=2)
    task = {"cell": cell.to_json(), "backend": "jax", "scenario": {"name": "s"}}
    worker = worker_cell.Worker(Task.from_json(task), tmp_path / "result.json", None, False)
    if present:
        with pytest.raises(GpuUnusable, match=f"but jax cannot use it: {BROKEN}"):
            worker._start_parallel()
    else:
        with pytest.raises(worker_cell.CellOutcome) as caught:
            worker._start_parallel()
        assert caught.value.status == "skipped"
        assert caught.value.reason == "data_parallel = 2 but jax sees 0 gpu device(s): "
