"""`cifarbench doctor`: this machine's fingerprint, and whether the study can run here.

Where PyTorch sees no GPU, it names the cause and the fix among the known ones (the study it
reruns lost most of its time to them): a CPU-only PyTorch on a machine with an NVIDIA GPU, a
CUDA runtime newer than the driver supports, no driver loaded or no device nodes, WSL2 without
the Windows driver's libraries, CUDA_VISIBLE_DEVICES hiding the GPU. It also checks the disk
for the download and the cache, and that the data can be had. Exit status 0 when the study
can run: GPU variants falling back to the CPU is a warning, not a failure.

Each probe is a plain value (`CudaProbes`, free bytes, a reachability problem), so each
diagnosis is tested with faked ones; `probe_cuda` and the `probe_*` functions read the machine.
"""

import argparse
import http.client
import os
import sys
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml

from cifarbench import energy, fingerprint, nvml
from cifarbench.atomic import FREE_MARGIN_BYTES, free_bytes
from cifarbench.errors import UserError
from cifarbench.units import MB

ROOT = Path("/")
NVIDIA_VENDOR = "0x10de"
DISPLAY_CLASS = "0x03"  # PCI class 03: VGA (0x0300) and 3D (0x0302) controllers
WSL_LIBCUDA = "usr/lib/wsl/lib/libcuda.so"  # the Windows driver's CUDA, mounted into WSL2
# The official archive holds 60,000 images in 170,498,071 bytes; the cache keeps each image
# as 3x32x32 bytes and its label.
ARCHIVE_BYTES_PER_IMAGE = 2842
CACHE_BYTES_PER_IMAGE = 3 * 32 * 32 + 8
URL_TIMEOUT_S = 10


@dataclass(frozen=True)
class Finding:
    level: str  # ok | warning | error
    cause: str
    fix: str = ""


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
CONSEQUENCE = {
    "cpu": "GPU variants will run on the CPU, labelled as such (gpu_fallback: cpu)",
    "skip": "GPU variants will be skipped (gpu_fallback: skip)",
    "error": "GPU variants will stop the run (gpu_fallback: error)",
}


def causes(p: CudaProbes) -> list[tuple[str, str]]:
    """Why PyTorch sees no GPU here: every known cause that applies, the likeliest first."""
    return [found for cause in CAUSES if (found := cause(p))] or [UNKNOWN_CAUSE]


def why_no_cuda() -> str:
    """The likeliest cause on this machine, for a GPU variant's fallback `reason`."""
    return causes(probe_cuda())[0][0]


def cuda_findings(p: CudaProbes, gpu_fallback: str) -> list[Finding]:
    if p.cuda_available:
        return [Finding("ok", f"PyTorch sees {p.torch_gpus} GPU(s): GPU variants run there")]
    level = "error" if gpu_fallback == "error" else "warning"
    found = [Finding(level, cause, fix) for cause, fix in causes(p)]
    return [Finding(level, CONSEQUENCE[gpu_fallback]), *found]


def probe_disk(resources: Path, data: dict) -> tuple[int, int]:
    """Bytes free where the archive and the cache go, and the bytes still to be written there
    (nothing for a file already in place) with the margin every write keeps."""
    images = data["train_size"] + data["test_size"]
    needed = FREE_MARGIN_BYTES
    if not (resources / "cifar-10-python.tar.gz").exists():
        needed += images * ARCHIVE_BYTES_PER_IMAGE
    if not (resources / "cifar10.npz").exists():
        needed += images * CACHE_BYTES_PER_IMAGE
    existing = next(folder for folder in (resources, *resources.parents) if folder.exists())
    return free_bytes(existing), needed


def disk_finding(folder: Path, free: int, needed: int) -> Finding:
    space = (
        f"{folder}: {free / MB:,.0f} MB free, the download and the cache need {needed / MB:,.0f} MB"
    )
    if free < needed:
        return Finding("error", space, "free some space, or run from a folder on a larger disk")
    return Finding("ok", space)


def probe_data(url: str, local_copy: Path) -> str | None:
    """Why the study could not get its data (None: it can): the archive already in place, a
    local file, or a URL that answers."""
    if local_copy.exists():
        return None
    if url.startswith(("http://", "https://")):
        try:
            urllib.request.urlopen(
                urllib.request.Request(url, method="HEAD"), timeout=URL_TIMEOUT_S
            ).close()
        except (OSError, ValueError, http.client.HTTPException) as error:
            return f"cannot reach {url}: {getattr(error, 'reason', error)}"
        return None
    path = Path(
        urllib.request.url2pathname(urllib.parse.urlparse(url).path) if "://" in url else url
    )
    return None if path.is_file() else f"{path}: no such file"


def data_finding(url: str, problem: str | None) -> Finding:
    if problem is None:
        return Finding("ok", f"the data can be had from {url}")
    return Finding(
        "error",
        f"{problem}, and no copy in resources/",
        "point data.url at a local copy with --configfile (README: Offline, or with your own "
        "copy of the archive)",
    )


