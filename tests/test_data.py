"""The data paths: same numbers and the same batches as the study's per-sample pipeline."""

import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from cifarbench.cache import Cifar
from cifarbench.data import (
    PIXEL_VALUES,
    TensorBatches,
    TorchvisionDataset,
    flip_and_translate,
    grouped_batches,
    make_batches,
    normalize,
)
from cifarbench.settings import Settings

CPU = torch.device("cpu")
STUDY_TRANSFORM = transforms.Compose(
    [transforms.ToTensor(), transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))]
)


class StudyDataset(Dataset):
    """The study's procedure, as the benchmark's reference runs it: uint8 HWC -> PIL -> tensor."""

    def __init__(self, images: np.ndarray, labels: np.ndarray):
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = Image.fromarray(self.images[index].transpose(1, 2, 0))
        return STUDY_TRANSFORM(image), int(self.labels[index])


def random_images(n: int) -> tuple[np.ndarray, np.ndarray]:
    """n uint8 CHW images and labels, as the cache holds them."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)
    return images, rng.integers(0, 10, size=n).astype(np.int64)


def test_pixel_table_equals_torchvision_for_every_pixel_value():
    every_value = np.arange(256, dtype=np.uint8).reshape(16, 16)
    image = np.stack([every_value, every_value.T, every_value[::-1]])  # CHW
    expected = STUDY_TRANSFORM(Image.fromarray(image.transpose(1, 2, 0)))
    assert torch.equal(torch.from_numpy(PIXEL_VALUES[image]), expected)  # bit for bit


def test_normalize_on_the_device_equals_torchvision_for_every_pixel_value():
    every_value = np.arange(256, dtype=np.uint8).reshape(1, 16, 16).repeat(3, axis=0)
    expected = STUDY_TRANSFORM(Image.fromarray(every_value.transpose(1, 2, 0)))
    assert torch.equal(normalize(torch.from_numpy(every_value)), expected)


def study_loader(images: np.ndarray, labels: np.ndarray, batch_size: int, workers: int = 0):
    """The study's shuffling DataLoader over the PIL transform; its order from the global RNG."""
    dataset = StudyDataset(images, labels)
    return DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers)


def assert_same_two_epochs(ours, study, seed: int = 3) -> None:
    """Two epochs equal, bit for bit, each drawing its order from the global RNG as seeded,
    and leaving the RNG where the study's loader leaves it."""
    torch.manual_seed(seed)
    ours_epochs = [list(ours) for _ in range(2)]
    after_ours = torch.get_rng_state()
    torch.manual_seed(seed)
    study_epochs = [list(study) for _ in range(2)]
    assert torch.equal(after_ours, torch.get_rng_state())
    for our_epoch, study_epoch in zip(ours_epochs, study_epochs, strict=True):
        pairs = list(zip(our_epoch, study_epoch, strict=True))
        for (our_images, our_labels), (study_images, study_labels) in pairs:
            assert torch.equal(our_labels, study_labels)
            assert torch.equal(our_images, study_images)


@pytest.mark.parametrize("workers", [0, 2])
def test_torchvision_loader_is_the_studys_dataloader(workers):
    images, labels = random_images(300)
    settings = Settings(batch_size=4, workers=workers)
    ours = make_batches_for(images, labels, settings)
    assert isinstance(ours.dataset, TorchvisionDataset) and ours.num_workers == workers
    assert not ours.pin_memory and not ours.persistent_workers
    assert_same_two_epochs(ours, study_loader(images, labels, 4, workers))


@pytest.mark.parametrize("workers", [0, 1, 2])
@pytest.mark.parametrize("batch_size", [4, 5, 64, 300])
def test_grouped_loader_yields_the_study_loaders_batches(batch_size, workers):
    """Fetching several batches per worker request changes neither the order, the batch
    boundaries nor the numbers."""
    images, labels = random_images(700)
    settings = Settings(batch_size=batch_size, workers=workers)
    ours = grouped_batches(images, labels, settings, CPU)
    study = study_loader(images, labels, batch_size)
    assert len(ours) == len(study) == math.ceil(700 / batch_size)
    assert_same_two_epochs(ours, study)


