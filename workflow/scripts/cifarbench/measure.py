"""What a result needs besides its numbers: memory samples, provenance, timestamps."""

import contextlib
import importlib.metadata
import os
import platform
import socket
import subprocess
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil
import torch

from cifarbench.units import MB


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def process_age_s() -> float:
    """Seconds since this process started (the training job's start-up overhead so far).

    On Linux this reads the start time in clock ticks since boot (10 ms each) and compares
    it with the boot-time clock. psutil's `create_time` adds the boot time from /proc/stat,
    which is truncated to whole seconds, so an age taken from it reads up to a second long.
    """
    try:
        stat = Path("/proc/self/stat").read_text()
    except OSError:  # not Linux
        return time.time() - psutil.Process().create_time()
    # Fields after the command name, which is in parentheses and may hold spaces; the 22nd
    # field of the line, starttime, is the 20th of these.
    start_ticks = int(stat.rsplit(")", 1)[1].split()[19])
    return time.clock_gettime(time.CLOCK_BOOTTIME) - start_ticks / os.sysconf("SC_CLK_TCK")


def rss_mb() -> float:
    """Resident memory of this process, as the study printed it."""
    return psutil.Process().memory_info().rss / MB


class MemorySampler:
    """Samples this process's RSS (and that of its DataLoader workers) on a background thread.

    `mean_rss_mb` is the study's "Memory Usage": the main process's RSS averaged over the
    samples taken during training. `peak_total_rss_mb` adds the worker processes, which the
    study's figure left out.
    """

    def __init__(self, interval_s: float = 0.25):
        self.interval_s = interval_s
        self.process = psutil.Process()
        self.main_samples: list[int] = []
        self.peak_total = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "MemorySampler":
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def sample(self) -> None:
        main = self.process.memory_info().rss
        self.main_samples.append(main)
        self.peak_total = max(self.peak_total, main + self._children_rss())

    def _children_rss(self) -> int:
        total = 0
        for child in self.process.children(recursive=True):
            # A worker may exit between being listed and being read.
            with contextlib.suppress(psutil.NoSuchProcess):
                total += child.memory_info().rss
        return total

    def summary(self) -> dict:
        return {
            "rss_mean_mb": sum(self.main_samples) / len(self.main_samples) / MB,
            "rss_peak_mb": max(self.main_samples) / MB,
            "rss_peak_with_workers_mb": self.peak_total / MB,
            "samples": len(self.main_samples),
        }


def cuda_memory(device: torch.device) -> dict:
    if device.type != "cuda":
        return {"cuda_peak_allocated_mb": None, "cuda_peak_reserved_mb": None}
    return {
        "cuda_peak_allocated_mb": torch.cuda.max_memory_allocated(device) / MB,
        "cuda_peak_reserved_mb": torch.cuda.max_memory_reserved(device) / MB,
    }


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return cpu_model()


# The CPU features that decide this study's speed on a CPU: the vector width of PyTorch's
# kernels, and bf16 in hardware. Two CPUs of one model name can differ in exactly these, and
# whether bf16 pays depends on them (docs/benchmarks.md), so a result records them.
SPEED_RELEVANT_CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16")
CPUINFO = Path("/proc/cpuinfo")


def cpu_model() -> str:
    return _cpuinfo_field("model name") or platform.processor() or platform.machine()


def cpu_flags(cpuinfo: Path = CPUINFO) -> list[str]:
    """Which of SPEED_RELEVANT_CPU_FLAGS this CPU has (empty where there is no cpuinfo)."""
    flags = set(_cpuinfo_field("flags", cpuinfo).split())
    return [flag for flag in SPEED_RELEVANT_CPU_FLAGS if flag in flags]


def _cpuinfo_field(name: str, cpuinfo: Path = CPUINFO) -> str:
    """The first CPU's `name` line in cpuinfo, or "" off Linux."""
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.split(":", 1)[0].strip() == name:
                return line.split(":", 1)[1].strip()
    return ""


def environment() -> dict:
    """Versions and hardware, so a number can be traced to what produced it."""
    commit, dirty = _git_state(Path(__file__).resolve().parent)
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": _package_version("torchvision"),
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "cuda_available": torch.cuda.is_available(),
        "cpu_model": cpu_model(),
        "cpu_flags": cpu_flags(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)),
        "torch_threads": torch.get_num_threads(),
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "git_commit": commit,
        "git_dirty": dirty,
        "snakemake": _snakemake_version(),
    }


def _git_state(folder: Path) -> tuple[str | None, bool | None]:
    try:
        commit = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout
    except (OSError, subprocess.SubprocessError):  # not a checkout, or no git
        return None, None
    return commit, bool(status.strip())


def _package_version(name: str) -> str | None:
    """An installed package's version without importing it (importing torchvision alone
    costs the training job about a second of start-up)."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _snakemake_version() -> str | None:
    try:
        from snakemake import __version__
    except ImportError:  # run outside Snakemake (tests, benchmarks)
        return None
    return __version__
