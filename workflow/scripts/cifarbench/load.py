"""What else used the machine while a job's clock ran: recorded beside each replicate, so that
a slow or noisy time has a cause (TorchBench checks the machine's state before it times).

On a few cores, another process that takes a core now and then stalls every one of PyTorch's
threads at each synchronization: such a run's time is the machine's, not the variant's. The
timed region is bracketed by two readings of /proc/stat (the whole machine's CPU time since
boot) and of the job's own CPU time (its threads and its DataLoader workers); what the machine
spent beyond the job's own is other processes', and steal time is what the hypervisor gave to
other guests.
"""

import os
import time
from dataclasses import dataclass

import psutil

# A run is flagged busy when other processes (and other guests, through steal) used more than
# this many cores, averaged over its timed region. Low on purpose: a job's threads wait for
# each other at every operation, so even a core taken away now and then stalls all of them;
# and an idle machine's own daemons stay far below it.
BUSY_CORES = 0.25
PROC_STAT = "/proc/stat"
# /proc/stat's cpu line counts in USER_HZ ticks: user nice system idle iowait irq softirq steal
_BUSY_FIELDS = (0, 1, 2, 5, 6)  # user, nice, system, irq, softirq (guest time is in user)
_STEAL_FIELD = 7


@dataclass(frozen=True)
class Reading:
    machine_busy_s: float | None  # every CPU's non-idle time since boot (None: no /proc/stat)
    steal_s: float | None
    own_s: float  # this process's CPU time, its threads and (live or finished) children
    wall_s: float


def read() -> Reading:
    machine = _machine_times()
    busy, steal = machine if machine else (None, None)
    return Reading(busy, steal, _own_cpu_s(), time.perf_counter())


def _machine_times() -> tuple[float, float] | None:
    try:
        with open(PROC_STAT) as stat:
            ticks = [int(field) for field in stat.readline().split()[1:]]
    except (OSError, ValueError):  # not Linux
        return None
    hz = os.sysconf("SC_CLK_TCK")
    busy = sum(ticks[i] for i in _BUSY_FIELDS if i < len(ticks))
    steal = ticks[_STEAL_FIELD] if len(ticks) > _STEAL_FIELD else 0
    return busy / hz, steal / hz


def _own_cpu_s() -> float:
    """CPU time of this process and its children: those that ended (reaped, in
    children_user/system) and those still running (DataLoader workers)."""
    process = psutil.Process()
    own = process.cpu_times()
    total = own.user + own.system + own.children_user + own.children_system
    for child in process.children(recursive=True):
        try:
            times = child.cpu_times()
        except psutil.Error:  # ended between listing and reading: counted once reaped
            continue
        total += times.user + times.system
    return total


class MachineLoad:
    """A context manager around the timed region; `record()` afterwards says what else ran."""

    def __init__(self, device=None):  # a torch.device
        self.device = device

    def __enter__(self) -> "MachineLoad":
        self.load_average = os.getloadavg()[0]  # 1 minute, at the start
        self.gpu_others = other_gpu_processes(self.device)
        self.start = read()
        return self

    def __exit__(self, *exc_info) -> None:
        self.end = read()
        after = other_gpu_processes(self.device)
        counts = [n for n in (self.gpu_others, after) if n is not None]
        self.gpu_others = max(counts) if counts else None

    def record(self) -> dict:
        wall = self.end.wall_s - self.start.wall_s
        own = self.end.own_s - self.start.own_s
        others, steal = None, None
        if self.start.machine_busy_s is not None and wall > 0:
            busy = self.end.machine_busy_s - self.start.machine_busy_s
            # Ticks are 10 ms and sampled apart from the job's own: never below 0.
            others = max(busy - own, 0.0) / wall
            steal = (self.end.steal_s - self.start.steal_s) / wall
        return {
            "load_average_start": self.load_average,
            "other_cpu_cores": others,
            "steal_cores": steal,
            "own_cpu_cores": own / wall if wall > 0 else None,
            "other_gpu_processes": self.gpu_others,
            "busy": is_busy(others, steal, self.gpu_others),
        }


def is_busy(others: float | None, steal: float | None, gpu_others: int | None) -> bool | None:
    """Whether other work shared the machine: None where nothing could be measured."""
    if others is None and gpu_others is None:
        return None
    cores = (others or 0.0) + (steal or 0.0)
    return cores > BUSY_CORES or bool(gpu_others)


def other_gpu_processes(device) -> int | None:
    """Processes other than this one computing on the job's GPU (a torch.device), from NVML;
    None off CUDA or without NVML (the nvidia-ml-py package)."""
    if device is None or device.type != "cuda":
        return None
    try:
        import pynvml
        import torch

        pynvml.nvmlInit()
        # torch's own mapping from its device index to NVML's (CUDA_VISIBLE_DEVICES aside).
        index = torch.cuda._get_nvml_device_index(device)
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        pids = {p.pid for p in pynvml.nvmlDeviceGetComputeRunningProcesses(handle)}
    except Exception:  # no NVML library or driver: unknown, never a failed run
        return None
    mine = {os.getpid(), *(child.pid for child in psutil.Process().children(recursive=True))}
    if pids & mine:
        return len(pids - mine)
    # In a container NVML gives the host's process ids: one of them is this job's.
    return max(len(pids) - 1, 0)
