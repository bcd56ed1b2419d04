"""`cifarbench doctor`: this machine's fingerprint, and whether the study can run here.

Where PyTorch sees no GPU, it names the causes and their fixes (cifarbench.cuda_causes). It
also checks the disk for the download and the cache, and that the data can be had. Exit
status 0 when the study can run: GPU variants falling back to the CPU is a warning, not a
failure. Each check reads the machine in a `probe_*` function into plain values, so each
diagnosis is tested with faked ones.
"""

import argparse
import http.client
import sys
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml

from cifarbench import cuda_causes, energy, fingerprint
from cifarbench.atomic import FREE_MARGIN_BYTES, free_bytes
from cifarbench.config import validate_config
from cifarbench.errors import UserError
from cifarbench.units import MB

# The official archive holds 60,000 images in 170,498,071 bytes; the cache keeps each image
# as 3x32x32 bytes and its label.
ARCHIVE_BYTES_PER_IMAGE = 2842
CACHE_BYTES_PER_IMAGE = 3 * 32 * 32 + 8
URL_TIMEOUT_S = 10
CONFIG_SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "config.schema.yaml"


@dataclass(frozen=True)
class Finding:
    level: str  # ok | warning | error
    cause: str
    fix: str = ""


CONSEQUENCE = {
    "cpu": "GPU variants will run on the CPU, labelled as such (gpu_fallback: cpu)",
    "skip": "GPU variants will be skipped (gpu_fallback: skip)",
    "error": "GPU variants will stop the run (gpu_fallback: error)",
}


def cuda_findings(p: cuda_causes.CudaProbes, gpu_fallback: str) -> list[Finding]:
    if p.cuda_available:
        return [Finding("ok", f"PyTorch sees {p.torch_gpus} GPU(s): GPU variants run there")]
    level = "error" if gpu_fallback == "error" else "warning"
    found = [Finding(level, cause, fix) for cause, fix in cuda_causes.causes(p)]
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
        try:  # a GET closed after its headers: some servers refuse HEAD
            urllib.request.urlopen(url, timeout=URL_TIMEOUT_S).close()
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
        return [*cuda_findings(cuda_causes.probe_cuda(), "cpu"), missing]
    data = config["data"]
    return [
        *cuda_findings(cuda_causes.probe_cuda(), config.get("gpu_fallback", "cpu")),
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
        if config is not None:
            validate_config(config, CONFIG_SCHEMA)  # as Snakemake would, before any job
    except UserError as error:
        print(f"cifarbench error: {error}", file=sys.stderr)
        return 1
    findings = diagnose(config, Path("resources"))
    print(report(fingerprint.machine((config or {}).get("machine")), findings))
    return 1 if any(finding.level == "error" for finding in findings) else 0


if __name__ == "__main__":
    sys.exit(main())
