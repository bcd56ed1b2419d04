"""Train one variant: resolve its device, train each replicate, evaluate, summarize."""

import contextlib
import ctypes
import logging
import math
import os
import statistics
import time
from dataclasses import asdict, dataclass

import torch
from torch import nn

from cifarbench import measure
from cifarbench.archive import Cifar
from cifarbench.config import settings_hash
from cifarbench.data import TensorBatches, dataloader_batches, flip_and_translate, normalize
from cifarbench.errors import UserError
from cifarbench.handwritten import HandwrittenNet
from cifarbench.models import make_net
from cifarbench.progress import Progress

log = logging.getLogger("cifarbench.train")

SCHEMA_VERSION = 1
AUTOCAST_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


class Diverged(Exception):
    """The loss became NaN or infinite at (epoch, batch), both counted from 1."""

    def __init__(self, epoch: int, batch: int):
        super().__init__(f"loss is not finite at epoch {epoch}, batch {batch}")
        self.epoch, self.batch = epoch, batch


@dataclass
class EpochLog:
    epoch: int
    loss: float  # mean training loss over the epoch's batches
    time_s: float
    data_wait_s: float  # time spent waiting for the next batch
    compute_s: float
    images: int


def resolve_device(requested: str, gpu_fallback: str) -> tuple[torch.device | None, str | None]:
    """The device a variant runs on and why it differs from the request (None: skip it)."""
    if requested == "cpu" or torch.cuda.is_available():
        return torch.device(requested), None
    missing = "CUDA is not available on this machine"
    if gpu_fallback == "cpu":
        return torch.device("cpu"), f"{missing}; ran on the CPU (gpu_fallback: cpu)"
    if gpu_fallback == "skip":
        return None, f"{missing}; skipped (gpu_fallback: skip)"
    raise UserError(f"{missing} and gpu_fallback is 'error': this variant needs device: cuda")


def lr_factor(step: int, total_steps: int, schedule: str, warmup: float) -> float:
    """Multiplier of the peak learning rate at `step`: constant, or linear up then down to 0."""
    if schedule == "constant":
        return 1.0
    warmup_steps = max(1, round(warmup * total_steps))
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))


def make_optimizer(model: nn.Module, s: dict) -> torch.optim.Optimizer:
    # fused: one kernel for all parameters instead of a few per parameter (CPU and CUDA).
    if s["optimizer"] == "adam":
        return torch.optim.Adam(
            model.parameters(), lr=s["lr"], weight_decay=s["weight_decay"], fused=True
        )
    return torch.optim.SGD(
        model.parameters(),
        lr=s["lr"],
        momentum=s["momentum"],
        nesterov=s["nesterov"],
        weight_decay=s["weight_decay"],
        fused=True,
    )


def make_batches(data: Cifar, s: dict, device: torch.device, generator: torch.Generator):
    if s["loader"] == "tensor":
        return TensorBatches(
            data.train_images, data.train_labels, s["batch_size"], device, generator
        )
    return dataloader_batches(
        data.train_images, data.train_labels, s["batch_size"], s["workers"], device, generator
    )


@torch.no_grad()
def evaluate(model: nn.Module, images, labels, device: torch.device, s: dict) -> float:
    """Accuracy in percent over every test image, normalized in batches of 1000."""
    if len(labels) == 0:
        raise UserError("the test set is empty: accuracy would be meaningless")
    model.eval()
    images, labels = torch.from_numpy(images), torch.from_numpy(labels)
    correct = 0
    for batch_images, batch_labels in zip(images.split(1000), labels.split(1000), strict=True):
        batch_images = _to_device(normalize(batch_images), device, s)
        with _autocast(device, s):
            predicted = model(batch_images).argmax(1)
        correct += (predicted.cpu() == batch_labels).sum().item()
    return 100.0 * correct / len(labels)


def _to_device(images: torch.Tensor, device: torch.device, s: dict) -> torch.Tensor:
    images = images.to(device, non_blocking=True)
    if s["channels_last"]:
        images = images.contiguous(memory_format=torch.channels_last)
    return images


