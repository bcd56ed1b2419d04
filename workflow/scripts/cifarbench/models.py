"""The study's two CNNs and a small residual net for the fast recipes (no torchvision.models)."""

import torch
from torch import nn
from torch.nn import functional as F


class _ConvThenDense(nn.Module):
    """The study's two models' shape: (conv, norm) blocks, each followed by ReLU and max-pool;
    flatten; (fc, norm) layers, each followed by ReLU but the last, which has no norm.
    Subclasses create and name their layers in the study's order (the order in which they
    draw their initial weights); these tuples only say how they connect."""

    convs: tuple[tuple[nn.Module, nn.Module], ...]
    dense: tuple[tuple[nn.Module, nn.Module | None], ...]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv, norm in self.convs:
            x = self.pool(F.relu(norm(conv(x))))
        x = torch.flatten(x, 1)
        for fc, norm in self.dense:
            x = fc(x)
            if norm is not None:
                x = F.relu(norm(x))
        return x


class Net(_ConvThenDense):
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
        self.convs = ((self.conv1, self.bn1), (self.conv2, self.bn2))
        self.dense = ((self.fc1, self.bn3), (self.fc2, self.bn4), (self.fc3, None))


class SimpleCNN(_ConvThenDense):
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
        self.convs = ((self.conv1, self.bn1), (self.conv2, self.bn2))
        self.dense = ((self.fc1, self.bn3), (self.fc2, None))


class ResNet(nn.Module):
    """A small residual net in the style of the fastest public CIFAR-10 trainers (airbench),
    sized for the recipes' budget: 30 s of training on 2 CPU cores.

    A stem (conv, max-pool) to 16x16, then stages that each widen and halve the resolution
    (conv, max-pool, then a residual conv block), global max-pool and a linear head: about 4 M
    multiply-adds and 71 k parameters per image with the default widths. As in airbench,
    BatchNorm and the activation come after the pooling, where they touch a quarter of the
    values. BatchNorm is always on: the recipes need it, so `batch_norm` does not apply.
    How the widths were chosen: docs/benchmarks.md.
    """

    def __init__(self, widths: tuple[int, ...] = (16, 32, 64)):
        super().__init__()
        stem, *stages = widths
        self.stem = nn.Sequential(_conv(3, stem), nn.MaxPool2d(2), *_bn_act(stem))
        ins = [stem, *stages[:-1]]
        self.stages = nn.Sequential(
            *(_Stage(c_in, c_out) for c_in, c_out in zip(ins, stages, strict=True))
        )
        self.head = nn.Linear(widths[-1], 10, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x))
        x = torch.amax(x, dim=(2, 3))
        return self.head(x)


class _Stage(nn.Module):
    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.down = nn.Sequential(_conv(c_in, c_out), nn.MaxPool2d(2), *_bn_act(c_out))
        self.residual = nn.Sequential(_conv(c_out, c_out), *_bn_act(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.down(x)
        return x + self.residual(x)


def _conv(c_in: int, c_out: int) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)


def _bn_act(channels: int) -> tuple[nn.Module, nn.Module]:
    return nn.BatchNorm2d(channels), nn.ReLU(inplace=True)


def _identity(_features: int) -> nn.Module:
    return nn.Identity()


MODELS = {"net": Net, "simplecnn": SimpleCNN, "resnet": ResNet}


def make_net(name: str, batch_norm: bool = False) -> nn.Module:
    """Build a model by its config name."""
    if name == "resnet":
        return ResNet()
    return MODELS[name](batch_norm=batch_norm)