def describe(machine: dict) -> list[str]:
    """The fingerprint, one line per part."""
    cpu, system, build = machine["cpu"], machine["os"], machine["pytorch"]
    quota = f", cgroup quota {cpu['cgroup_quota_cpus']:g}" if cpu["cgroup_quota_cpus"] else ""
    built = f"built for CUDA {build['cuda']}" if build["cuda"] else "a CPU-only build"
    cudnn = f", cuDNN {build['cudnn']}" if build["cudnn"] else ""
    driver = machine["nvidia_driver"]
    lines = [
        f"machine  {machine['name']} (id {machine['id']})",
        f"cpu      {cpu['model']}; {cpu['usable_cores']} of {cpu['logical_cpus']} cores usable "
        f"(affinity {cpu['affinity_cpus']}{quota}); flags: {' '.join(cpu['flags']) or 'none'}; "
        f"governor: {cpu['governor'] or 'not readable'}",
        f"memory   {machine['memory_gb']} GB",
        f"os       {system['name']}, kernel {system['kernel']}; container: "
        f"{system['container'] or 'none seen'}; WSL2: {'yes' if system['wsl2'] else 'no'}",
        f"python   {machine['python']}",
        f"pytorch  {build['version']}, {built}{cudnn}",
        *[_gpu_line(index, gpu) for index, gpu in enumerate(machine["gpus"])],
        *([] if machine["gpus"] else ["gpu      none seen"]),
        f"driver   NVIDIA {driver['version']}, CUDA up to {driver['cuda']}"
        if driver["version"]
        else "driver   no NVIDIA driver answered (NVML)",
        f"energy   CPU: {_energy_source(torch.device('cpu'))}",
    ]
    if torch.cuda.is_available():
        lines.append(f"energy   GPU: {_energy_source(torch.device('cuda'))}")
    return lines


def _gpu_line(index: int, gpu: dict) -> str:
    def known(value, unit: str) -> str:
        return "?" if value is None else f"{value:.0f}{unit}"

    return (
        f"gpu {index}    {gpu['name']}, compute capability {gpu['compute_capability']}, "
        f"{known(gpu['memory_mb'], ' MB')}, power limit {known(gpu['power_limit_w'], ' W')}, "
        f"max clocks {known(gpu['sm_clock_max_mhz'], '')}/"
        f"{known(gpu['memory_clock_max_mhz'], ' MHz')} (SM/memory)"
    )


def _energy_source(device: torch.device) -> str:
    try:
        return f"{energy.open_counter(device).source} counters readable"
    except energy.NoCounter as missing:
        return str(missing)


def load_config(paths: list[str]) -> dict:
    """The workflow's config as Snakemake merges its --configfile list: later files win,
    key by key."""
    config: dict = {}
    for path in paths:
        try:
            _merge(config, yaml.safe_load(Path(path).read_text()) or {})
        except (OSError, yaml.YAMLError) as error:
            raise UserError(f"{path}: cannot read the config: {error}") from error
    return config


def _merge(into: dict, update: dict) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def diagnose(config: dict | None, resources: Path) -> list[Finding]:
    """Every finding for this machine; without a config, the CUDA set-up only."""
    if config is None:
        missing = Finding(
            "warning",
            "no config.yaml here: data source and disk not checked",
            "run the doctor in the workflow's folder",
        )
        return [*cuda_findings(probe_cuda(), "cpu"), missing]
    data = config["data"]
    return [
        *cuda_findings(probe_cuda(), config.get("gpu_fallback", "cpu")),
        disk_finding(resources, *probe_disk(resources, data)),
        data_finding(data["url"], probe_data(data["url"], resources / "cifar-10-python.tar.gz")),
    ]


def report(machine: dict, findings: list[Finding]) -> str:
    lines = [*describe(machine), ""]
    for finding in findings:
        lines.append(f"{finding.level}: {finding.cause}")
        lines += [f"  fix: {finding.fix}"] if finding.fix else []
    can_run = all(finding.level != "error" for finding in findings)
    lines.append("the study can run here" if can_run else "the study cannot run here yet")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """`cifarbench doctor [--configfile FILE ...]`, in the workflow's folder."""
    parser = argparse.ArgumentParser(prog="cifarbench doctor", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--configfile",
        nargs="+",
        default=[],
        help="config files on top of config.yaml, as Snakemake's",
    )
    args = parser.parse_args(argv)
    shipped = ["config.yaml"] if Path("config.yaml").exists() else []
    try:
        config = load_config(shipped + args.configfile) if shipped + args.configfile else None
    except UserError as error:
        print(f"cifarbench error: {error}", file=sys.stderr)
        return 1
    findings = diagnose(config, Path("resources"))
    print(report(fingerprint.machine((config or {}).get("machine")), findings))
    return 1 if any(finding.level == "error" for finding in findings) else 0


if __name__ == "__main__":
    sys.exit(main())
