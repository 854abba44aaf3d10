"""Finding GPUs through NVML: whether NVML answers, whether the machine has an NVIDIA GPU at
all, the GPUs it lists (``harness env``), and which GPU a worker trains on, from its
CUDA_VISIBLE_DEVICES entry. Nothing here raises: NVML trouble is a reason on one line.
"""

from __future__ import annotations

import contextlib
import glob
import os
from collections.abc import Callable, Mapping
from typing import Any

from ..devices import visible_entries
from ..errors import one_line


def decode(value: Any) -> str:
    """Decodes the bytes that older pynvml releases return for strings."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def nvml_status(nvml: Any = None) -> tuple[Any | None, str]:
    """Imports (if needed) and initialises NVML without ever raising.

    Args:
        nvml: A module-like object with the pynvml API; None imports `pynvml`.

    Returns:
        `(nvml, "ok")` when `nvmlInit` succeeded (the caller then owns one `nvmlShutdown`),
        otherwise `(None, reason)` with a one-line reason.
    """
    if nvml is None:
        try:
            import pynvml as nvml
        except ImportError as exc:
            return None, f"NVML unavailable: pynvml not importable ({one_line(exc)})"
    try:
        nvml.nvmlInit()
    # Broad on purpose: besides NVMLError, a broken driver install can surface as OSError and
    # friends, and a missing GPU must never take the caller down.
    except Exception as exc:
        return None, f"NVML unavailable: {one_line(exc)}"
    return nvml, "ok"


# The device node the NVIDIA driver makes for each GPU (nvidiactl and nvidia-uvm name none).
NVIDIA_DEVICE_NODES = "/dev/nvidia[0-9]*"


def gpu_presence(
    nvml: Any = None, node_glob: Callable[[str], list[str]] = glob.glob
) -> tuple[bool, str]:
    """Whether this machine has an NVIDIA GPU at all, whatever a backend makes of it. Never
    raises.

    A GPU cell whose backend sees no GPU is skipped only where this finds none: NVML counts
    no GPU and the driver made no /dev/nvidiaN node (NVML may be what broke). Anywhere else
    the GPU is there but unusable, and the cell fails.

    Args:
        nvml: A module-like object with the pynvml API; None imports `pynvml`.
        node_glob: Lists the paths a pattern matches (tests pass a fake).

    Returns:
        (present, what shows it, or what was looked at) on one line, e.g.
        (True, "NVML sees 1 GPU") or (False, "NVML unavailable: ...; no /dev/nvidia[0-9]*
        device node").
    """
    mod, status = nvml_status(nvml)
    count = 0
    if mod is not None:
        try:
            count = int(mod.nvmlDeviceGetCount())
            status = f"NVML sees {count} GPU{'' if count == 1 else 's'}"
        except Exception as exc:  # as in nvml_status: NVML trouble must never raise
            status = f"NVML device count failed: {one_line(exc)}"
        finally:
            shutdown(mod)
    if count > 0:
        return True, status
    try:
        nodes = sorted(node_glob(NVIDIA_DEVICE_NODES))
    except OSError:
        nodes = []
    if nodes:
        return True, f"{nodes[0]} exists ({status})"
    return False, f"{status}; no {NVIDIA_DEVICE_NODES} device node"


def shutdown(nvml: Any) -> None:
    """Releases one nvmlInit; failures here are irrelevant to the caller."""
    # Broad for the same reason as in nvml_status: NVML trouble must never raise.
    with contextlib.suppress(Exception):
        nvml.nvmlShutdown()


def gpu_inventory(nvml: Any = None) -> dict:
    """Lists the GPUs NVML reports, for `harness env` and the environment fingerprint.

    Args:
        nvml: A module-like object with the pynvml API; None imports `pynvml`.

    Returns:
        `{"status": "ok" | reason, "driver": str | None,
        "gpus": [{"index", "name", "fb_total", "uuid"}]}`. Never raises.
    """
    mod, status = nvml_status(nvml)
    result: dict = {"status": status, "driver": None, "gpus": []}
    if mod is None:
        return result
    error = getattr(mod, "NVMLError", Exception)
    try:
        result["driver"] = or_none(error, lambda: decode(mod.nvmlSystemGetDriverVersion()))
        try:
            count = mod.nvmlDeviceGetCount()
        except error as exc:
            result["status"] = f"NVML device count failed: {one_line(exc)}"
            return result
        for index in range(count):
            try:
                handle = mod.nvmlDeviceGetHandleByIndex(index)
            except error as exc:
                result["status"] = f"NVML GPU {index} unavailable: {one_line(exc)}"
                continue
            result["gpus"].append(describe_gpu(mod, error, index, handle))
    finally:
        shutdown(mod)
    return result


def resolve_visible_gpu(entry: str, nvml: Any = None) -> dict:
    """Finds the GPU that one CUDA_VISIBLE_DEVICES entry names, as NVML sees it. Never raises.

    An index entry is taken as an NVML index: workers run with CUDA_DEVICE_ORDER=PCI_BUS_ID,
    NVML's order. A "GPU-..." or "MIG-..." entry is a UUID, or a unique prefix of one (CUDA
    accepts both).

    Args:
        entry: One entry of CUDA_VISIBLE_DEVICES, e.g. "2" or "GPU-5e1d...".
        nvml: A module-like object with the pynvml API; None imports `pynvml`.

    Returns:
        `{"cuda_visible_devices": entry, "uuid", "name", "nvml_index"}` (None where unknown),
        with a one-line "reason" added when NVML cannot say which GPU it is (uuid None).
    """
    info: dict = {"cuda_visible_devices": entry, "uuid": None, "name": None, "nvml_index": None}
    mod, status = nvml_status(nvml)
    if mod is None:
        info["reason"] = status
        return info
    error = getattr(mod, "NVMLError", Exception)
    try:
        handle, index = _handle_for_entry(mod, error, entry)
        gpu = describe_gpu(mod, error, index, handle)
    except (error, LookupError) as exc:
        info["reason"] = f"CUDA_VISIBLE_DEVICES entry {entry!r}: {one_line(exc)}"
        return info
    finally:
        shutdown(mod)
    info.update(uuid=gpu["uuid"], name=gpu["name"], nvml_index=gpu["index"])
    if info["uuid"] is None:
        info["reason"] = f"NVML gives no UUID for the GPU of CUDA_VISIBLE_DEVICES entry {entry!r}"
    return info


def identify_cell_gpus(
    count: int, environ: Mapping[str, str] | None = None, nvml: Any = None
) -> list[dict]:
    """The GPUs a data-parallel worker trains on: the first ``count`` entries of its
    CUDA_VISIBLE_DEVICES (all GPUs by index where it is unset), each as
    `identify_cell_gpu` identifies one; an entry missing gives uuid None and the reason."""
    environ = os.environ if environ is None else environ
    entries = visible_entries(environ.get("CUDA_VISIBLE_DEVICES"))
    out = []
    for i in range(count):
        if entries is not None and i >= len(entries):
            out.append(
                {"cuda_visible_devices": None, "uuid": None, "name": None, "nvml_index": None,
                 "reason": f"CUDA_VISIBLE_DEVICES gives {len(entries)} GPU(s), not {count}"}
            )  # fmt: skip
            continue
        one = dict(environ)
        one["CUDA_VISIBLE_DEVICES"] = str(i) if entries is None else entries[i]
        out.append(identify_cell_gpu(one, nvml))
    return out


def identify_cell_gpu(environ: Mapping[str, str] | None = None, nvml: Any = None) -> dict:
    """Identifies the GPU a worker trains on: the first its CUDA_VISIBLE_DEVICES gives.

    Args:
        environ: The worker's environment; None reads `os.environ`.
        nvml: A module-like object with the pynvml API; None imports `pynvml`.

    Returns:
        What `resolve_visible_gpu` returns; with no GPU visible, uuid None and the reason.
    """
    environ = os.environ if environ is None else environ
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    entries = visible_entries(visible)
    if entries == []:
        return {
            "cuda_visible_devices": visible,
            "uuid": None,
            "name": None,
            "nvml_index": None,
            "reason": f"CUDA_VISIBLE_DEVICES={visible!r} hides every GPU",
        }
    # Unset, every GPU is visible and the backends train on their device 0.
    entry = "0" if entries is None else entries[0]
    info = resolve_visible_gpu(entry, nvml)
    if entry.isdigit() and environ.get("CUDA_DEVICE_ORDER") != "PCI_BUS_ID":
        # CUDA's default order puts the fastest GPU first; NVML counts by PCI bus.
        info["note"] = "CUDA_DEVICE_ORDER is not PCI_BUS_ID: CUDA's index may differ from NVML's"
    return info


def _handle_for_entry(mod: Any, error: Any, entry: str) -> tuple[Any, int | None]:
    """The NVML handle and index of a CUDA_VISIBLE_DEVICES entry.

    Raises:
        LookupError: The entry names no single GPU that NVML knows.
        NVMLError: NVML failed (as `error`).
    """
    if entry.isdigit():
        index = int(entry)
        return mod.nvmlDeviceGetHandleByIndex(index), index
    if not entry.startswith(("GPU-", "MIG-")):
        raise LookupError("neither a GPU index nor a GPU UUID")
    try:
        handle = mod.nvmlDeviceGetHandleByUUID(entry)
    except error:
        handle = _handle_by_uuid_prefix(mod, error, entry)
    return handle, or_none(error, mod.nvmlDeviceGetIndex, handle)


def _handle_by_uuid_prefix(mod: Any, error: Any, prefix: str) -> Any:
    """The handle of the one GPU whose UUID starts with `prefix` (CUDA accepts prefixes)."""
    found = []
    for index in range(mod.nvmlDeviceGetCount()):
        handle = mod.nvmlDeviceGetHandleByIndex(index)
        uuid = or_none(error, lambda h=handle: decode(mod.nvmlDeviceGetUUID(h)))
        if uuid is not None and uuid.startswith(prefix):
            found.append(handle)
    if len(found) != 1:
        what = "no GPU" if not found else f"{len(found)} GPUs"
        raise LookupError(f"NVML has {what} with a UUID starting {prefix}")
    return found[0]


def describe_gpu(mod: Any, error: Any, index: int | None, handle: Any) -> dict:
    """What identifies one GPU: NVML index, name, UUID and memory size (None where unknown)."""
    memory = or_none(error, mod.nvmlDeviceGetMemoryInfo, handle)
    return {
        "index": index,
        "name": or_none(error, lambda: decode(mod.nvmlDeviceGetName(handle))),
        "uuid": or_none(error, lambda: decode(mod.nvmlDeviceGetUUID(handle))),
        "fb_total": None if memory is None else int(memory.total),
    }


def or_none(error: type[BaseException] | tuple, fn: Any, *args: Any) -> Any:
    """Calls `fn(*args)`, turning the given NVML error into None (one missing field)."""
    try:
        return fn(*args)
    except error:
        return None
