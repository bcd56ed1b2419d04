"""The study's models keep the study's shapes; every model maps a CIFAR batch to 10 logits."""

import pytest
import torch
from torch import nn

from cifarbench.models import MODELS, Net, SimpleCNN, make_net


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("batch_norm", [False, True])
def test_every_model_maps_a_batch_to_ten_logits(name, batch_norm):
    model = make_net(name, batch_norm=batch_norm)
    assert model(torch.randn(5, 3, 32, 32)).shape == (5, 10)


def test_net_is_the_studys_lenet():
    layers = {name: module for name, module in Net().named_modules()}
    assert (layers["conv1"].in_channels, layers["conv1"].out_channels) == (3, 6)
    assert layers["conv1"].kernel_size == (5, 5)
    assert (layers["conv2"].in_channels, layers["conv2"].out_channels) == (6, 16)
    dims = [(layers[f].in_features, layers[f].out_features) for f in ("fc1", "fc2", "fc3")]
    assert dims == [(400, 120), (120, 84), (84, 10)]
    # The PyTorch tutorial's LeNet, which the study used, has exactly this many parameters.
    assert sum(p.numel() for p in Net().parameters()) == 62006


def test_simplecnn_is_the_studys_second_model():
    model = SimpleCNN()
    assert (model.conv1.out_channels, model.conv2.out_channels) == (32, 64)
    assert (model.fc1.in_features, model.fc1.out_features, model.fc2.out_features) == (
        4096,
        128,
        10,
    )


def test_batch_norm_goes_after_each_conv_and_hidden_fc_as_the_study_did():
    norms = [
        type(m)
        for m in Net(batch_norm=True).modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm)
    ]
    assert norms == [nn.BatchNorm2d, nn.BatchNorm2d, nn.BatchNorm1d, nn.BatchNorm1d]
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in Net().modules())
    norms = [
        type(m)
        for m in SimpleCNN(batch_norm=True).modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm)
    ]
    assert norms == [nn.BatchNorm2d, nn.BatchNorm2d, nn.BatchNorm1d]
