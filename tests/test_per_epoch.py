"""Accuracy after every epoch is off the clock and changes nothing of training; stop_at ends
training at the first epoch that reaches it."""

import time

import pandas as pd
import pytest
import torch

from cifarbench import in_process, loop, table
from cifarbench.document import check_metrics
from cifarbench.figures import draw_figures
from cifarbench.loop import Trainer, run_training, train_replicate
from cifarbench.settings import Settings
from workflow_helpers import study_settings

CPU = torch.device("cpu")
# Each draws random numbers in its own way: DataLoader workers forked every epoch (their
# seeds and the shuffle from the global generator), workers that live across epochs, and
# augmentation drawn on the device; batch norm keeps running statistics.
SETTINGS = {
    "workers forked each epoch": dict(workers=2, batch_size=16, lr=0.01),
    "persistent grouped workers, batch norm": dict(
        loader="grouped", workers=2, persistent_workers=True, batch_norm=True, batch_size=16
    ),
    "tensor loader, augmented": dict(loader="tensor", augment=True, batch_size=16, lr=0.01),
}


def trained(data, evaluate: str, changes: dict) -> tuple[dict, dict]:
    settings = Settings(**study_settings(**changes, epochs=3, evaluate=evaluate))
    trainer = Trainer(data, settings, CPU, seed=5)
    return run_training(trainer, data), trainer.model.state_dict()


@pytest.mark.slow
@pytest.mark.parametrize("changes", SETTINGS.values(), ids=SETTINGS.keys())
def test_evaluating_every_epoch_trains_exactly_as_evaluating_at_the_end(learnable, changes):
    every, every_weights = trained(learnable, "every_epoch", changes)
    end, end_weights = trained(learnable, "end", changes)
    assert [e["loss"] for e in every["epochs"]] == [e["loss"] for e in end["epochs"]]
    assert all(torch.equal(every_weights[name], end_weights[name]) for name in end_weights)
    assert every["accuracy_pct"] == end["accuracy_pct"] == every["epochs"][-1]["accuracy_pct"]
    # Every epoch scored, or only the last.
    assert all(e["accuracy_pct"] is not None for e in every["epochs"])
    assert [e["accuracy_pct"] is None for e in end["epochs"]] == [True, True, False]


def test_evaluation_is_off_the_training_clock(learnable, monkeypatch):
    """A slow evaluation (half a second, after each of 2 epochs) adds nothing to the training
    time, nor to the clock the next epoch ends at."""
    real = loop.evaluate

    def slow_evaluate(*args):
        time.sleep(0.5)
        return real(*args)

    monkeypatch.setattr(loop, "evaluate", slow_evaluate)
    s = study_settings(loader="tensor", batch_size=50, epochs=2)
    result = train_replicate(learnable, Settings(**s), CPU, seed=0)
    first, second = result["epochs"]
    assert first["eval_s"] >= 0.5 and second["eval_s"] >= 0.5
    epochs_time = first["time_s"] + second["time_s"]
    assert epochs_time <= result["training_time_s"] < epochs_time + 0.25
    assert second["clock_s"] == pytest.approx(result["training_time_s"], abs=0.05)
    assert first["clock_s"] < second["clock_s"] - second["time_s"] + 0.25


def test_stop_at_ends_training_at_the_first_epoch_that_reaches_it(learnable):
    s = study_settings(loader="tensor", batch_size=16, lr=0.01, epochs=6)
    full = train_replicate(learnable, Settings(**s), CPU, seed=0)
    accuracies = [e["accuracy_pct"] for e in full["epochs"]]
    target = sorted(accuracies)[2]  # reached, not in the first epoch unless it is the best
    expected = next(k for k, a in enumerate(accuracies, start=1) if a >= target)
    stopped = train_replicate(learnable, Settings(**{**s, "stop_at": target}), CPU, seed=0)
    assert stopped["stopped_at_epoch"] == expected == len(stopped["epochs"])
    assert stopped["accuracy_pct"] == accuracies[expected - 1]  # the same training, cut short
    assert full["stopped_at_epoch"] is None
    never = train_replicate(learnable, Settings(**{**s, "stop_at": 100.0}), CPU, seed=0)
    if max(accuracies) < 100:
        assert never["stopped_at_epoch"] is None and len(never["epochs"]) == 6


def test_a_variants_document_gives_time_to_target_and_its_figures_draw_it(learnable, tmp_path):
    s = study_settings(loader="tensor", batch_size=16, lr=0.01, epochs=3, replicates=2)
    document = in_process.run_variant("cpu", learnable, s, "cpu", 1, targets=[5, 100])
    check_metrics(document, "run_variant")
    assert document["targets"] == [5, 100]
    five, hundred = document["time_to_target"]["5"], document["time_to_target"]["100"]
    assert five["reached"] == 2 and five["median_s"] > 0  # chance is 10%: epoch 1 reaches 5%
    first_epochs = [r["epochs"][0]["clock_s"] for r in document["replicates"]]
    assert five["median_s"] == pytest.approx(sum(first_epochs) / 2)
    # Not reached by both: the median counts the other as infinitely slow, so it is none.
    assert (hundred["median_s"] is None) == (hundred["reached"] < 2)
    rows = table.build_table([document], {"cpu": "cpu"})
    assert rows.loc[0, "Time to 5% Reached"] == "reached 2 of 2"
    drawn = draw_figures(rows, [document], {}, {}, tmp_path)
    assert "accuracy_curves.png" in drawn
    assert all((tmp_path / name).stat().st_size > 0 for name in drawn)


def test_evaluating_only_at_the_end_gives_no_time_to_target(learnable):
    s = study_settings(loader="tensor", batch_size=50, epochs=1, evaluate="end")
    document = in_process.run_variant("cpu", learnable, s, "cpu", 1, targets=[5])
    check_metrics(document, "run_variant")
    assert document["time_to_target"] is None
    assert document["replicates"][0]["time_to_target"] is None
    assert document["replicates"][0]["accuracy_pct"] is not None
    row = table.build_table([document], {"cpu": "cpu"}).loc[0]
    assert pd.isna(row["Time to 5% (s)"]) and pd.isna(row["Time to 5% Reached"])
