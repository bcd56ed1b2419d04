"""Why PyTorch sees no GPU here: the known causes, each with its fix.

The study this project reruns lost most of its time to these: a CPU-only PyTorch on a machine
with an NVIDIA GPU, a CUDA runtime newer than the driver supports, no driver loaded or no
device nodes, WSL2 without the Windows driver's libraries, CUDA_VISIBLE_DEVICES hiding the GPU.
`probe_cuda` reads the machine into a plain value, so each cause is tested with faked probes;
`cifarbench doctor` prints them, and a GPU variant's fallback `reason` names the likeliest.
"""

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from cifarbench import fingerprint, nvml

ROOT = Path("/")
NVIDIA_VENDOR = "0x10de"
DISPLAY_CLASS = "0x03"  # PCI class 03: VGA (0x0300) and 3D (0x0302) controllers
WSL_LIBCUDA = "usr/lib/wsl/lib/libcuda.so"  # the Windows driver's CUDA, mounted into WSL2


@dataclass(frozen=True)
class CudaProbes:
    """What decides whether PyTorch can use a GPU here."""

    torch_version: str
    torch_cuda: str | None  # the CUDA version PyTorch was built for; None: a CPU-only build
    cuda_available: bool
    torch_gpus: int  # GPUs PyTorch sees
    pci_gpus: int  # NVIDIA display controllers on the PCI bus
    nvml_gpus: int  # GPUs the driver reports
    driver_loaded: bool  # /proc/driver/nvidia exists
    device_nodes: bool  # /dev/nvidiactl and /dev/nvidia0 exist
    driver_cuda: str | None  # the highest CUDA version the driver supports
    wsl2: bool
    wsl_driver_libs: bool
    visible_devices: str | None  # CUDA_VISIBLE_DEVICES, None when unset

    @property
    def gpus_present(self) -> int:
        return max(self.pci_gpus, self.nvml_gpus)


def probe_cuda(root: Path = ROOT, environ: Mapping[str, str] = os.environ) -> CudaProbes:
    available = torch.cuda.is_available()
    return CudaProbes(
        torch_version=torch.__version__,
        torch_cuda=torch.version.cuda,
        cuda_available=available,
        torch_gpus=torch.cuda.device_count() if available else 0,
        pci_gpus=pci_nvidia_gpus(root),
        nvml_gpus=len(nvml.gpus()),
        driver_loaded=(root / "proc/driver/nvidia").exists(),
        device_nodes=all((root / "dev" / node).exists() for node in ("nvidiactl", "nvidia0")),
        driver_cuda=nvml.driver()["cuda"],
        wsl2=fingerprint.is_wsl2(root),
        wsl_driver_libs=(root / WSL_LIBCUDA).exists(),
        visible_devices=environ.get("CUDA_VISIBLE_DEVICES"),
    )


def pci_nvidia_gpus(root: Path = ROOT) -> int:
    """NVIDIA GPUs on the PCI bus: seen with or without a driver (not under WSL2)."""
    count = 0
    for device in (root / "sys/bus/pci/devices").glob("*"):
        vendor, kind = _read(device / "vendor"), _read(device / "class")
        count += vendor == NVIDIA_VENDOR and kind.startswith(DISPLAY_CLASS)
    return count


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


# Each known cause: (probes) -> (cause, fix), or None where it does not apply.
Cause = Callable[[CudaProbes], tuple[str, str] | None]


def _cpu_only_build(p: CudaProbes) -> tuple[str, str] | None:
    if p.torch_cuda is None and p.gpus_present:
        return (
            f"PyTorch {p.torch_version} is a CPU-only build, but this machine has an NVIDIA GPU",
            "install PyTorch's CUDA build for a CUDA no newer than `nvidia-smi` shows "
            "(pip install torch torchvision --index-url https://download.pytorch.org/whl/cu126), "
            "or run with --use-conda (envs/torch.yaml)",
        )
    return None


