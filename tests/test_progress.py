"""Progress: one line rewritten in place on a terminal, an occasional line in the log."""

import io
import logging

import torch

from cifarbench.progress import Progress


def test_terminal_gets_one_rewritten_line_and_the_log_a_summary(caplog):
    screen = io.StringIO()
    with (
        caplog.at_level(logging.INFO, logger="cifarbench.progress"),
        Progress(2, screen=screen, screen_every_s=0, log_every_s=0) as progress,
    ):
        for batch in range(1, 4):
            progress.update(1, batch, 3, torch.tensor(0.5 * batch))
    text = screen.getvalue()
    assert text.count("\r") == 3 and text.endswith("\n") and text.count("\n") == 1
    assert "epoch 1/2  batch 3/3  loss 1.500  elapsed 0s" in text
    assert [r.getMessage().split("  elapsed")[0] for r in caplog.records][-1] == (
        "epoch 1/2  batch 3/3  loss 1.500"
    )


def test_updates_are_throttled():
    screen = io.StringIO()
    with Progress(1, screen=screen, screen_every_s=3600, log_every_s=3600) as progress:
        for batch in range(1, 1000):
            progress.update(1, batch, 1000, torch.tensor(1.0))
    assert screen.getvalue() == "\n"


def test_each_epoch_gets_a_line_with_speed_and_eta_on_the_console_and_in_the_log(caplog):
    """Without a terminal too (a tmux log, CI, nohup): one line per epoch."""
    console = io.StringIO()
    with caplog.at_level(logging.INFO, logger="cifarbench.progress"):
        progress = Progress(4, screen=None, console=console, label="cpu seed 0: ")
        progress.start -= 30  # 30 s into the job, one epoch of four done
        progress.epoch_done(1, 1.23456, 30.0, 50_000)
    line = console.getvalue()
    assert line.startswith("cpu seed 0: epoch 1/4: loss 1.2346, 30.0 s, 1667 images/s, ETA 1 min")
    assert line.endswith("\n") and line.count("\n") == 1
    assert caplog.records[-1].getMessage() == line.strip()
