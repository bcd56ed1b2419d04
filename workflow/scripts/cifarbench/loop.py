"""One replicate: the study's training loop (zero_grad, forward, loss, backward, step), timed
around the epochs as the study timed it, and accuracy on the test set after every epoch (or
only the last), off the clock."""

import contextlib
import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from cifarbench import measure
from cifarbench.cache import Cifar
from cifarbench.clock import TrainingClock, warmup
from cifarbench.data import flip_and_translate, make_batches, normalize
from cifarbench.energy import EnergyMeter
from cifarbench.errors import UserError
from cifarbench.handwritten import HandwrittenNet
from cifarbench.load import MachineLoad
from cifarbench.losses import Diverged, StepLosses
from cifarbench.models import WHITEN_IMAGES, make_net, whiten_stem
from cifarbench.optimizers import OPTIMIZERS, lr_factor
from cifarbench.progress import Progress
from cifarbench.settings import Settings

log = logging.getLogger("cifarbench.train")

AUTOCAST_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass
class EpochLog:
    epoch: int
    loss: float  # mean training loss over the epoch's batches
    time_s: float
    data_wait_s: float  # time spent waiting for the next batch
    compute_s: float
    images: int
    steps: int
    clock_s: float = 0.0  # training time at the epoch's end: the epochs so far, no evaluation
    accuracy_pct: float | None = None  # test accuracy after this epoch; None: not evaluated
    eval_s: float | None = None  # that evaluation's time, off the clock


def _autocast(device: torch.device, precision: str):
    dtype = AUTOCAST_DTYPES.get(precision)
    return torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext()


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def unmarked(_part: str) -> AbstractContextManager:
    """A step's parts go unmarked in training; the step profile marks them (step_profile.py)."""
    return contextlib.nullcontext()


