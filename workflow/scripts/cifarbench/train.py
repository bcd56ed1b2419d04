"""Train one variant: set up the process as its settings ask, train each replicate, and
return its metrics document."""

import logging
import time

import torch

from cifarbench import measure, runtime
from cifarbench.archive import Cifar
from cifarbench.document import combine
from cifarbench.errors import UserError
from cifarbench.loop import train_replicate
from cifarbench.runtime import resolve_device
from cifarbench.settings import Settings
from cifarbench.units import MB

log = logging.getLogger("cifarbench.train")


def run_seed(
    variant: str,
    data: Cifar,
    values: dict,
    gpu_fallback: str,
    threads: int,
    seed: int,
    data_md5: str | None = None,
) -> dict:
    """Train one seed of a variant (one training job) and return its record, which
    `document.combine` joins with the other seeds' into the variant's metrics document.
    `data_md5`: the md5 of the archive `data` came from (None: not from an archive)."""
    started, wall_start = measure.now_iso(), time.perf_counter()
    settings = Settings.from_dict(values)
    if settings.allocator == "keep":
        runtime.keep_freed_memory()
    device, reason = resolve_device(settings.device, gpu_fallback)
    replicate = None
    if device is not None:
        torch.set_num_threads(runtime.usable_threads(threads))
        with runtime.backends(settings, device):
            replicate = _replicate(variant, data, settings, device, seed)
    return {
        "variant": variant,
        "seed": seed,
        "settings": settings.to_dict(),
        "data": {"md5": data_md5},
        "device": _device_record(settings.device, device),
        "reason": reason,
        "replicate": replicate,  # None: skipped
        "environment": {**measure.environment(), "threads_requested": threads},
        "job": {
            "start": started,
            "end": measure.now_iso(),
            "wall_time_s": time.perf_counter() - wall_start,
        },
    }


def run_variant(variant: str, data: Cifar, values: dict, gpu_fallback: str, threads: int) -> dict:
    """Every seed of a variant in this process, then its metrics document (see the schema)."""
    seeds = Settings.from_dict(values).seeds
    return combine([run_seed(variant, data, values, gpu_fallback, threads, s) for s in seeds])


def _replicate(variant: str, data: Cifar, settings: Settings, device: torch.device, seed: int):
    log.info("variant %s: seed %d on %s", variant, seed, device)
    try:
        return train_replicate(data, settings, device, seed, label=f"{variant} seed {seed}: ")
    except torch.cuda.OutOfMemoryError as error:
        raise UserError(_out_of_memory(variant, settings, device)) from error


def _device_record(requested: str, device: torch.device | None) -> dict:
    return {
        "requested": requested,
        "used": device.type if device else None,
        "name": measure.device_name(device) if device else None,
        "fallback": device is not None and device.type != requested,
    }


def _out_of_memory(variant: str, settings: Settings, device: torch.device) -> str:
    """Name what ran out and what there was, so the user knows which knob to turn."""
    free, total = torch.cuda.mem_get_info(device)
    peak = torch.cuda.max_memory_allocated(device)
    return (
        f"variant {variant}: out of GPU memory at batch_size {settings.batch_size} "
        f"({settings.model}, {settings.precision}) on {torch.cuda.get_device_name(device)}: "
        f"{total / MB:.0f} MB total, {free / MB:.0f} MB free, "
        f"{peak / MB:.0f} MB allocated at peak; lower batch_size"
    )
