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
    `width` is the stem's channels; the two stages double them. How the default was chosen:
    docs/benchmarks.md.
    """

    def __init__(self, width: int = 16):
        super().__init__()
        stem, *stages = widths = (width, 2 * width, 4 * width)
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


def make_net(name: str, batch_norm: bool = False, width: int = 16) -> nn.Module:
    """Build a model by its config name (`width`: the ResNet's)."""
    if name == "resnet":
        return ResNet(width)
    return MODELS[name](batch_norm=batch_norm)


# Patches sampled for the whitening filters: enough for a stable 27 x 27 covariance.
WHITEN_IMAGES = 5000
# Added to each eigenvalue, as airbench does: the faintest directions are not blown up to noise.
WHITEN_EPS = 5e-4


def whiten_stem(model: "ResNet", images: torch.Tensor) -> None:
    """Set the stem's filters to whiten 3x3 patches of `images` (normalized, N x 3 x 32 x 32)
    and freeze them, as airbench initializes its first layer: filter pairs +v/sqrt(l + eps),
    -v/sqrt(l + eps) for the patch covariance's eigenvectors v, largest eigenvalue l first. A
    stem wider than twice the 27 directions keeps its other filters as initialized. Reads no
    random numbers (the first images, in order), so the run's random streams are unchanged."""
    conv = model.stem[0]
    eigenvalues, eigenvectors = patch_eigens(images[:WHITEN_IMAGES], conv.kernel_size[0])
    pairs = min(conv.out_channels // 2, len(eigenvalues))
    order = eigenvalues.argsort(descending=True)[:pairs]
    filters = eigenvectors[:, order].T / (eigenvalues[order] + WHITEN_EPS).sqrt()[:, None]
    filters = filters.reshape(pairs, *conv.weight.shape[1:])
    with torch.no_grad():
        conv.weight[: 2 * pairs] = torch.cat([filters, -filters]).to(conv.weight)
    conv.weight.requires_grad_(False)


def patch_eigens(images: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues and eigenvectors (columns) of the covariance of every size x size patch of
    `images`, each patch flattened channel-major as a conv weight is. Summed 250 images at a
    time: all 5000 images' patches at once would take about a gigabyte."""
    dims = images.shape[1] * size * size
    # Where the images are: on a GPU the sums take milliseconds of the training clock.
    total = torch.zeros(dims, dtype=torch.float64, device=images.device)
    outer = torch.zeros(dims, dims, dtype=torch.float64, device=images.device)
    count = 0
    for chunk in images.split(250):
        patches = chunk.double().unfold(2, size, 1).unfold(3, size, 1)  # N C H W k k
        patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, dims)
        total += patches.sum(0)
        outer += patches.T @ patches
        count += len(patches)
    mean = total / count
    covariance = outer / count - torch.outer(mean, mean)
    eigenvalues, eigenvectors = torch.linalg.eigh(covariance)
    return eigenvalues.float(), eigenvectors.float()
