"""What the NVIDIA driver tells of its GPUs, through NVML (the `nvidia-ml-py` package).

Every answer is "absent" (None, or an empty list) where NVML cannot give it: the package not
installed, no driver, no GPU, a query the GPU does not support. Never an error: a machine
without a GPU is an ordinary machine here.
"""

import functools
from collections.abc import Callable
from typing import Any

import torch

from cifarbench.units import MB


@functools.cache
def library():
    """The initialised `pynvml` module, or None. Imported only when asked for, so a machine
    without it (or without a driver) loses nothing but these answers."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # not installed, no libnvidia-ml, driver not loaded: all mean "absent"
        return None
    return pynvml


def query(call: Callable, *args) -> Any:
    """`call(*args)`, or None where NVML cannot answer it."""
    try:
        return call(*args)
    except Exception:  # NVMLError_NotSupported and kin: that answer is absent
        return None


def _text(value) -> str | None:
    """NVML's strings: bytes from older bindings, str from newer ones."""
    return value.decode() if isinstance(value, bytes) else value


def driver() -> dict:
    """The driver's version and the highest CUDA version it supports ("12.4")."""
    nvml = library()
    if nvml is None:
        return {"version": None, "cuda": None}
    cuda = query(nvml.nvmlSystemGetCudaDriverVersion_v2)  # 12040 for 12.4
    return {
        "version": _text(query(nvml.nvmlSystemGetDriverVersion)),
        "cuda": f"{cuda // 1000}.{cuda % 1000 // 10}" if cuda else None,
    }


def gpus() -> list[dict]:
    """Every NVIDIA GPU the driver sees, whatever CUDA_VISIBLE_DEVICES hides from PyTorch."""
    nvml = library()
    if nvml is None:
        return []
    count = query(nvml.nvmlDeviceGetCount) or 0
    handles = [query(nvml.nvmlDeviceGetHandleByIndex, index) for index in range(count)]
    return [_gpu(nvml, handle) for handle in handles if handle is not None]


def _gpu(nvml, handle) -> dict:
    memory = query(nvml.nvmlDeviceGetMemoryInfo, handle)
    capability = query(nvml.nvmlDeviceGetCudaComputeCapability, handle)
    power_limit_mw = query(nvml.nvmlDeviceGetPowerManagementLimit, handle)
    return {
        "name": _text(query(nvml.nvmlDeviceGetName, handle)),
        "compute_capability": "{}.{}".format(*capability) if capability else None,
        "memory_mb": memory.total / MB if memory else None,
        "power_limit_w": power_limit_mw / 1000 if power_limit_mw is not None else None,
        "sm_clock_max_mhz": query(nvml.nvmlDeviceGetMaxClockInfo, handle, nvml.NVML_CLOCK_SM),
        "memory_clock_max_mhz": query(nvml.nvmlDeviceGetMaxClockInfo, handle, nvml.NVML_CLOCK_MEM),
    }


def device_handle(device: torch.device):
    """NVML's handle for the GPU PyTorch calls `device`, found by its UUID (PyTorch's device
    numbers count only what CUDA_VISIBLE_DEVICES shows; NVML's count every GPU)."""
    nvml = library()
    if nvml is None:
        return None
    uuid = query(lambda: torch.cuda.get_device_properties(device).uuid)
    return None if uuid is None else query(nvml.nvmlDeviceGetHandleByUUID, f"GPU-{uuid}")


def total_energy_mj(handle) -> int | None:
    """The GPU's energy counter: millijoules since the driver was loaded (Volta and newer)."""
    nvml = library()
    return None if nvml is None else query(nvml.nvmlDeviceGetTotalEnergyConsumption, handle)
