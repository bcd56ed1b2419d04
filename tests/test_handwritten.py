"""The handwritten backward pass: Net's gradients without autograd, the same bit for bit."""

import pytest
import torch

from cifarbench.handwritten import HandwrittenNet
from cifarbench.models import make_net
from training_helpers import assert_same_training, train_two_epochs
from workflow_helpers import study_settings


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


def test_training_with_it_is_training_with_autograd_bit_for_bit(learnable):
    s = study_settings(workers=0, nesterov=True, weight_decay=5e-4, lr=0.01)
    s.update(schedule="onecycle", augment=True, batch_size=5, epochs=2)
    assert_same_training(
        train_two_epochs(learnable, {**s, "backward": "autograd"}),
        train_two_epochs(learnable, {**s, "backward": "handwritten"}),
    )
