"""Training batches: the study's per-sample DataLoader path and a whole-set tensor path."""

import math
from collections.abc import Iterator

import numpy as np
import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 pixels -> the study's ToTensor + Normalize((0.5,)*3, (0.5,)*3), i.e. into [-1, 1]."""
    return images.float().div_(255).sub_(0.5).div_(0.5)


class PerSampleDataset(Dataset):
    """The study's data path: each image is converted and normalized on its own, in a worker.

    The cache already holds uint8 CHW arrays, so the study's PIL round trip (array -> PIL image
    -> ToTensor) is skipped: same numbers, less work.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray):
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return normalize(torch.from_numpy(self.images[index])), int(self.labels[index])


def dataloader_batches(
    images: np.ndarray,
    labels: np.ndarray,
    batch_size: int,
    workers: int,
    device: torch.device,
    generator: torch.Generator,
) -> DataLoader:
    """A shuffling DataLoader as the study built it, minus avoidable overhead."""
    return DataLoader(
        PerSampleDataset(images, labels),
        batch_size=batch_size,
        shuffle=True,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        persistent_workers=workers > 0,  # forking workers anew each epoch costs seconds
        generator=generator,
    )


class TensorBatches:
    """The fast path: the whole set as one uint8 tensor on the device, shuffled by index each
    epoch and normalized a batch at a time. No per-sample Python, no worker processes."""

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        batch_size: int,
        device: torch.device,
        generator: torch.Generator,
    ):
        self.images = torch.from_numpy(images).to(device)
        self.labels = torch.from_numpy(labels).to(device)
        self.batch_size, self.generator = batch_size, generator

    def __len__(self) -> int:
        return math.ceil(len(self.labels) / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = torch.randperm(len(self.labels), generator=self.generator)
        for batch in order.to(self.images.device).split(self.batch_size):
            yield normalize(self.images[batch]), self.labels[batch]


def flip_and_translate(images: torch.Tensor, pad: int = 2) -> torch.Tensor:
    """Randomly flip each image left-right and shift it by up to `pad` pixels each way.

    Works on a whole batch on its device: the shift is chosen per image, then applied with one
    masked copy per possible offset (2 * (2 * pad + 1) copies, not one per image).
    """
    n, _, height, width = images.shape
    flip = torch.rand(n, device=images.device) < 0.5
    images = torch.where(flip[:, None, None, None], images.flip(3), images)
    padded = F.pad(images, (pad, pad, pad, pad), mode="reflect")
    rows = _pick_window(padded, dim=2, size=height, pad=pad)
    return _pick_window(rows, dim=3, size=width, pad=pad)


def _pick_window(images: torch.Tensor, dim: int, size: int, pad: int) -> torch.Tensor:
    offsets = torch.randint(0, 2 * pad + 1, (images.shape[0],), device=images.device)
    out_shape = list(images.shape)
    out_shape[dim] = size
    out = images.new_empty(out_shape)
    for offset in range(2 * pad + 1):
        chosen = offsets == offset
        out[chosen] = images[chosen].narrow(dim, offset, size)
    return out
