"""Where a training job is: its epochs and batches; a live line on the terminal, a line in the
log now and then."""

import logging
import sys
import time
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:  # the download rule's env has no torch
    import torch

log = logging.getLogger("cifarbench.progress")


class Progress:
    """Reports epoch, batch, loss and elapsed time without flooding anything.

    The terminal (the original stderr, when it is one) gets one line rewritten in place at most
    every `screen_every_s`; the log gets a line at most every `log_every_s`. Reading the loss
    waits for the device, so it happens only when a line is written.
    """

    def __init__(
        self,
        epochs: int,
        screen: TextIO | None = None,
        screen_every_s: float = 0.5,
        log_every_s: float = 30.0,
        console: TextIO | None = None,
        label: str = "",
    ):
        self.epochs = epochs
        self.screen = screen or terminal()
        # Where each epoch's line goes besides the log, terminal or not (a tmux log, CI, nohup).
        self.console = console or sys.__stderr__
        self.label = label
        self.screen_every_s, self.log_every_s = screen_every_s, log_every_s
        self.start = self.last_screen = self.last_log = time.perf_counter()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc_info) -> None:
        if self.screen:
            self.screen.write("\n")
            self.screen.flush()

    def update(self, epoch: int, batch: int, batches: int, loss: "torch.Tensor") -> None:
        now = time.perf_counter()
        to_screen = self.screen is not None and now - self.last_screen >= self.screen_every_s
        to_log = now - self.last_log >= self.log_every_s
        if not (to_screen or to_log):
            return
        line = (
            f"epoch {epoch}/{self.epochs}  batch {batch}/{batches}  "
            f"loss {loss.item():.3f}  elapsed {now - self.start:.0f}s"
        )
        if to_screen:
            self.screen.write("\r" + line.ljust(79))
            self.screen.flush()
            self.last_screen = now
        if to_log:
            log.info(line)
            self.last_log = now

    def epoch_done(self, epoch: int, loss: float, time_s: float, images: int) -> None:
        """One line per epoch, in the log and on the console: its loss, speed and the ETA of
        the job's remaining epochs."""
        remaining = (time.perf_counter() - self.start) / epoch * (self.epochs - epoch)
        line = (
            f"{self.label}epoch {epoch}/{self.epochs}: loss {loss:.4f}, {time_s:.1f} s, "
            f"{images / max(time_s, 1e-9):.0f} images/s, ETA {_duration(remaining)}"
        )
        log.info(line)
        if self.console is not None:
            ending = "\r" + " " * 79 + "\r" if self.screen is self.console else ""
            self.console.write(f"{ending}{line}\n")
            self.console.flush()


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"


def terminal() -> TextIO | None:
    """The stderr Snakemake started the job with, when a person is watching it (the job's own
    stderr goes to its log, see cifarbench.job)."""
    stderr = sys.__stderr__
    return stderr if stderr is not None and stderr.isatty() else None