def _wsl_without_driver_libraries(p: CudaProbes) -> tuple[str, str] | None:
    if p.wsl2 and not p.wsl_driver_libs:
        return (
            f"WSL2 without the Windows NVIDIA driver's libraries (no /{WSL_LIBCUDA})",
            "install the NVIDIA driver on Windows, not inside Linux, then `wsl --shutdown` "
            "and open WSL again",
        )
    return None


def _driver_not_loaded(p: CudaProbes) -> tuple[str, str] | None:
    if p.pci_gpus and not p.driver_loaded:
        return (
            "an NVIDIA GPU is on the PCI bus but no NVIDIA driver is loaded "
            "(no /proc/driver/nvidia)",
            "install the NVIDIA driver (or `sudo modprobe nvidia`); `nvidia-smi` must list the GPU",
        )
    return None


def _no_device_nodes(p: CudaProbes) -> tuple[str, str] | None:
    if p.driver_loaded and not p.device_nodes:
        return (
            "the NVIDIA driver is loaded but /dev/nvidia0 or /dev/nvidiactl is missing",
            "in a container, start it with the GPU (docker run --gpus all, apptainer --nv); "
            "on the host, `sudo nvidia-modprobe -u -c=0`",
        )
    return None


def _hidden_by_visible_devices(p: CudaProbes) -> tuple[str, str] | None:
    visible = p.visible_devices
    if visible is not None and p.gpus_present and hides_every_gpu(visible, p.gpus_present):
        return (
            f"CUDA_VISIBLE_DEVICES={visible!r} hides every GPU from PyTorch",
            "unset CUDA_VISIBLE_DEVICES, or set it to a GPU's index (0) or UUID (`nvidia-smi -L`)",
        )
    return None


def hides_every_gpu(visible: str, gpus: int) -> bool:
    """Whether CUDA_VISIBLE_DEVICES leaves no GPU: CUDA reads its list up to the first entry
    that names no device (an empty value, -1, an index past the last GPU)."""
    first = visible.split(",")[0].strip()
    if first.startswith(("GPU-", "MIG-")):
        return False  # a UUID: the driver checks it
    return not (first.isdigit() and int(first) < gpus)


def _runtime_newer_than_driver(p: CudaProbes) -> tuple[str, str] | None:
    if p.torch_cuda and p.driver_cuda and _version(p.torch_cuda) > _version(p.driver_cuda):
        return (
            f"PyTorch is built for CUDA {p.torch_cuda}, newer than the CUDA {p.driver_cuda} "
            "the NVIDIA driver supports",
            f"update the NVIDIA driver, or install a PyTorch built for CUDA {p.driver_cuda} "
            "or older (envs/torch.yaml's CUDA 11.8 build: --use-conda)",
        )
    return None


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".") if part.isdigit())


def _no_gpu(p: CudaProbes) -> tuple[str, str] | None:
    if not p.gpus_present and not p.wsl2:
        return "no NVIDIA GPU on this machine", "none needed for the CPU variants"
    return None


CAUSES: list[Cause] = [
    _cpu_only_build,
    _wsl_without_driver_libraries,
    _driver_not_loaded,
    _no_device_nodes,
    _hidden_by_visible_devices,
    _runtime_newer_than_driver,
    _no_gpu,
]
UNKNOWN_CAUSE = (
    "PyTorch sees no GPU, for none of the causes the doctor knows",
    "`python -c 'import torch; torch.cuda.init()'` prints CUDA's own error",
)


def causes(p: CudaProbes) -> list[tuple[str, str]]:
    """Why PyTorch sees no GPU here: every known cause that applies, the likeliest first."""
    return [found for cause in CAUSES if (found := cause(p))] or [UNKNOWN_CAUSE]


def why_no_cuda() -> str:
    """The likeliest cause on this machine, for a GPU variant's fallback `reason`."""
    return causes(probe_cuda())[0][0]
