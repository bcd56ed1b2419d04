"""The prepared data set (`Cifar`) as one compact uncompressed .npz: written once by prepare,
loaded by every training job in a fraction of a second, and checked when loaded."""

import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cifarbench.atomic import atomic_path, check_free_space
from cifarbench.errors import UserError

CACHE_KEYS = ("train_images", "train_labels", "test_images", "test_labels", "classes")
N_CLASSES = 10
IMAGE_SHAPE = (3, 32, 32)


@dataclass(frozen=True)
class Cifar:
    train_images: np.ndarray  # uint8, (N, 3, 32, 32), C-contiguous
    train_labels: np.ndarray  # int64, (N,)
    test_images: np.ndarray  # uint8, (M, 3, 32, 32)
    test_labels: np.ndarray  # int64, (M,)
    classes: tuple[str, ...]  # the 10 names from batches.meta label_names


def save_cache(cifar: Cifar, path) -> None:
    """Write the data set as one uncompressed .npz (loads in a fraction of a second)."""
    arrays = (cifar.train_images, cifar.train_labels, cifar.test_images, cifar.test_labels)
    check_free_space(Path(path).parent, sum(a.nbytes for a in arrays), f"write {path}")
    with atomic_path(path) as tmp, open(tmp, "wb") as out:
        # A file object, not a name: np.savez would append ".npz" to the temporary name.
        np.savez(
            out,
            train_images=cifar.train_images,
            train_labels=cifar.train_labels,
            test_images=cifar.test_images,
            test_labels=cifar.test_labels,
            classes=np.array(cifar.classes, dtype=str),
        )


def load_cache(path, expect: tuple[int, int] | None = None) -> Cifar:
    """Load a cache written by `save_cache`, checking that it is one and, given `expect`
    (training and test images), that it holds what the config says: a swapped cache of the
    right form but other counts is refused, not trained on."""
    stored = _load_npz(path)
    missing = [key for key in CACHE_KEYS if key not in stored]
    if missing:
        raise UserError(f"{path}: not a cifarbench cache (missing {', '.join(missing)})")
    for split in ("train", "test"):
        _check_cached_split(
            stored[f"{split}_images"], stored[f"{split}_labels"], f"{path}: {split}"
        )
    counts = (len(stored["train_labels"]), len(stored["test_labels"]))
    if expect is not None and counts != tuple(expect):
        raise UserError(
            f"{path}: holds {counts[0]} training and {counts[1]} test images, the config says "
            f"{expect[0]} and {expect[1]} (data.train_size, data.test_size): rerun prepare"
        )
    classes = stored["classes"]
    if classes.dtype.kind != "U" or classes.shape != (N_CLASSES,):
        raise UserError(f"{path}: classes should be {N_CLASSES} names, found {classes!r}")
    return Cifar(
        train_images=stored["train_images"],
        train_labels=stored["train_labels"],
        test_images=stored["test_images"],
        test_labels=stored["test_labels"],
        classes=tuple(str(name) for name in classes),
    )


def _load_npz(path) -> dict[str, np.ndarray]:
    try:
        with open(path, "rb") as file:  # ours to close, also when numpy fails half-way
            loaded = np.load(file, allow_pickle=False)
            if not isinstance(loaded, np.lib.npyio.NpzFile):
                raise ValueError("a single .npy array, not an .npz")
            return {key: loaded[key] for key in loaded.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise UserError(f"{path}: not a cifarbench cache ({exc})") from exc


def _check_cached_split(images: np.ndarray, labels: np.ndarray, where: str) -> None:
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != IMAGE_SHAPE:
        raise UserError(
            f"{where} images should be uint8 (n, 3, 32, 32), found {images.dtype} {images.shape}"
        )
    if labels.dtype != np.int64 or labels.shape != (len(images),):
        raise UserError(
            f"{where} labels should be int64 ({len(images)},), found {labels.dtype} {labels.shape}"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= N_CLASSES):
        raise UserError(f"{where} labels outside 0..{N_CLASSES - 1}")