def _autocast(device: torch.device, s: dict):
    dtype = AUTOCAST_DTYPES.get(s["precision"])
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Trainer:
    """Everything one replicate's training loop needs, built once from the settings."""

    def __init__(self, data: Cifar, s: dict, device: torch.device, seed: int):
        torch.manual_seed(seed)
        # Input shapes are fixed, so let cuDNN pick its fastest kernels once per shape.
        torch.backends.cudnn.benchmark = device.type == "cuda"
        self.s, self.device = s, device
        model = make_net(s["model"], s["batch_norm"]).to(device)
        if s["channels_last"]:
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        self.step_model = torch.compile(model) if s["compile"] else model
        self.handwritten = HandwrittenNet(model) if s["backward"] == "handwritten" else None
        self.batches = make_batches(data, s, device, torch.Generator().manual_seed(seed))
        self.optimizer = make_optimizer(model, s)
        total_steps = s["epochs"] * len(self.batches)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer,
            lambda step: lr_factor(step, total_steps, s["schedule"], s["warmup"]),
        )
        self.scaler = torch.amp.GradScaler(device.type, enabled=s["precision"] == "fp16")
        self.criterion = nn.CrossEntropyLoss(label_smoothing=s["label_smoothing"])
        self.first_batch_s = None  # seconds from the job's start to the first batch in hand

    def train_step(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        images = _to_device(images, self.device, self.s)
        labels = labels.to(self.device, non_blocking=True)
        if self.s["augment"]:
            images = flip_and_translate(images)
        if self.handwritten is not None:
            loss = self.handwritten.loss_and_gradients(images, labels)
        else:
            with _autocast(self.device, self.s):
                loss = self.criterion(self.step_model(images), labels)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return loss.detach()

    def train_epoch(self, epoch: int, progress: Progress) -> EpochLog:
        """One pass over the training set. Losses stay on the device (no sync per step) and
        are checked for NaN/inf at each log point and at the end of the epoch."""
        self.model.train()
        n_batches, log_every = len(self.batches), self.s["log_every"]
        losses = torch.zeros(n_batches, device=self.device)
        data_wait, images_seen, checked = 0.0, 0, 0
        start = waiting = time.perf_counter()
        for step, (images, labels) in enumerate(self.batches):
            data_wait += time.perf_counter() - waiting
            if self.first_batch_s is None:
                self.first_batch_s = measure.process_age_s()
            losses[step] = self.train_step(images, labels)
            images_seen += len(labels)
            if (step + 1) % log_every == 0:
                mean_loss = _checked_mean(losses, checked, step + 1, epoch)
                log.info(
                    "[%d, %5d] loss: %.3f  memory: %.2f MB",
                    epoch,
                    step + 1,
                    mean_loss,
                    measure.rss_mb(),
                )
                checked = step + 1
            progress.update(epoch, step + 1, n_batches, losses[step])
            waiting = time.perf_counter()
        _checked_mean(losses, checked, n_batches, epoch)
        _synchronize(self.device)
        elapsed = time.perf_counter() - start
        return EpochLog(
            epoch, losses.mean().item(), elapsed, data_wait, elapsed - data_wait, images_seen
        )


def _checked_mean(losses: torch.Tensor, begin: int, end: int, epoch: int) -> float:
    """Mean of losses[begin:end]; raise Diverged at the first non-finite one."""
    window = losses[begin:end]
    finite = torch.isfinite(window)
    if not bool(finite.all()):
        raise Diverged(epoch, begin + int((~finite).nonzero()[0]) + 1)
    return window.mean().item() if end > begin else math.nan


def train_replicate(data: Cifar, s: dict, device: torch.device, seed: int) -> dict:
    """Train and evaluate one seed; the training time spans the epoch loop, as in the study."""
    trainer = Trainer(data, s, device, seed)
    epochs: list[EpochLog] = []
    diverged = None
    started = measure.now_iso()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with measure.MemorySampler() as memory, Progress(s["epochs"]) as progress:
        start = time.perf_counter()
        try:
            for epoch in range(1, s["epochs"] + 1):
                epochs.append(trainer.train_epoch(epoch, progress))
                log.info(
                    "epoch %d: loss %.4f, %.2f s (%.2f s waiting for data)",
                    epoch,
                    epochs[-1].loss,
                    epochs[-1].time_s,
                    epochs[-1].data_wait_s,
                )
        except Diverged as error:
            log.warning("diverged: %s", error)
            diverged = {"epoch": error.epoch, "batch": error.batch}
        _synchronize(device)
        training_time = time.perf_counter() - start
    accuracy = (
        None if diverged else evaluate(trainer.model, data.test_images, data.test_labels, device, s)
    )
    images = sum(e.images for e in epochs)
    return {
        "seed": seed,
        "status": "diverged" if diverged else "ok",
        "diverged_at": diverged,
        "training_time_s": training_time,
        "accuracy_pct": accuracy,
        "throughput_img_s": images / training_time if training_time > 0 else None,
        "memory": {**memory.summary(), **measure.cuda_memory(device)},
        "epochs": [asdict(e) for e in epochs],
        "first_batch_after_job_start_s": trainer.first_batch_s,
        "start": started,
        "end": measure.now_iso(),
    }


# Below this many images per step on the CPU, oneDNN's per-call setup costs more than
# PyTorch's own convolution.
SMALL_CPU_BATCH = 16


def keep_freed_memory() -> None:
    """Have glibc keep freed memory for reuse instead of returning it to the system.

    By default every block over 128 KiB is a fresh mapping, unmapped when freed: a CPU training
    step allocates tens of MB of activations, and faulting those pages back in costs more than
    the arithmetic on them. No-op where the C library is not glibc.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    libc.mallopt(-1, 1 << 30)  # M_TRIM_THRESHOLD: keep up to 1 GiB of free heap
    libc.mallopt(-4, 0)  # M_MMAP_MAX: serve large blocks from the heap too


def cpu_settings(s: dict, device: torch.device, threads: int) -> tuple[int, bool]:
    """(intra-op threads, oneDNN on) for training on `device` with `threads` cores.

    Never more threads than CPUs this process may run on (`--cores 4` on a 2-core machine):
    every operation would wait for a thread that is not running.
    """
    threads = min(threads, len(os.sched_getaffinity(0)))
    small_cpu_batch = device.type == "cpu" and s["batch_size"] < SMALL_CPU_BATCH
    return threads, torch.backends.mkldnn.enabled and not small_cpu_batch


@contextlib.contextmanager
def _onednn(enabled: bool):
    before = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = enabled
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = before


def run_variant(variant: str, data: Cifar, s: dict, gpu_fallback: str, threads: int) -> dict:
    """Train every replicate of a variant and return its metrics document (see the schema)."""
    started, wall_start = measure.now_iso(), time.perf_counter()
    keep_freed_memory()
    device, reason = resolve_device(s["device"], gpu_fallback)
    replicates = []
    if device is not None:
        train_threads, onednn = cpu_settings(s, device, threads)
        torch.set_num_threads(train_threads)
        for seed in range(s["seed"], s["seed"] + s["replicates"]):
            log.info("variant %s: seed %d on %s", variant, seed, device)
            try:
                with _onednn(onednn):
                    replicates.append(train_replicate(data, s, device, seed))
            except torch.cuda.OutOfMemoryError as error:
                raise UserError(_out_of_memory(variant, s, device)) from error
    status, reason = _variant_status(replicates, reason)
    return {
        "schema_version": SCHEMA_VERSION,
        "variant": variant,
        "status": status,
        "reason": reason,
        "settings": s,
        "settings_hash": settings_hash(s),
        "device": {
            "requested": s["device"],
            "used": device.type if device else None,
            "name": measure.device_name(device) if device else None,
            "fallback": device is not None and device.type != s["device"],
        },
        "epochs": s["epochs"],
        "summary": summarize(replicates),
        "replicates": replicates,
        "environment": {**measure.environment(), "threads_requested": threads},
        "job": {
            "start": started,
            "end": measure.now_iso(),
            "wall_time_s": time.perf_counter() - wall_start,
        },
    }


def _out_of_memory(variant: str, s: dict, device: torch.device) -> str:
    """Name what ran out and what there was, so the user knows which knob to turn."""
    free, total = torch.cuda.mem_get_info(device)
    peak = torch.cuda.max_memory_allocated(device)
    return (
        f"variant {variant}: out of GPU memory at batch_size {s['batch_size']} "
        f"({s['model']}, {s['precision']}) on {torch.cuda.get_device_name(device)}: "
        f"{total / measure.MB:.0f} MB total, {free / measure.MB:.0f} MB free, "
        f"{peak / measure.MB:.0f} MB allocated at peak; lower batch_size"
    )


def _variant_status(replicates: list[dict], reason: str | None) -> tuple[str, str | None]:
    if not replicates:
        return "skipped", reason
    diverged = [r for r in replicates if r["status"] == "diverged"]
    if diverged:
        where = diverged[0]["diverged_at"]
        return "diverged", (
            f"seed {diverged[0]['seed']}: loss became NaN/inf at epoch "
            f"{where['epoch']}, batch {where['batch']}"
        )
    return "ok", reason


SUMMARIZED = {
    "training_time_s": lambda r: r["training_time_s"],
    "accuracy_pct": lambda r: r["accuracy_pct"],
    "memory_mb": lambda r: r["memory"]["rss_mean_mb"],
    "peak_rss_with_workers_mb": lambda r: r["memory"]["rss_peak_with_workers_mb"],
    "cuda_peak_allocated_mb": lambda r: r["memory"]["cuda_peak_allocated_mb"],
    "cuda_peak_reserved_mb": lambda r: r["memory"]["cuda_peak_reserved_mb"],
    "throughput_img_s": lambda r: r["throughput_img_s"],
    "data_wait_s": lambda r: sum(epoch["data_wait_s"] for epoch in r["epochs"]),
}


def summarize(replicates: list[dict]) -> dict:
    """Mean and sample standard deviation of each metric over the replicates that finished."""
    finished = [r for r in replicates if r["status"] == "ok"]
    summary = {"n": len(finished)}
    for name, pick in SUMMARIZED.items():
        values = [pick(r) for r in finished if pick(r) is not None]
        summary[name] = {
            "mean": statistics.fmean(values) if values else None,
            "std": statistics.stdev(values) if len(values) > 1 else (0.0 if values else None),
        }
    return summary
