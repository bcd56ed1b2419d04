"""The machine a result was measured on: hardware, OS, container, driver, and a short id.

Two results can stand side by side only if the reader knows what each ran on, as MLPerf keeps
a system description beside every result. Every probe answers None where the machine does
not tell (no cpufreq in a VM, no GPU); none of them fails.
"""

import hashlib
import json
import math
import os
import platform
import socket
from collections.abc import Mapping
from pathlib import Path

import psutil
import torch

from cifarbench import measure, nvml
from cifarbench.units import MB

GB = 1 << 30
ROOT = Path("/")


def machine(name: str | None = None, root: Path = ROOT) -> dict:
    """This machine's fingerprint, named `name` (the config's `machine:`) or after its host."""
    host = socket.gethostname()
    parts = {
        "cpu": cpu(root),
        "memory_gb": round(psutil.virtual_memory().total / GB, 1),
        "os": operating_system(root),
        "python": platform.python_version(),
        "pytorch": pytorch_build(),
        "gpus": gpus(),
        "nvidia_driver": nvml.driver(),
    }
    return {"name": name or host, "id": machine_id(parts), "host": host, **parts}


def machine_id(parts: dict) -> str:
    """A short id from the hardware alone (CPU, core count, memory, GPUs), so that a new
    driver, kernel or PyTorch leaves it as it was, and two machines of one model share it."""
    hardware = [
        parts["cpu"]["model"],
        parts["cpu"]["logical_cpus"],
        round(parts["memory_gb"]),
        sorted((gpu["name"] or "", round((gpu["memory_mb"] or 0) / 1024)) for gpu in parts["gpus"]),
    ]
    return hashlib.sha256(json.dumps(hardware).encode()).hexdigest()[:12]


def cpu(root: Path = ROOT) -> dict:
    """The CPU, and how much of it a job here may use: its affinity, capped by a cgroup's
    CPU quota (a container's or a SLURM job's `--cpus`)."""
    affinity = len(os.sched_getaffinity(0))
    quota = cgroup_cpu_quota(root)
    return {
        "model": measure.cpu_model(),
        "flags": measure.cpu_flags(),
        "logical_cpus": os.cpu_count(),
        "affinity_cpus": affinity,
        "cgroup_quota_cpus": quota,
        "usable_cores": min(affinity, math.ceil(quota)) if quota else affinity,
        "governor": _read(root / "sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
    }


def cgroup_cpu_quota(root: Path = ROOT) -> float | None:
    """CPUs' worth of time this process's cgroup may use per period; None: no quota.

    cgroup v2 writes `cpu.max` as "<quota> <period>" ("max" for none); v1 keeps the two in
    `cpu.cfs_quota_us` (-1 for none) and `cpu.cfs_period_us`.
    """
    v2, v1 = _cgroup_paths(root)
    cgroup = root / "sys/fs/cgroup"
    for folder in (cgroup / v2, cgroup):
        limit = _read(folder / "cpu.max")
        if limit:
            quota, period = limit.split()
            return None if quota == "max" else int(quota) / int(period)
    for folder in (cgroup / "cpu" / v1, cgroup / "cpu"):
        quota, period = _read(folder / "cpu.cfs_quota_us"), _read(folder / "cpu.cfs_period_us")
        if quota and period:
            return None if int(quota) < 0 else int(quota) / int(period)
    return None


def _cgroup_paths(root: Path) -> tuple[str, str]:
    """This process's cgroup: its v2 path and its v1 `cpu` controller's path, relative."""
    v2 = v1 = ""
    for line in (_read(root / "proc/self/cgroup") or "").splitlines():
        hierarchy, controllers, path = line.split(":", 2)
        if hierarchy == "0":
            v2 = path.lstrip("/")
        elif "cpu" in controllers.split(","):
            v1 = path.lstrip("/")
    return v2, v1


def operating_system(root: Path = ROOT) -> dict:
    return {
        "name": _os_name(),
        "kernel": platform.release(),
        "container": container(root),
        "wsl2": is_wsl2(root),
    }


def _os_name() -> str:
    try:
        return platform.freedesktop_os_release()["PRETTY_NAME"]
    except (OSError, KeyError):  # not Linux, or no os-release
        return platform.platform(terse=True)


def container(root: Path = ROOT, environ: Mapping[str, str] = os.environ) -> str | None:
    """The container runtime this process runs in, by the marks each leaves; None: none seen."""
    marks = {
        "docker": (root / ".dockerenv").exists(),
        "podman": (root / "run/.containerenv").exists(),
        "apptainer": bool(environ.get("APPTAINER_CONTAINER") or environ.get("SINGULARITY_NAME")),
        "kubernetes": "KUBERNETES_SERVICE_HOST" in environ,
    }
    found = next((runtime for runtime, seen in marks.items() if seen), None)
    # systemd's convention, kept by podman, LXC and systemd-nspawn
    return found or environ.get("container") or _container_in_cgroup(root)


def _container_in_cgroup(root: Path) -> str | None:
    init_cgroup = _read(root / "proc/1/cgroup") or ""
    return next((name for name in ("docker", "kubepods", "lxc") if name in init_cgroup), None)


def is_wsl2(root: Path = ROOT) -> bool:
    """WSL2's kernel names itself ("5.15.90.1-microsoft-standard-WSL2"); WSL1 has no CUDA."""
    release = (_read(root / "proc/sys/kernel/osrelease") or "").lower()
    return "microsoft-standard" in release or "wsl2" in release


def pytorch_build() -> dict:
    """The PyTorch build: the CUDA version it was built for (None: a CPU-only build)."""
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return {"version": torch.__version__, "cuda": torch.version.cuda, "cudnn": cudnn}


def gpus() -> list[dict]:
    """Every NVIDIA GPU, from NVML; from PyTorch (fewer details) where NVML is absent."""
    return nvml.gpus() or _torch_gpus()


def _torch_gpus() -> list[dict]:
    try:
        if not torch.cuda.is_available():
            return []
        properties = [torch.cuda.get_device_properties(i) for i in range(torch.cuda.device_count())]
    except (RuntimeError, AssertionError):  # a broken CUDA set-up: the doctor says why
        return []
    return [
        {
            "name": p.name,
            "compute_capability": f"{p.major}.{p.minor}",
            "memory_mb": p.total_memory / MB,
            "power_limit_w": None,
            "sm_clock_max_mhz": None,
            "memory_clock_max_mhz": None,
        }
        for p in properties
    ]


def _read(path: Path) -> str | None:
    """A small system file's text, stripped; None where it is absent or unreadable."""
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None
