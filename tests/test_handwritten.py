"""The handwritten backward pass: Net's gradients without autograd, the same bit for bit."""

import pytest
import torch

from cifarbench import train
from cifarbench.config import variant_settings
from cifarbench.handwritten import HandwrittenNet
from cifarbench.models import make_net
from cifarbench.progress import Progress
from workflow_helpers import shipped_config

CONFIG = shipped_config()
DEFAULTS = CONFIG["defaults"]


def _autograd_gradients(net, images, labels):
    net.zero_grad(set_to_none=True)
    loss = torch.nn.functional.cross_entropy(net(images), labels)
    loss.backward()
    return loss, {name: p.grad.clone() for name, p in net.named_parameters()}


@pytest.mark.parametrize("batch", [1, 4, 7])
def test_loss_and_every_gradient_equal_autograds_bit_for_bit(batch):
    torch.manual_seed(batch)
    net = make_net("net")
    images, labels = torch.randn(batch, 3, 32, 32), torch.randint(0, 10, (batch,))
    expected_loss, expected = _autograd_gradients(net, images, labels)
    net.zero_grad(set_to_none=True)

    loss = HandwrittenNet(net).loss_and_gradients(images, labels)

    assert torch.equal(loss, expected_loss.detach())
    for name, param in net.named_parameters():
        assert torch.equal(param.grad, expected[name]), name


def test_it_builds_no_autograd_graph():
    net = make_net("net")
    loss = HandwrittenNet(net).loss_and_gradients(torch.randn(4, 3, 32, 32), torch.arange(4))
    assert loss.grad_fn is None and not loss.requires_grad


@pytest.mark.parametrize(
    "model,batch_norm", [("net", True), ("simplecnn", False), ("resnet", False)]
)
def test_it_refuses_any_model_but_nets_plain_form(model, batch_norm):
    with pytest.raises(ValueError, match="Net's, without batch norm"):
        HandwrittenNet(make_net(model, batch_norm))


def _train(data, s: dict) -> tuple[list[float], float, dict]:
    """Two epochs through the training job's own loop: per-epoch losses, accuracy, weights."""
    trainer = train.Trainer(data, s, torch.device("cpu"), seed=3)
    assert (trainer.handwritten is not None) == (s["backward"] == "handwritten")
    with Progress(2) as progress:
        losses = [trainer.train_epoch(epoch, progress).loss for epoch in (1, 2)]
    accuracy = train.evaluate(trainer.model, data.test_images, data.test_labels, trainer.device, s)
    return losses, accuracy, trainer.model.state_dict()


def _assert_same_training(first, second) -> None:
    (losses, accuracy, weights), (other_losses, other_accuracy, other_weights) = first, second
    assert other_losses == losses and other_accuracy == accuracy
    assert all(torch.equal(other_weights[name], weights[name]) for name in weights)
    assert losses[1] < losses[0]  # it trained


def test_training_with_it_is_training_with_autograd_bit_for_bit(learnable):
    s = {**DEFAULTS, "workers": 0, "nesterov": True, "weight_decay": 5e-4, "lr": 0.01}
    s.update(schedule="onecycle", augment=True, batch_size=5, epochs=2)
    _assert_same_training(
        _train(learnable, {**s, "backward": "autograd"}),
        _train(learnable, {**s, "backward": "handwritten"}),
    )


def test_the_fast_variant_trains_exactly_as_the_studys(learnable):
    """`cpu-fast` (whole-set tensor, handwritten backward pass) against `cpu` (DataLoader with
    2 workers, autograd): the same batches and the same arithmetic."""
    changes = {"epochs": 2, "lr": 0.01}
    _assert_same_training(
        _train(learnable, {**variant_settings(CONFIG, "cpu"), **changes}),
        _train(learnable, {**variant_settings(CONFIG, "cpu-fast"), **changes}),
    )
