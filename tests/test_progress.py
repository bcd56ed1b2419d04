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
