"""Train through the training job's own loop and compare two trainings bit for bit."""

import copy

import torch

from cifarbench.cache import Cifar
from cifarbench.document import summary_statistics
from cifarbench.loop import Trainer, evaluate
from cifarbench.progress import Progress
from cifarbench.settings import Settings


def train_two_epochs(data: Cifar, settings: dict, seed: int = 3) -> tuple[list, float, dict]:
    """Per-epoch losses, test accuracy and final weights of two epochs on the CPU."""
    trainer = Trainer(data, Settings(**settings), torch.device("cpu"), seed)
    with Progress(2) as progress:
        losses = [trainer.train_epoch(epoch, progress).loss for epoch in (1, 2)]
    accuracy = evaluate(trainer, data.test_images, data.test_labels)
    return losses, accuracy, trainer.model.state_dict()


def assert_same_training(first, second) -> None:
    (losses, accuracy, weights), (other_losses, other_accuracy, other_weights) = first, second
    assert other_losses == losses and other_accuracy == accuracy
    assert all(torch.equal(other_weights[name], weights[name]) for name in weights)
    assert losses[1] < losses[0]  # it trained


def like(template: dict, name: str, times: list[float], accuracies: list[float]) -> dict:
    """The template as variant `name`, with one replicate per (time, accuracy)."""
    document = copy.deepcopy(template)
    first = document["replicates"][0]
    document["variant"] = name
    document["replicates"] = [
        {**copy.deepcopy(first), "seed": seed, "training_time_s": time, "accuracy_pct": accuracy}
        for seed, (time, accuracy) in enumerate(zip(times, accuracies, strict=True))
    ]
    document["summary"] = summary_statistics(document["replicates"])
    return document
