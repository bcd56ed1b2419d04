"""Training batches: the study's torchvision DataLoader, and two faster paths to the same
batches (`loader: grouped`, `loader: tensor`)."""

import math
import warnings
from collections.abc import Iterator
from functools import partial

import numpy as np
import torch
from PIL import Image
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler

from cifarbench.cache import Cifar
from cifarbench.settings import Settings

# The study's ToTensor + Normalize((0.5,)*3, (0.5,)*3) of each of the 256 pixel values, computed
# as torchvision computes it (float32: divide by 255, subtract 0.5, divide by 0.5). Indexing this
# table with a uint8 image gives the study's numbers bit for bit, in one pass.
_PIXELS = np.arange(256, dtype=np.float32)
PIXEL_VALUES = (_PIXELS / np.float32(255) - np.float32(0.5)) / np.float32(0.5)

# Samples a worker prepares per request with `loader: grouped`: small batches are
# fetched this many images at a time and split into batches before they cross to the main
# process, so the cost of a request (indices out, a pickled batch back) is paid once per group.
SAMPLES_PER_REQUEST = 256

# PyTorch warns of more workers than usable CPUs from two places (where a DataLoader is made and
# where each epoch's workers start), which Python's default filter counts as two warnings: one
# line in the training log says it.
warnings.filterwarnings("once", message="This DataLoader will create", category=UserWarning)


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 pixels -> the study's ToTensor + Normalize((0.5,)*3, (0.5,)*3), i.e. into [-1, 1]."""
    return images.float().div_(255).sub_(0.5).div_(0.5)


class TorchvisionDataset(Dataset):
    """The study's data path, as torchvision's `CIFAR10` serves it: each uint8 image becomes a
    PIL image, then `ToTensor()` and `Normalize((0.5,)*3, (0.5,)*3)`, in a DataLoader worker."""

    def __init__(self, images: np.ndarray, labels: np.ndarray):
        from torchvision import transforms  # a second of start-up: only this loader needs it

        self.images = images.transpose(0, 2, 3, 1)  # HWC, as torchvision's CIFAR10 holds them
        self.labels = labels
        self.transform = transforms.Compose(
            [transforms.ToTensor(), transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))]
        )

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.transform(Image.fromarray(self.images[index])), int(self.labels[index])


def _pin(settings: Settings, device: torch.device) -> bool:
    """Pinned pages serve copies to a GPU; elsewhere `pin_memory` does nothing."""
    return settings.pin_memory and device.type == "cuda"


def _persistent(settings: Settings) -> bool:
    return settings.persistent_workers and settings.workers > 0


def torchvision_batches(
    images: np.ndarray, labels: np.ndarray, settings: Settings, device: torch.device
) -> DataLoader:
    """The study's DataLoader: shuffled, default collate, its order drawn from the global RNG."""
    return DataLoader(
        TorchvisionDataset(images, labels),
        batch_size=settings.batch_size,
        shuffle=True,
        num_workers=settings.workers,
        pin_memory=_pin(settings, device),
        persistent_workers=_persistent(settings),
    )


class PixelTableDataset(Dataset):
    """The grouped loader's items: the study's numbers from one lookup in `PIXEL_VALUES`.

    Items are numpy arrays, which cross from a worker to the main process by value in the
    worker's pipe; a tensor would cross as a new shared-memory segment per batch, which costs
    more than the batch itself at the study's batch size.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray):
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        return PIXEL_VALUES[self.images[index]], int(self.labels[index])


class GroupedBatches:
    """Iterates a DataLoader whose items are groups of batches, and yields the batches as
    tensors (in pinned memory with `pin_memory`, so that the copy to a GPU is asynchronous)."""

    def __init__(self, loader: DataLoader, batches: int, pin: bool):
        self.loader, self.batches, self.pin = loader, batches, pin

    def __len__(self) -> int:
        return self.batches

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for group in self.loader:
            for images, labels in group:
                images, labels = torch.from_numpy(images), torch.from_numpy(labels)
                if self.pin:
                    images, labels = images.pin_memory(), labels.pin_memory()
                yield images, labels


def _collate_batches(
    samples: list[tuple[np.ndarray, int]], batch_size: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Consecutive samples -> batches of `batch_size` (the last may be short), as numpy arrays."""
    return [
        (
            np.stack([image for image, _ in samples[start : start + batch_size]]),
            np.array([label for _, label in samples[start : start + batch_size]], dtype=np.int64),
        )
        for start in range(0, len(samples), batch_size)
    ]


