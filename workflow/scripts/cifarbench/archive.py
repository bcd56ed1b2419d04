"""Read the official CIFAR-10 python archive safely, and keep it as one compact uint8 cache.

The archive is untrusted input (any URL and md5 can be configured), and its batches are
pickles: they are unpickled with a whitelist of the few numpy globals a CIFAR batch needs,
read straight from the tarfile (nothing is extracted), and checked field by field, so a bad
archive ends in a one-line `UserError` naming the member and what is wrong with it.
"""

import posixpath
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from cifarbench.cache import IMAGE_SHAPE, N_CLASSES, Cifar
from cifarbench.errors import UserError
from cifarbench.safe_pickle import text, unpickle

FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
META = "batches.meta"
PIXELS = 3 * 32 * 32
# Bytes a batch member may take per image it holds: its pixels twice over (Python 3 protocol-2
# re-pickles carry bytes as latin-1 text in UTF-8), a label and a file name.
BYTES_PER_IMAGE = 2 * PIXELS + 256
MEMBER_OVERHEAD = 1 << 20  # a batch's other fields; the whole of batches.meta
# Pickle opcodes per image (its label, its file name, their memo entries: about 5) and for
# the rest of a member (its keys, its array's header, batches.meta entirely).
OPCODES_PER_IMAGE = 16
OPCODES_OVERHEAD = 10_000


def read_archive(path, expect_train: int = 50000, expect_test: int = 10000) -> Cifar:
    """Read and check `cifar-10-python.tar.gz`; the image counts must match the expected ones.

    Memory is bounded by the expected counts, whatever the archive claims: each member is
    read up to the size its images could take, and parsed (then dropped) as it is read."""
    path = Path(path)
    try:
        return _read_archive(path, expect_train, expect_test)
    except MemoryError as exc:
        raise UserError(f"{path}: ran out of memory reading it (a hostile archive?)") from exc


def _read_archive(path: Path, expect_train: int, expect_test: int) -> Cifar:
    where = f"{path}: {FOLDER}"
    train, test, classes = [], None, None
    for name, data in _read_members(path, _member_limits(expect_train, expect_test)):
        if name == META:
            classes = _parse_meta(data, f"{where}/{name}")
        elif name == TEST_BATCH:
            test = _parse_batch(data, f"{where}/{name}", expect_test)
        else:
            train.append(_parse_batch(data, f"{where}/{name}", expect_train))
            found = sum(len(labels) for _, labels in train)
            if found > expect_train:  # before concatenating anything
                raise UserError(f"{where}/{name}: more than the {expect_train} training images")
    _check_count(
        sum(len(labels) for _, labels in train),
        expect_train,
        f"{where}/data_batch_1..5",
        "training",
    )
    _check_count(len(test[1]), expect_test, f"{where}/{TEST_BATCH}", "test")
    return Cifar(
        train_images=_as_images(np.concatenate([images for images, _ in train])),
        train_labels=np.concatenate([labels for _, labels in train]),
        test_images=_as_images(test[0]),
        test_labels=test[1],
        classes=classes,
    )


def _member_limits(expect_train: int, expect_test: int) -> dict[str, int]:
    """The most bytes each member may hold: any one training batch could hold every training
    image, so the training batches also share one budget (`_read_members`)."""
    return {
        **dict.fromkeys(TRAIN_BATCHES, expect_train * BYTES_PER_IMAGE + MEMBER_OVERHEAD),
        TEST_BATCH: expect_test * BYTES_PER_IMAGE + MEMBER_OVERHEAD,
        META: MEMBER_OVERHEAD,
    }


def _read_members(path: Path, limits: dict[str, int]) -> Iterator[tuple[str, bytes]]:
    """Each wanted member's name and bytes, in archive order, read in one pass without
    extracting anything to disk, none larger than its limit."""
    wanted = {f"{FOLDER}/{name}": name for name in limits}
    train_budget = limits[TRAIN_BATCHES[0]] + (len(TRAIN_BATCHES) - 1) * MEMBER_OVERHEAD
    found: set[str] = set()
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                name = wanted.get(_safe_name(member.name))
                if name is None:
                    continue
                _check_member(member, name, found, limits[name], f"{path}: {member.name}")
                found.add(name)
                data = tar.extractfile(member).read(limits[name] + 1)
                if name in TRAIN_BATCHES:
                    train_budget -= len(data)
                if len(data) > limits[name] or train_budget < 0:
                    raise UserError(f"{path}: {member.name}: larger than its images could be")
                yield name, data
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise UserError(f"{path}: truncated or corrupt .tar.gz archive ({exc})") from exc
    missing = [member for member, name in wanted.items() if name not in found]
    if missing:
        raise UserError(f"{path}: missing {', '.join(missing)} (not a CIFAR-10 python archive?)")


def _check_member(member: tarfile.TarInfo, name: str, found: set, limit: int, where: str):
    if not member.isfile():
        raise UserError(f"{where}: is a link or special file, not a regular file")
    if name in found:
        raise UserError(f"{where}: appears twice in the archive")
    if member.size > limit:
        raise UserError(f"{where}: {member.size} bytes, more than its images could take")


def _safe_name(name: str) -> str | None:
    """The normalized member name, or None for absolute names and names that climb with `..`."""
    if name.startswith("/") or ".." in name.split("/"):
        return None
    return posixpath.normpath(name)


def _parse_batch(data: bytes, where: str, most_images: int) -> tuple[np.ndarray, np.ndarray]:
    """(images as (n, 3072) uint8, labels as int64) of one batch of at most `most_images`
    images, checked."""
    batch = unpickle(data, where, most_images * OPCODES_PER_IMAGE + OPCODES_OVERHEAD)
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
    try:
        labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    except OverflowError as exc:  # a label past int64, such as 2**70
        raise UserError(f"{where}: a label outside 0..{N_CLASSES - 1} ({exc})") from exc
    outside = labels[(labels < 0) | (labels >= N_CLASSES)]
    if outside.size:
        raise UserError(f"{where}: label {outside[0]} outside 0..{N_CLASSES - 1}")
    return labels


def _parse_meta(data: bytes, where: str) -> tuple[str, ...]:
    meta = unpickle(data, where, OPCODES_OVERHEAD)
    names = meta.get("label_names")
    if names is None:
        raise UserError(f"{where}: missing key 'label_names'")
    if (
        not isinstance(names, list)
        or len(names) != N_CLASSES
        or not all(isinstance(name, bytes | str) and name for name in names)
    ):
        raise UserError(f"{where}: label_names should be {N_CLASSES} names, found {names!r}")
    names = tuple(text(name) for name in names)
    if not all(name.isprintable() and len(name) <= 64 for name in names):
        raise UserError(f"{where}: label_names should be short printable names, found {names!r}")
    return names


def _check_count(found: int, expected: int, where: str, split: str) -> None:
    if found == 0:
        raise UserError(f"{where}: {split} set is empty")
    if found != expected:
        raise UserError(f"{where}: expected {expected} {split} images, found {found}")


def _as_images(rows: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(rows.reshape(-1, *IMAGE_SHAPE))
