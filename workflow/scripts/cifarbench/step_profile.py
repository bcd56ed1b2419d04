"""Where a training step's time goes: a variant's steps, after a warm-up, under
torch.profiler, split into waiting for data, the copy to the device, forward, backward, the
optimizer step and the rest (zero_grad, reading the loss, Python and framework overhead), with
the operators that take the most time themselves.

Each part is a `record_function` range around that part of the training loop's own step
(loop.Trainer.train_step). On a GPU each part waits for the device at its end, so its range
holds the device work it launched and the parts still add up to the step; the device time
the profiler's CUDA events give each part is recorded beside it.
"""

import contextlib
import itertools
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from functools import partial

import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, record_function

from cifarbench.errors import UserError
from cifarbench.loop import Trainer, synchronize
from cifarbench.losses import Diverged, StepLosses

PARTS = ("data_wait", "copy", "forward", "backward", "optimizer")
LABEL = "cifarbench."  # what marks the ranges this module opens, among the profiler's events
TOP_OPERATORS = 10


def _endless(batches: Iterable) -> Iterator:
    """The training batches, epoch after epoch (a new epoch forks new workers, as training's)."""
    for _ in itertools.count():
        yield from batches


@contextlib.contextmanager
def _marked(device: torch.device, part: str) -> Iterator[None]:
    with record_function(LABEL + part):
        yield
        synchronize(device)


def _steps(trainer: Trainer, batches: Iterator, count: int) -> None:
    """`count` training steps as an epoch runs them: the next batch, the step, the loss read."""
    losses = StepLosses(count, trainer.device, trainer.settings.deferred_loss, epoch=1)
    for step in range(count):
        with trainer.part("step"):
            with trainer.part("data_wait"):
                images, labels = next(batches)
            losses.add(step, trainer.train_step(images, labels))
    losses.mean(0, count)  # deferred losses are read (and checked) at the end, as an epoch's


def profile_steps(
    trainer: Trainer, warmup_steps: int, steps: int
) -> tuple[float, torch.profiler.profile]:
    """The mean wall-clock time of `steps` profiled steps, and the profiler that saw them."""
    batches = _endless(trainer.batches)
    trainer.model.train()
    activities = [ProfilerActivity.CPU]
    if trainer.device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    trainer.part = partial(_marked, trainer.device)
    try:
        _steps(trainer, batches, warmup_steps)
        with torch.profiler.profile(activities=activities) as profiler:
            start = time.perf_counter()
            _steps(trainer, batches, steps)
            synchronize(trainer.device)
            step_s = (time.perf_counter() - start) / steps
    except Diverged as error:
        raise UserError(f"the loss became NaN/inf while profiling ({error})") from error
    return step_s, profiler


def split_step(profiler: torch.profiler.profile, step_s: float, steps: int) -> dict:
    """The mean step, measured and as its parts; the rest is the step's range outside them."""
    host, device = defaultdict(float), defaultdict(float)
    for event in profiler.events():
        if event.name.startswith(LABEL) and event.device_type == DeviceType.CPU:
            name = event.name.removeprefix(LABEL)
            host[name] += event.cpu_time_total / 1e6 / steps
            device[name] += event.device_time_total / 1e6 / steps
    parts = {part: {"s": host[part], "device_s": device[part]} for part in PARTS}
    rest = host["step"] - sum(host[part] for part in PARTS)
    parts["rest"] = {"s": rest, "device_s": device["step"] - sum(device[p] for p in PARTS)}
    return {"step_s": step_s, "profiled_step_s": host["step"], "parts": parts}


def top_operators(profiler: torch.profiler.profile, steps: int, on_device: bool) -> list[dict]:
    """The operators with the most time of their own per step (device time on a GPU)."""
    averages = [a for a in profiler.key_averages() if not a.key.startswith(LABEL)]
    own = "self_device_time_total" if on_device else "self_cpu_time_total"
    averages.sort(key=lambda a: getattr(a, own), reverse=True)
    return [
        {
            "name": a.key,
            "self_s": getattr(a, own) / 1e6 / steps,
            "calls_per_step": a.count / steps,
        }
        for a in averages[:TOP_OPERATORS]
    ]


def profile_trainer(trainer: Trainer, warmup_steps: int, steps: int) -> dict:
    """The profile of a built Trainer: its mean step split into parts, and the top operators."""
    step_s, profiler = profile_steps(trainer, warmup_steps, steps)
    on_device = trainer.device.type == "cuda"
    return {
        **split_step(profiler, step_s, steps),
        "top_operators": top_operators(profiler, steps, on_device),
    }