def grouped_batches(
    images: np.ndarray, labels: np.ndarray, settings: Settings, device: torch.device
) -> GroupedBatches:
    """The study's batches and numbers with a cheaper transport.

    The same random permutation per epoch as the study's DataLoader (its sampler draws from
    the global RNG in the same order), cut into the same batches, each image normalized on
    its own in a worker. Only the transport differs: a worker prepares several consecutive
    batches per request (`SAMPLES_PER_REQUEST`), so a request's cost is paid once per group.
    """
    dataset = PixelTableDataset(images, labels)
    batch_size = settings.batch_size
    group = max(1, SAMPLES_PER_REQUEST // batch_size) * batch_size
    loader = DataLoader(
        dataset,
        batch_sampler=BatchSampler(RandomSampler(dataset), group, drop_last=False),
        num_workers=settings.workers,
        collate_fn=partial(_collate_batches, batch_size=batch_size),
        persistent_workers=_persistent(settings),
    )
    batches = math.ceil(len(dataset) / batch_size)
    return GroupedBatches(loader, batches, _pin(settings, device))


class TensorBatches:
    """The whole set as one uint8 tensor on the device, shuffled by index each epoch and
    normalized a batch at a time. No per-sample Python, no worker processes.

    Each epoch draws from the global RNG exactly what the DataLoader it replaces would draw
    (its workers' base seed, every epoch or, with persistent workers, the first only; then its
    sampler's permutation), so both train on the same batches and leave the RNG alike.
    """

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        batch_size: int,
        device: torch.device,
        persistent_workers: bool = False,
    ):
        self.images = torch.from_numpy(images).to(device)
        self.labels = torch.from_numpy(labels).to(device)
        self.batch_size = batch_size
        self.sampler = RandomSampler(range(len(labels)))
        self.persistent_workers, self.drew_base_seed = persistent_workers, False

    def __len__(self) -> int:
        return math.ceil(len(self.labels) / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if not (self.persistent_workers and self.drew_base_seed):
            torch.empty((), dtype=torch.int64).random_()  # the workers' base seed
            self.drew_base_seed = True
        order = torch.tensor(list(self.sampler))
        for batch in order.to(self.images.device).split(self.batch_size):
            # index_select: a fifth of the cost of `images[batch]` at the study's batch of 4.
            yield normalize(self.images.index_select(0, batch)), self.labels.index_select(0, batch)


def tensor_batches(
    images: np.ndarray, labels: np.ndarray, settings: Settings, device: torch.device
) -> TensorBatches:
    return TensorBatches(images, labels, settings.batch_size, device, _persistent(settings))


# The `loader` setting's values (the schema's enum equals these keys: tests/test_settings.py).
LOADERS = {"torchvision": torchvision_batches, "grouped": grouped_batches, "tensor": tensor_batches}


def make_batches(data: Cifar, settings: Settings, device: torch.device):
    """The training batches of `settings.loader`, in the study's order for the global RNG."""
    return LOADERS[settings.loader](data.train_images, data.train_labels, settings, device)


def flip_and_translate(images: torch.Tensor, pad: int = 2) -> torch.Tensor:
    """Randomly flip each image left-right and shift it by up to `pad` pixels each way, filling
    the border by reflection.

    One gather over the whole batch on its device: each output pixel's source is computed from
    its image's flip and offsets. No per-image work, no host-device synchronization, and the
    memory format (contiguous or channels_last) is kept.
    """
    n, channels, height, width = images.shape
    device = images.device
    flip = torch.rand(n, 1, device=device) < 0.5
    rows = _reflect(_shifted(n, height, pad, device), height)  # (n, height)
    cols = _reflect(_shifted(n, width, pad, device), width)  # (n, width)
    cols = torch.where(flip, width - 1 - cols, cols)
    pixels = height * width
    source = (rows[:, :, None] * width + cols[:, None, :]).view(n, pixels, 1)
    if images.is_contiguous() or not images.is_contiguous(memory_format=torch.channels_last):
        flat = images.reshape(n, channels, pixels)
        moved = flat.gather(2, source.view(n, 1, pixels).expand(n, channels, pixels))
        return moved.view(n, channels, height, width)
    flat = images.permute(0, 2, 3, 1).reshape(n, pixels, channels)  # a view: NHWC in memory
    moved = flat.gather(1, source.expand(n, pixels, channels))
    return moved.view(n, height, width, channels).permute(0, 3, 1, 2)


def _shifted(n: int, size: int, pad: int, device: torch.device) -> torch.Tensor:
    """Positions 0..size-1 of each of n images, shifted by a random offset in [-pad, pad]."""
    offsets = torch.randint(-pad, pad + 1, (n, 1), device=device)
    return torch.arange(size, device=device) + offsets


def _reflect(positions: torch.Tensor, size: int) -> torch.Tensor:
    """Map positions up to size-1 beyond either edge back inside, as reflect padding does."""
    positions = positions.abs()
    return torch.where(positions >= size, 2 * (size - 1) - positions, positions)
