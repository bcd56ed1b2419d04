"""Read the official CIFAR-10 python archive safely, and keep it as one compact uint8 cache.

The archive is untrusted input (any URL and md5 can be configured), and its batches are
pickles: they are unpickled with a whitelist of the few numpy globals a CIFAR batch needs,
read straight from the tarfile (nothing is extracted), and checked field by field, so a bad
archive ends in a one-line `UserError` naming the member and what is wrong with it.
"""

import gzip
import posixpath
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np

from cifarbench.cache import IMAGE_SHAPE, N_CLASSES, Cifar
from cifarbench.errors import UserError, brief
from cifarbench.safe_pickle import Member, StreamError, text, unpickle
from cifarbench.units import MB

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
# The official archive has 8 entries (its folder, 7 files); a re-packed one a few more.
MAX_ENTRIES = 1000
# Extended headers (pax, GNU long names), in all: the official archive has none; a re-pack
# by bsdtar has a few hundred bytes per member (times, extended attributes).
MAX_EXTENDED_HEADER_BYTES = 1 << 20
# Members that are not batches, in all: skipped, but decompressed on the way.
MAX_SKIPPED_BYTES = 64 << 20
EXTENDED_HEADERS = (
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    tarfile.SOLARIS_XHDTYPE,
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
)


def read_archive(path, expect_train: int = 50000, expect_test: int = 10000) -> Cifar:
    """Read and check `cifar-10-python.tar.gz`; the image counts must match the expected ones.

    Memory and time are bounded by the expected counts, whatever the archive claims: each
    member may hold only as many bytes as its images could take, and is unpickled as it is
    read from the archive, never held whole; the walk through the archive has caps of its
    own (`_members`)."""
    path = Path(path)
    try:
        return _read_archive(path, expect_train, expect_test)
    except StreamError as exc:  # the archive failed under a member being unpickled
        raise _corrupt(path, exc) from exc
    except MemoryError as exc:
        raise UserError(f"{path}: ran out of memory reading it (a hostile archive?)") from exc


def _read_archive(path: Path, expect_train: int, expect_test: int) -> Cifar:
    where = f"{path}: {FOLDER}"
    train, test, classes = [], None, None
    for name, member in _read_members(path, _member_limits(expect_train, expect_test)):
        if name == META:
            classes = _parse_meta(member, f"{where}/{name}")
        elif name == TEST_BATCH:
            test = _parse_batch(member, f"{where}/{name}", expect_test)
        else:
            train.append(_parse_batch(member, f"{where}/{name}", expect_train))
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


def _read_members(path: Path, limits: dict[str, int]) -> Iterator[tuple[str, "Member"]]:
    """Each wanted member's name and where to read it, in archive order, in one pass without
    extracting anything to disk, none larger than its limit."""
    wanted = {f"{FOLDER}/{name}": name for name in limits}
    train_budget = limits[TRAIN_BATCHES[0]] + (len(TRAIN_BATCHES) - 1) * MEMBER_OVERHEAD
    found: set[str] = set()
    try:
        with gzip.open(path, "rb") as stream:
            for member in _members(stream, str(path), wanted):
                name = wanted[_safe_name(member.name)]
                _check_member(member, name, found, limits[name], f"{path}: {member.name}")
                found.add(name)
                if name in TRAIN_BATCHES:
                    train_budget -= member.size
                if train_budget < 0:
                    raise UserError(f"{path}: {member.name}: larger than its images could be")
                yield name, Member(stream, member.size)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise _corrupt(path, exc) from exc
    missing = [member for member, name in wanted.items() if name not in found]
    if missing:
        raise UserError(f"{path}: missing {', '.join(missing)} (not a CIFAR-10 python archive?)")


def _corrupt(path: Path, exc: Exception) -> UserError:
    return UserError(f"{path}: truncated or corrupt .tar.gz archive ({exc})")


def _members(stream: BinaryIO, where: str, wanted: dict) -> Iterator[tarfile.TarInfo]:
    """The headers of the members named in `wanted`, read one at a time from the tar stream
    and none kept; the others are skipped. Whatever the caller reads of a member, the walk
    goes on from the member's end.

    Python's `tarfile` reads every extended header whole before anything can check it (a pax
    comment or a GNU long name of any size) and keeps every member's header (a million empty
    members cost minutes and hundreds of MB): here the entries, their extended headers and
    the members skipped each have a cap, so a hostile archive costs bounded memory and time."""
    budget = _WalkBudget(where)
    for _ in range(MAX_ENTRIES):
        member = _next_member(stream, budget)
        if member is None:
            return
        end = stream.tell() + _padded(member.size)
        if _safe_name(member.name) in wanted:
            yield member
        else:
            budget.skip(member)
        _seek_forward(stream, end)
    raise UserError(f"{where}: more than {MAX_ENTRIES} entries (not a CIFAR-10 python archive)")


def _next_member(stream: BinaryIO, budget: "_WalkBudget") -> tarfile.TarInfo | None:
    """The next file, folder or link, its name and size as its extended headers give them;
    None at the end of the archive."""
    overrides: dict[str, str] = {}
    while True:
        block = stream.read(tarfile.BLOCKSIZE)
        if not block and stream.tell() == 0:
            raise EOFError("an empty file")
        if not block or block == bytes(tarfile.BLOCKSIZE):
            return None  # the end-of-archive marker, or the end of the stream
        header = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
        if header.type not in EXTENDED_HEADERS:
            return _overridden(header, overrides)
        budget.extended(header)
        overrides.update(_extended_fields(header, _read_exactly(stream, header.size)))
        _seek_forward(stream, stream.tell() + _padded(header.size) - header.size)