class Trainer:
    """Everything one replicate's training loop needs, built once from the settings."""

    def __init__(self, data: Cifar, settings: Settings, device: torch.device, seed: int):
        torch.manual_seed(seed)  # as the study's script: the model's weights, then its batches
        self.settings, self.device, self.seed = settings, device, seed
        model = make_net(settings.model, settings.batch_norm, settings.width).to(device)
        if settings.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        self.average = _moving_average(model, settings.ema)
        self.step_model = torch.compile(model) if settings.compile else model
        self.handwritten = HandwrittenNet(model) if settings.backward == "handwritten" else None
        self.batches = make_batches(data, settings, device)
        self.optimizer = OPTIMIZERS[settings.optimizer](model.parameters(), settings)
        self.scheduler = self._scheduler()
        fp16 = settings.precision == "fp16"
        self.scaler = torch.amp.GradScaler(device.type) if fp16 else None
        self.criterion = nn.CrossEntropyLoss(label_smoothing=settings.label_smoothing)
        self.first_batch_s = None  # seconds from the job's start to the first batch in hand
        self.first_step_s = None  # the first step's time: its one-off costs included
        self.part: Callable[[str], AbstractContextManager] = unmarked

    def prepare(self, data: Cifar) -> None:
        """What a recipe computes from the data before its first step, on the training clock
        (airbench times its whitening too): the stem's whitening filters."""
        if self.settings.whiten:
            images = normalize(torch.from_numpy(data.train_images[:WHITEN_IMAGES]))
            whiten_stem(self.model, images.to(self.device))

    @property
    def scored_model(self) -> nn.Module:
        """The weights the test set scores: the moving average where `ema` keeps one."""
        return self.average.module if self.average is not None else self.model

    def _scheduler(self) -> torch.optim.lr_scheduler.LRScheduler | None:
        s = self.settings
        if s.schedule == "constant":
            return None
        total_steps = s.epochs * len(self.batches)
        return torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: lr_factor(step, total_steps, s.schedule, s.warmup)
        )

    def to_device(self, images: torch.Tensor) -> torch.Tensor:
        images = images.to(self.device, non_blocking=self.settings.pin_memory)
        if self.settings.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return images

    def train_step(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """One step, its parts named for the step profile (`self.part`)."""
        with self.part("copy"):
            images = self.to_device(images)
            labels = labels.to(self.device, non_blocking=self.settings.pin_memory)
            if self.settings.augment:
                images = flip_and_translate(images)
        self.optimizer.zero_grad()
        if self.handwritten is not None:
            with self.part("backward"):  # its forward and backward are one call
                loss = self.handwritten.loss_and_gradients(images, labels)
        else:
            with self.part("forward"), _autocast(self.device, self.settings.precision):
                loss = self.criterion(self.step_model(images), labels)
            with self.part("backward"):
                (self.scaler.scale(loss) if self.scaler else loss).backward()
        with self.part("optimizer"):
            self._optimizer_step()
        return loss.detach()

    def _optimizer_step(self) -> None:
        if self.scaler:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        if self.scheduler:
            self.scheduler.step()
        if self.average is not None:
            self.average.update_parameters(self.model)

    def first_step(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The first step, timed on its own: the one-off costs (compilation, autotuning, lazy
        initialization) land in it."""
        synchronize(self.device)
        start = time.perf_counter()
        loss = self.train_step(images, labels)
        synchronize(self.device)
        self.first_step_s = time.perf_counter() - start
        return loss

    def train_epoch(self, epoch: int, progress: Progress) -> EpochLog:
        """One pass over the training set, with the study's loss/memory line every
        `log_every` batches."""
        self.model.train()
        n_batches, log_every = len(self.batches), self.settings.log_every
        losses = StepLosses(n_batches, self.device, self.settings.deferred_loss, epoch)
        data_wait, images_seen = 0.0, 0
        start = waiting = time.perf_counter()
        for step, (images, labels) in enumerate(self.batches):
            data_wait += time.perf_counter() - waiting
            if self.first_batch_s is None:
                self.first_batch_s = measure.process_age_s()
                loss = self.first_step(images, labels)
            else:
                loss = self.train_step(images, labels)
            losses.add(step, loss)
            images_seen += len(labels)
            if (step + 1) % log_every == 0:
                window = losses.mean(step + 1 - log_every, step + 1)
                log.info(
                    "[%d, %5d] loss: %.3f  memory: %.2f MB",
                    epoch,
                    step + 1,
                    window,
                    measure.rss_mb(),
                )
            progress.update(epoch, step + 1, n_batches, loss)
            waiting = time.perf_counter()
        epoch_loss = losses.mean(0, n_batches)
        synchronize(self.device)
        elapsed = time.perf_counter() - start
        compute = elapsed - data_wait
        return EpochLog(epoch, epoch_loss, elapsed, data_wait, compute, images_seen, n_batches)


@torch.no_grad()
def evaluate(trainer: Trainer, images, labels) -> float:
    """Accuracy in percent over every test image, normalized in batches of 1000."""
    if len(labels) == 0:
        raise UserError("the test set is empty: accuracy would be meaningless")
    model, device = trainer.scored_model, trainer.device
    model.eval()
    images, labels = torch.from_numpy(images), torch.from_numpy(labels)
    correct = 0
    for batch_images, batch_labels in zip(images.split(1000), labels.split(1000), strict=True):
        batch_images = trainer.to_device(normalize(batch_images))
        with _autocast(device, trainer.settings.precision):
            predicted = predict(model, batch_images, trainer.settings.tta).argmax(1)
        correct += (predicted.cpu() == batch_labels).sum().item()
    return 100.0 * correct / len(labels)


def predict(model: nn.Module, images: torch.Tensor, tta: bool) -> torch.Tensor:
    """The model's logits; with `tta`, the mean of the logits of each image and its mirror
    image (airbench's test-time flip averaging)."""
    logits = model(images)
    if tta:
        logits = (logits + model(images.flip(3))) / 2
    return logits


def _moving_average(model: nn.Module, decay: float | None) -> AveragedModel | None:
    """A copy of the model whose weights (BatchNorm's statistics included) follow the trained
    ones as an exponential moving average, updated after every step (torch.optim.swa_utils)."""
    if decay is None:
        return None
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def _train_epochs(
    trainer: Trainer, data: Cifar, progress: Progress, clock: TrainingClock, epochs: list[EpochLog]
) -> int | None:
    """Every epoch, each appended to `epochs` as it ends (those before a divergence stay),
    scored on the test set off the clock when `evaluate: every_epoch`. Returns the epoch at
    which `stop_at` stopped training, or None when it trained every epoch."""
    settings = trainer.settings
    for epoch in range(1, settings.epochs + 1):
        done = trainer.train_epoch(epoch, progress)
        done.clock_s = clock.read()
        if settings.evaluate == "every_epoch":
            with clock.off():
                _score(trainer, data, done)
        epochs.append(done)
        progress.epoch_done(epoch, done.loss, done.time_s, done.images)
        log.info("epoch %d: %.2f s waiting for data", epoch, done.data_wait_s)
        if _reached(done.accuracy_pct, settings.stop_at):
            log.info("epoch %d reached stop_at %g%%: training stops", epoch, settings.stop_at)
            return epoch
    return None


def _reached(accuracy: float | None, stop_at: float | None) -> bool:
    return stop_at is not None and accuracy is not None and accuracy >= stop_at


def _score(trainer: Trainer, data: Cifar, epoch: EpochLog) -> None:
    """The epoch's test accuracy and how long scoring it took."""
    start = time.perf_counter()
    epoch.accuracy_pct = evaluate(trainer, data.test_images, data.test_labels)
    epoch.eval_s = time.perf_counter() - start
    log.info("epoch %d: test accuracy %.2f%%", epoch.epoch, epoch.accuracy_pct)


def train_replicate(
    data: Cifar, settings: Settings, device: torch.device, seed: int, label: str = ""
) -> dict:
    """Train and evaluate one seed. The training time spans the epoch loop, as in the study,
    less the evaluations after each epoch, and a recipe's preparation before it (`whiten`).
    `label` starts each epoch's console line."""
    trainer = Trainer(data, settings, device, seed)
    return run_training(trainer, data, label)


def run_training(trainer: Trainer, data: Cifar, label: str = "") -> dict:
    """Train a built Trainer for its epochs and return the replicate's record."""
    settings, device = trainer.settings, trainer.device
    epochs: list[EpochLog] = []
    diverged = stopped = None
    started = measure.now_iso()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    progress = Progress(settings.epochs, label=label)
    with (
        measure.MemorySampler() as memory,
        progress,
        EnergyMeter(device) as energy,
        MachineLoad(device) as machine,
    ):
        # Evaluation after an epoch is off both: the clock's time and the meter's energy.
        clock = TrainingClock(paused_with=[energy])
        trainer.prepare(data)
        try:
            stopped = _train_epochs(trainer, data, progress, clock, epochs)
        except Diverged as error:
            log.warning("diverged: %s", error)
            diverged = {"epoch": error.epoch, "batch": error.batch}
        synchronize(device)
        training_time = clock.read()
    if not diverged and settings.evaluate == "end":
        _score(trainer, data, epochs[-1])
    images = sum(e.images for e in epochs)
    epoch_records = [asdict(e) for e in epochs]
    return {
        "seed": trainer.seed,
        "status": "diverged" if diverged else "ok",
        "diverged_at": diverged,
        "training_time_s": training_time,
        "accuracy_pct": None if diverged else epochs[-1].accuracy_pct,
        "stopped_at_epoch": stopped,
        "throughput_img_s": images / training_time if training_time > 0 else None,
        "train_images": len(data.train_labels),
        "test_images": len(data.test_labels),
        "memory": {**memory.summary(), **measure.cuda_memory(device)},
        "energy": energy.reading(images),
        "epochs": epoch_records,
        **warmup(epoch_records, trainer.first_step_s, settings.compile),
        "first_batch_after_job_start_s": trainer.first_batch_s,
        "machine_load": machine.record(),
        "start": started,
        "end": measure.now_iso(),
    }
