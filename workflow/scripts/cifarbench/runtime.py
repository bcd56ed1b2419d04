"""Where and how a variant's process trains: its device, threads, oneDNN and allocator.

Each is PyTorch's own behaviour unless a setting asks for an optimization.
"""

import contextlib
import ctypes
import os
from collections.abc import Iterator

import torch

from cifarbench import cuda_causes
from cifarbench.errors import UserError
from cifarbench.settings import Settings

# Below this many images per step on the CPU, oneDNN's per-call setup costs more than
# PyTorch's own convolution (`onednn: auto`).
SMALL_CPU_BATCH = 16


def resolve_device(requested: str, gpu_fallback: str) -> tuple[torch.device | None, str | None]:
    """The device a variant runs on and why it differs from the request (None: skip it)."""
    if requested == "cpu" or torch.cuda.is_available():
        return torch.device(requested), None
    missing = cuda_causes.why_no_cuda()  # the cause, as `cifarbench doctor` names it
    if gpu_fallback == "cpu":
        return torch.device("cpu"), f"{missing}; ran on the CPU (gpu_fallback: cpu)"
    if gpu_fallback == "skip":
        return None, f"{missing}; skipped (gpu_fallback: skip)"
    raise UserError(
        f"{missing}, and gpu_fallback is 'error': this variant needs device: cuda "
        "(`cifarbench doctor` says what to do)"
    )


def usable_threads(threads: int) -> int:
    """PyTorch's default for the cores the job holds: one thread a core, never more threads
    than CPUs this process may run on (`--cores 4` on a 2-core machine would make every
    operation wait for a thread that is not running)."""
    return min(threads, len(os.sched_getaffinity(0)))


def onednn_enabled(settings: Settings, device: torch.device) -> bool:
    """oneDNN for CPU convolutions: as PyTorch ships it (`on`), `off`, or off for small CPU
    batches (`auto`)."""
    if settings.onednn == "auto":
        return not (device.type == "cpu" and settings.batch_size < SMALL_CPU_BATCH)
    return settings.onednn == "on"


@contextlib.contextmanager
def backends(settings: Settings, device: torch.device) -> Iterator[None]:
    """oneDNN and cuDNN autotuning as the settings ask, restored afterwards."""
    before = torch.backends.mkldnn.enabled, torch.backends.cudnn.benchmark
    torch.backends.mkldnn.enabled = onednn_enabled(settings, device)
    torch.backends.cudnn.benchmark = settings.cudnn_benchmark and device.type == "cuda"
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled, torch.backends.cudnn.benchmark = before


def keep_freed_memory() -> None:
    """`allocator: keep`: have glibc keep freed memory for reuse instead of returning it.

    By default every block over 128 KiB is a fresh mapping, unmapped when freed: a CPU training
    step allocates tens of MB of activations, and faulting those pages back in costs more than
    the arithmetic on them. It lasts for the process. No-op where the C library is not glibc.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    libc.mallopt(-1, 1 << 30)  # M_TRIM_THRESHOLD: keep up to 1 GiB of free heap
    libc.mallopt(-4, 0)  # M_MMAP_MAX: serve large blocks from the heap too