def _extended_fields(header: tarfile.TarInfo, data: bytes) -> dict[str, str]:
    """The fields of an extended header that say where the next member's name and data are:
    a GNU long name, or a pax header's `path` and `size` (a global pax header says nothing
    about one member, and the other fields describe owners, times, attributes)."""
    if header.type == tarfile.GNUTYPE_LONGNAME:
        return {"path": data.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")}
    if header.type == tarfile.XHDTYPE:
        fields = _pax_records(data)
        return {key: fields[key] for key in ("path", "size") if key in fields}
    return {}


def _pax_records(data: bytes) -> dict[str, str]:
    """A pax header's records, each `<length> <key>=<value>` and a newline."""
    fields, start = {}, 0
    while start < len(data) and data[start] != 0:  # NUL padding may follow the records
        space = data.find(b" ", start, start + 20)
        end = start + int(data[start:space]) if data[start:space].isdigit() else -1
        record = data[space + 1 : end]
        if space < 0 or end <= space or not record.endswith(b"\n") or b"=" not in record:
            raise tarfile.HeaderError(f"malformed pax header record at byte {start}")
        key, value = record[:-1].split(b"=", 1)
        fields[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        start = end
    return fields


def _overridden(member: tarfile.TarInfo, overrides: dict[str, str]) -> tarfile.TarInfo:
    if "path" in overrides:
        member.name = overrides["path"]
    if "size" in overrides:
        if not overrides["size"].isdigit():
            raise tarfile.HeaderError(f"{member.name}: pax size {overrides['size']!r}")
        member.size = int(overrides["size"])
    return member


class _WalkBudget:
    """What a walk may spend besides the members it reads, each in all: extended headers and
    the members it skips (the official archive has no extended header, and skips one
    88-byte member, readme.html)."""

    def __init__(self, where: str):
        self.where = where
        self.header_bytes = MAX_EXTENDED_HEADER_BYTES
        self.skipped_bytes = MAX_SKIPPED_BYTES

    def extended(self, header: tarfile.TarInfo) -> None:
        self.header_bytes -= header.size
        if self.header_bytes < 0:
            raise UserError(
                f"{self.where}: extended (pax or long-name) headers of more than "
                f"{MAX_EXTENDED_HEADER_BYTES / MB:.0f} MB in all (a hostile archive?)"
            )

    def skip(self, member: tarfile.TarInfo) -> None:
        self.skipped_bytes -= member.size
        if self.skipped_bytes < 0:
            raise UserError(
                f"{self.where}: {member.name}: more than {MAX_SKIPPED_BYTES / MB:.0f} MB in "
                "members that are not CIFAR-10 batches (not a CIFAR-10 python archive?)"
            )


def _padded(size: int) -> int:
    """A member's data in the archive: its size, rounded up to whole tar blocks."""
    return -(-size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE


def _read_exactly(stream: BinaryIO, size: int) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise EOFError(f"unexpected end of data ({size - len(data)} bytes missing)")
    return data


def _seek_forward(stream: BinaryIO, offset: int) -> None:
    """Skip to `offset` (a gzip stream decompresses what it skips)."""
    if stream.seek(offset) != offset or stream.tell() != offset:
        raise EOFError("unexpected end of data")


def _check_member(member: tarfile.TarInfo, name: str, found: set, limit: int, where: str):
    if member.type not in (tarfile.REGTYPE, tarfile.AREGTYPE):
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


def _parse_batch(member: Member, where: str, most_images: int) -> tuple[np.ndarray, np.ndarray]:
    """(images as (n, 3072) uint8, labels as int64) of one batch of at most `most_images`
    images, checked."""
    batch = unpickle(member, where, most_images * OPCODES_PER_IMAGE + OPCODES_OVERHEAD)
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
    """A batch's labels, a list of ints (the official files) or a 1-d integer array."""
    if isinstance(labels, np.ndarray):
        integers = labels.ndim == 1 and labels.dtype.kind in "iu"
    else:
        integers = isinstance(labels, list) and all(
            isinstance(label, int) and not isinstance(label, bool) for label in labels
        )
    if not integers:
        raise UserError(f"{where}: labels should be a list of integers, found {brief(labels)}")
    try:
        labels = np.asarray(labels, dtype=np.int64)
    except OverflowError as exc:  # a label past int64, such as 2**70
        raise UserError(f"{where}: a label outside 0..{N_CLASSES - 1} ({exc})") from exc
    outside = labels[(labels < 0) | (labels >= N_CLASSES)]
    if outside.size:
        raise UserError(f"{where}: label {outside[0]} outside 0..{N_CLASSES - 1}")
    return labels


def _parse_meta(member: Member, where: str) -> tuple[str, ...]:
    meta = unpickle(member, where, OPCODES_OVERHEAD)
    names = meta.get("label_names")
    if names is None:
        raise UserError(f"{where}: missing key 'label_names'")
    if not isinstance(names, list) or len(names) != N_CLASSES:
        raise UserError(f"{where}: label_names should be {N_CLASSES} names, found {brief(names)}")
    for index, name in enumerate(names):
        if not isinstance(name, bytes | str) or not name:
            raise UserError(f"{where}: label_names[{index}] should be a name, found {brief(name)}")
    names = tuple(text(name) for name in names)
    for index, name in enumerate(names):
        if not name.isprintable() or len(name) > 64:
            raise UserError(
                f"{where}: label_names[{index}] should be a short printable name, "
                f"found {brief(name)}"
            )
    return names


def _check_count(found: int, expected: int, where: str, split: str) -> None:
    if found == 0:
        raise UserError(f"{where}: {split} set is empty")
    if found != expected:
        raise UserError(f"{where}: expected {expected} {split} images, found {found}")


def _as_images(rows: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(rows.reshape(-1, *IMAGE_SHAPE))
