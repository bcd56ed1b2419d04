"""Read the official CIFAR-10 python archive safely, and keep it as one compact uint8 cache.

The archive is untrusted input (any URL and md5 can be configured), and its batches are
pickles: they are unpickled with a whitelist of the few numpy globals a CIFAR batch needs,
read straight from the tarfile (nothing is extracted), and checked field by field, so a bad
archive ends in a one-line `UserError` naming the member and what is wrong with it.
"""

import posixpath
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cifarbench.atomic import atomic_path, check_free_space
from cifarbench.errors import UserError
from cifarbench.safe_pickle import text, unpickle

FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
META = "batches.meta"
PIXELS = 3 * 32 * 32
N_CLASSES = 10
IMAGE_SHAPE = (3, 32, 32)
CACHE_KEYS = ("train_images", "train_labels", "test_images", "test_labels", "classes")


@dataclass(frozen=True)
class Cifar:
    train_images: np.ndarray  # uint8, (N, 3, 32, 32), C-contiguous
    train_labels: np.ndarray  # int64, (N,)
    test_images: np.ndarray  # uint8, (M, 3, 32, 32)
    test_labels: np.ndarray  # int64, (M,)
    classes: tuple[str, ...]  # the 10 names from batches.meta label_names


def read_archive(path, expect_train: int = 50000, expect_test: int = 10000) -> Cifar:
    """Read and check `cifar-10-python.tar.gz`; the image counts must match the expected ones."""
    path = Path(path)
    members = _read_members(path)
    where = f"{path}: {FOLDER}"
    train = [_parse_batch(members.pop(name), f"{where}/{name}") for name in TRAIN_BATCHES]
    test_images, test_labels = _parse_batch(members[TEST_BATCH], f"{where}/{TEST_BATCH}")
    classes = _parse_meta(members[META], f"{where}/{META}")
    train_images = np.concatenate([images for images, _ in train])
    train_labels = np.concatenate([labels for _, labels in train])
    _check_count(len(train_labels), expect_train, f"{where}/data_batch_1..5", "training")
    _check_count(len(test_labels), expect_test, f"{where}/{TEST_BATCH}", "test")
    return Cifar(
        train_images=_as_images(train_images),
        train_labels=train_labels,
        test_images=_as_images(test_images),
        test_labels=test_labels,
        classes=classes,
    )


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


def load_cache(path) -> Cifar:
    """Load a cache written by `save_cache`, checking that it is one."""
    stored = _load_npz(path)
    missing = [key for key in CACHE_KEYS if key not in stored]
    if missing:
        raise UserError(f"{path}: not a cifarbench cache (missing {', '.join(missing)})")
    for split in ("train", "test"):
        _check_cached_split(
            stored[f"{split}_images"], stored[f"{split}_labels"], f"{path}: {split}"
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


def _read_members(path: Path) -> dict[str, bytes]:
    """The wanted members' bytes, read in one pass without extracting anything to disk."""
    wanted = {f"{FOLDER}/{name}": name for name in (*TRAIN_BATCHES, TEST_BATCH, META)}
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                name = wanted.get(_safe_name(member.name))
                if name is None:
                    continue
                where = f"{path}: {member.name}"
                if not member.isfile():
                    raise UserError(f"{where}: is a link or special file, not a regular file")
                if name in found:
                    raise UserError(f"{where}: appears twice in the archive")
                found[name] = tar.extractfile(member).read()
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise UserError(f"{path}: truncated or corrupt .tar.gz archive ({exc})") from exc
    missing = [member for member, name in wanted.items() if name not in found]
    if missing:
        raise UserError(f"{path}: missing {', '.join(missing)} (not a CIFAR-10 python archive?)")
    return found


def _safe_name(name: str) -> str | None:
    """The normalized member name, or None for absolute names and names that climb with `..`."""
    if name.startswith("/") or ".." in name.split("/"):
        return None
    return posixpath.normpath(name)


def _parse_batch(data: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    """(images as (n, 3072) uint8, labels as int64) of one batch, checked."""
    batch = unpickle(data, where)
    for key in ("data", "labels"):
        if key not in batch:
            raise UserError(f"{where}: missing key '{key}'")
    images = batch["data"]
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8:
        found = getattr(images, "dtype", type(images).__name__)
        raise UserError(f"{where}: data should be a uint8 array, found {found}")
    if images.ndim != 2 or images.shape[1] != PIXELS:
        raise UserError(f"{where}: data should have shape (n, {PIXELS}), found {images.shape}")
    labels = _parse_labels(batch["labels"], where)
    if len(labels) != len(images):
        raise UserError(f"{where}: {len(labels)} labels for {len(images)} images")
    return images, labels


def _parse_labels(labels, where: str) -> np.ndarray:
    if not isinstance(labels, list | np.ndarray) or not all(
        isinstance(label, int | np.integer) and not isinstance(label, bool) for label in labels
    ):
        raise UserError(f"{where}: labels should be a list of integers")
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    outside = labels[(labels < 0) | (labels >= N_CLASSES)]
    if outside.size:
        raise UserError(f"{where}: label {outside[0]} outside 0..{N_CLASSES - 1}")
    return labels


def _parse_meta(data: bytes, where: str) -> tuple[str, ...]:
    meta = unpickle(data, where)
    names = meta.get("label_names")
    if names is None:
        raise UserError(f"{where}: missing key 'label_names'")
    if (
        not isinstance(names, list)
        or len(names) != N_CLASSES
        or not all(isinstance(name, bytes | str) and name for name in names)
    ):
        raise UserError(f"{where}: label_names should be {N_CLASSES} names, found {names!r}")
    return tuple(text(name) for name in names)


def _check_count(found: int, expected: int, where: str, split: str) -> None:
    if found == 0:
        raise UserError(f"{where}: {split} set is empty")
    if found != expected:
        raise UserError(f"{where}: expected {expected} {split} images, found {found}")


def _as_images(rows: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(rows.reshape(-1, *IMAGE_SHAPE))


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
