"""Per-step training losses, read as the study read them, and the stop on NaN/inf."""

import functools
import math
import operator

import torch


class Diverged(Exception):
    """The loss became NaN or infinite at (epoch, batch), both counted from 1."""

    def __init__(self, epoch: int, batch: int):
        super().__init__(f"loss is not finite at epoch {epoch}, batch {batch}")
        self.epoch, self.batch = epoch, batch


def _sequential_sum(values: list[float]) -> float:
    """Left to right in double precision, as the study's `running_loss += loss.item()`."""
    return functools.reduce(operator.add, values, 0.0)


class StepLosses:
    """One epoch's per-step losses on the host, checked for NaN/inf as they are read.

    As the study did, each step's loss is read with `loss.item()`, so the host waits for the
    device every step. With `deferred_loss` they stay on the device and are read in bulk at
    log points and at the end of the epoch: the same numbers, fewer synchronizations.
    """

    def __init__(self, steps: int, device: torch.device, deferred: bool, epoch: int):
        self.pending = torch.zeros(steps, device=device) if deferred else None
        self.values: list[float] = []
        self.epoch = epoch

    def add(self, step: int, loss: torch.Tensor) -> None:
        if self.pending is not None:
            self.pending[step] = loss
        else:
            self._append([loss.item()])

    def mean(self, begin: int, end: int) -> float:
        """Mean loss of steps [begin, end); raises Diverged at the first non-finite one."""
        if self.pending is not None and end > len(self.values):
            self._append(self.pending[len(self.values) : end].tolist())
        return _sequential_sum(self.values[begin:end]) / (end - begin) if end > begin else math.nan

    def _append(self, values: list[float]) -> None:
        for value in values:
            if not math.isfinite(value):
                raise Diverged(self.epoch, len(self.values) + 1)
            self.values.append(value)
