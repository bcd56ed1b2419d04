"""The study's two CNNs and a small residual net for the fast recipes (no torchvision.models)."""

import torch
from torch import nn
from torch.nn import functional as F


class Net(nn.Module):
    """The study's LeNet: conv 3->6 5x5, pool, conv 6->16 5x5, pool, fc 400->120->84->10.

    `batch_norm` inserts BatchNorm2d after each conv and BatchNorm1d after fc1 and fc2, as the
    study's batch-norm run did (before the ReLU).
    """

    def __init__(self, batch_norm: bool = False):
        super().__init__()
        norm2d = nn.BatchNorm2d if batch_norm else _identity
        norm1d = nn.BatchNorm1d if batch_norm else _identity
        self.conv1, self.bn1 = nn.Conv2d(3, 6, 5), norm2d(6)
        self.conv2, self.bn2 = nn.Conv2d(6, 16, 5), norm2d(16)
        self.pool = nn.MaxPool2d(2, 2)
        self.fc1, self.bn3 = nn.Linear(16 * 5 * 5, 120), norm1d(120)
        self.fc2, self.bn4 = nn.Linear(120, 84), norm1d(84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(F.relu(self.bn1(self.conv1(x))))
        x = self.pool(F.relu(self.bn2(self.conv2(x))))
        x = torch.flatten(x, 1)
        x = F.relu(self.bn3(self.fc1(x)))
        x = F.relu(self.bn4(self.fc2(x)))
        return self.fc3(x)


class SimpleCNN(nn.Module):
    """The study's second model: conv 3->32 3x3, pool, conv 32->64 3x3, pool, fc 4096->128->10."""

    def __init__(self, batch_norm: bool = False):
        super().__init__()
        norm2d = nn.BatchNorm2d if batch_norm else _identity
        norm1d = nn.BatchNorm1d if batch_norm else _identity
        self.conv1, self.bn1 = nn.Conv2d(3, 32, 3, padding=1), norm2d(32)
        self.conv2, self.bn2 = nn.Conv2d(32, 64, 3, padding=1), norm2d(64)
        self.pool = nn.MaxPool2d(2, 2)
        self.fc1, self.bn3 = nn.Linear(64 * 8 * 8, 128), norm1d(128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(F.relu(self.bn1(self.conv1(x))))
        x = self.pool(F.relu(self.bn2(self.conv2(x))))
        x = torch.flatten(x, 1)
        x = F.relu(self.bn3(self.fc1(x)))
        return self.fc2(x)


class ResNet(nn.Module):
    """A small residual net in the style of the fastest public CIFAR-10 trainers (airbench).

    A stem conv, then three stages of (conv, max-pool, residual conv block), each halving the
    resolution and widening; global max-pool and a linear head. BatchNorm is always on: the
    recipes need it, so `batch_norm` does not apply.
    """

    def __init__(self, widths: tuple[int, int, int, int] = (24, 48, 96, 192)):
        super().__init__()
        stem, *stages = widths
        self.stem = _conv_bn(3, stem)
        ins = [stem, *stages[:-1]]
        self.stages = nn.Sequential(
            *(_Stage(c_in, c_out) for c_in, c_out in zip(ins, stages, strict=True))
        )
        self.head = nn.Linear(stages[-1], 10, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x))
        x = torch.amax(x, dim=(2, 3))
        return self.head(x)


class _Stage(nn.Module):
    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.down = nn.Sequential(_conv_bn(c_in, c_out), nn.MaxPool2d(2))
        self.residual = _conv_bn(c_out, c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.down(x)
        return x + self.residual(x)


def _conv_bn(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.GELU()
    )


def _identity(_features: int) -> nn.Module:
    return nn.Identity()


MODELS = {"net": Net, "simplecnn": SimpleCNN, "resnet": ResNet}


def make_net(name: str, batch_norm: bool = False) -> nn.Module:
    """Build a model by its config name."""
    if name == "resnet":
        return ResNet()
    return MODELS[name](batch_norm=batch_norm)
