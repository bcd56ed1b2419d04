"""What is on the training clock and what is not: the clock itself, which evaluation stops,
and the warm-up figures read from a replicate's epochs (one-off costs apart from the steady
state)."""

import contextlib
import statistics
import time
from collections.abc import Iterator


class TrainingClock:
    """Training time: from the start of the epoch loop, less the time spent off the clock
    (evaluating the test set after an epoch). `paused_with` are meters (the energy meter)
    whose own `off()` pauses them for the same spans."""

    def __init__(self, paused_with: list = ()):
        self.start = time.perf_counter()
        self.excluded = 0.0
        self.paused_with = list(paused_with)

    def read(self) -> float:
        return time.perf_counter() - self.start - self.excluded

    @contextlib.contextmanager
    def off(self) -> Iterator[None]:
        with contextlib.ExitStack() as meters:
            for meter in self.paused_with:
                meters.enter_context(meter.off())
            paused = time.perf_counter()
            try:
                yield
            finally:
                self.excluded += time.perf_counter() - paused


def warmup(epochs: list[dict], first_step_s: float | None, compiled: bool) -> dict:
    """The first epoch apart from the steady ones (the median of epochs 2..n; None for a
    one-epoch run), and the first step's excess over a steady step: the one-off costs that
    land in it (compilation, autotuning, lazy initialization)."""
    steady_epochs = epochs[1:]
    excess = None
    if first_step_s is not None:
        steady_step = _steady_step_s(epochs, first_step_s)
        excess = None if steady_step is None else first_step_s - steady_step
    return {
        "first_epoch_time_s": epochs[0]["time_s"] if epochs else None,
        "steady_epoch_time_s": (
            statistics.median(e["time_s"] for e in steady_epochs) if steady_epochs else None
        ),
        "first_step_s": first_step_s,
        "first_step_excess_s": excess,
        # torch.compile compiles inside the first step, on the clock: its cost is read as
        # that step's excess rather than moved off the clock, so training stays the study's.
        "compile_timed_as": "first_step_excess" if compiled else None,
    }


def _steady_step_s(epochs: list[dict], first_step_s: float) -> float | None:
    """A steady step's compute time: the median over epochs 2..n of their mean step, or the
    first epoch's steps after its first."""
    if len(epochs) > 1:
        return statistics.median(e["compute_s"] / e["steps"] for e in epochs[1:])
    if epochs and epochs[0]["steps"] > 1:
        return (epochs[0]["compute_s"] - first_step_s) / (epochs[0]["steps"] - 1)
    return None
