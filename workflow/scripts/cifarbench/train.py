"""Train one seed of a variant (a training job): set up the process as its settings ask, train
the replicate, and return its record."""

import logging
import time

import torch

from cifarbench import fingerprint, measure, runtime
from cifarbench.cache import Cifar
from cifarbench.errors import UserError
from cifarbench.loop import Trainer, train_replicate
from cifarbench.runtime import resolve_device
from cifarbench.settings import Settings, settings_hash
from cifarbench.step_profile import profile_trainer
from cifarbench.units import MB

log = logging.getLogger("cifarbench.train")


def run_seed(
    variant: str,
    data: Cifar,
    settings: Settings,
    *,
    gpu_fallback: str,
    threads: int,
    seed: int,
    data_md5: str | None = None,
) -> dict:
    """Train one seed of a variant (one training job) and return its record, which
    `document.combine` joins with the other seeds' into the variant's metrics document.
    `data_md5`: the md5 of the archive `data` came from (None: not from an archive)."""
    started, wall_start = measure.now_iso(), time.perf_counter()
    device, reason = _set_up(settings, gpu_fallback, threads)
    replicate = None
    if device is not None:
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
        "environment": {
            **measure.environment(),
            "threads_requested": threads,
            # named after the host here; `summarize` names it as the config's `machine:` says
            "machine": fingerprint.machine(),
        },
        "job": {
            "start": started,
            "end": measure.now_iso(),
            "wall_time_s": time.perf_counter() - wall_start,
        },
    }


def run_profile(
    variant: str,
    data: Cifar,
    settings: Settings,
    *,
    gpu_fallback: str,
    threads: int,
    warmup_steps: int,
    steps: int,
) -> dict:
    """Profile `steps` training steps of a variant (its first seed) after `warmup_steps`
    untimed ones, set up as its training job is (results/profiles/{variant}.json)."""
    device, reason = _set_up(settings, gpu_fallback, threads)
    profile = None
    if device is not None:
        log.info("variant %s: profiling %d steps on %s", variant, steps, device)
        with runtime.backends(settings, device):
            trainer = Trainer(data, settings, device, settings.seed)
            trainer.prepare(data)  # the steps as training takes them (whitened filters)
            profile = profile_trainer(trainer, warmup_steps, steps)
    return {
        "variant": variant,
        "settings": settings.to_dict(),
        "settings_hash": settings_hash(settings.to_dict()),
        "device": _device_record(settings.device, device),
        "reason": reason,
        "warmup_steps": warmup_steps,
        "steps": steps,
        "profile": profile,  # None: skipped
        "environment": {**measure.environment(), "threads_requested": threads},
    }


def _set_up(settings: Settings, gpu_fallback: str, threads: int):
    """The process as a variant's settings ask: its allocator, device and threads. Returns
    the device (None: skip the variant) and why it differs from the request."""
    if settings.allocator == "keep":
        runtime.keep_freed_memory()
    device, reason = resolve_device(settings.device, gpu_fallback)
    if device is not None:
        torch.set_num_threads(runtime.usable_threads(threads))
    return device, reason


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