@pytest.mark.parametrize("batch_size", [4, 64, 300])
def test_tensor_path_yields_the_study_loaders_batches(batch_size):
    """The fast path draws the same order and computes the same numbers, without workers."""
    images, labels = random_images(700)
    ours = TensorBatches(images, labels, batch_size, CPU)
    study = study_loader(images, labels, batch_size)
    assert len(ours) == len(study)
    assert_same_two_epochs(ours, study)


def test_persistent_workers_change_the_order_from_the_second_epoch():
    """A persistent DataLoader draws its workers' base seed once, not every epoch, so from the
    second epoch its sampler's permutation comes from another point of the global RNG: why
    the `persistent_workers` rung is not the same computation as the rung below it."""
    images, labels = random_images(100)
    settings = Settings(batch_size=100, workers=1, persistent_workers=True)
    persistent, study = (
        make_batches_for(images, labels, settings),
        study_loader(images, labels, 100),
    )
    orders = []
    for loader in (persistent, study):
        torch.manual_seed(0)
        orders.append([next(iter(loader))[1] for _ in range(2)])  # one batch = one epoch
    (persistent_first, persistent_second), (study_first, study_second) = orders
    assert torch.equal(persistent_first, study_first)
    assert not torch.equal(persistent_second, study_second)


def make_batches_for(images: np.ndarray, labels: np.ndarray, settings: Settings):
    data = Cifar(images, labels, images[:0], labels[:0], tuple(str(i) for i in range(10)))
    return make_batches(data, settings, CPU)


def test_flip_and_translate_keeps_shape_and_moves_pixels_by_at_most_the_pad():
    torch.manual_seed(0)
    images = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    out = flip_and_translate(images, pad=2)
    assert out.shape == images.shape
    # The centre 4x4 of each output comes from the (possibly flipped) input, shifted by <= 2.
    for original, moved in zip(images, out, strict=True):
        candidates = [
            v[:, 2 + dy : 6 + dy, 2 + dx : 6 + dx]
            for v in (original, original.flip(2))
            for dy in range(-2, 3)
            for dx in range(-2, 3)
        ]
        assert any(torch.equal(moved[:, 2:6, 2:6], c) for c in candidates)
    assert math.isfinite(out.sum().item())


def test_flip_and_translate_keeps_channels_last_and_moves_the_same_pixels():
    images = normalize(torch.from_numpy(random_images(16)[0]))
    torch.manual_seed(1)
    contiguous = flip_and_translate(images)
    torch.manual_seed(1)
    channels_last = flip_and_translate(images.contiguous(memory_format=torch.channels_last))
    assert channels_last.is_contiguous(memory_format=torch.channels_last)
    assert contiguous.is_contiguous()
    assert torch.equal(channels_last, contiguous)
    assert not torch.equal(contiguous, images)  # something moved


def test_too_many_workers_is_said_once_in_a_training_log():
    """PyTorch warns where a DataLoader is made and again where each epoch's workers start; a
    job's log says it once. In its own process: pytest rewrites the warning filters."""
    workers = len(os.sched_getaffinity(0)) + 1
    two_epochs = (
        "import numpy as np, torch\n"
        "from cifarbench.data import torchvision_batches\n"
        "from cifarbench.settings import Settings\n"
        f"settings = Settings(workers={workers}, batch_size=4)\n"
        "images, labels = np.zeros((8, 3, 32, 32), np.uint8), np.zeros(8, np.int64)\n"
        "loader = torchvision_batches(images, labels, settings, torch.device('cpu'))\n"
        "for epoch in range(2):\n"
        "    for batch in loader:\n"
        "        pass\n"
    )
    job = subprocess.run(
        [sys.executable, "-c", two_epochs], capture_output=True, text=True, timeout=120
    )
    assert job.returncode == 0, job.stderr[-2000:]
    assert job.stderr.count(f"This DataLoader will create {workers} worker processes") == 1
