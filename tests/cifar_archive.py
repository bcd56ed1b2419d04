"""Write tiny CIFAR-10 archives in the official layout and encoding, whole or broken on purpose.

The official `cifar-10-python.tar.gz` holds `cifar-10-batches-py/{data_batch_1..5, test_batch,
batches.meta, readme.html}`, each batch a Python 2 (cPickle, protocol 2) pickle of a dict with
bytes keys. Python 2 `str` objects are written as BINSTRING, so they load as bytes; numpy's
globals are named under `numpy.core`. `Py2Pickler` reproduces that encoding.

The images are learnable: each class has its own colour and stripe pattern under a little
noise, so a tiny CNN learns them in one epoch on a few hundred images.
"""

import gzip
import hashlib
import io
import os
import pickle
import struct
import tarfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

FOLDER = "cifar-10-batches-py"
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
# One colour per class (RGB), far apart so that colour alone tells the classes apart.
PALETTE = np.array(
    [
        [230, 40, 40],
        [40, 200, 40],
        [40, 60, 230],
        [230, 230, 40],
        [230, 40, 230],
        [40, 230, 230],
        [250, 150, 40],
        [130, 40, 200],
        [140, 140, 140],
        [30, 30, 30],
    ],
    dtype=np.float32,
)
MTIME = 1244073600  # 2009-06-04, the official archive's era; fixed so the md5 is too


class Py2Pickler(pickle._Pickler):
    """Pickles like Python 2's cPickle: str and bytes as BINSTRING, numpy globals in numpy.core."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_binstring(self, obj):
        data = obj.encode("latin-1") if isinstance(obj, str) else obj
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[bytes] = save_binstring
    dispatch[str] = save_binstring

    def save_global(self, obj, name=None):
        module = obj.__module__.replace("numpy._core", "numpy.core")
        name = name or obj.__qualname__
        self.write(pickle.GLOBAL + f"{module}\n{name}\n".encode())
        self.memoize(obj)

    dispatch[type(len)] = save_global  # numpy's _reconstruct is a builtin function


def py2_pickle(obj) -> bytes:
    out = io.BytesIO()
    Py2Pickler(out, protocol=2).dump(obj)
    return out.getvalue()


def make_images(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(n, 3072) uint8 rows: the class colour, class stripes (period and direction), noise."""
    period = 2 + np.arange(10) // 2  # stripes 2..6 pixels apart
    horizontal = np.arange(10) % 2 == 0
    rows, cols = np.mgrid[0:32, 0:32]
    images = np.empty((len(labels), 3, 32, 32), dtype=np.float32)
    for i, label in enumerate(labels):
        along = rows if horizontal[label] else cols
        stripes = (along // period[label]) % 2  # 0 or 1
        images[i] = PALETTE[label][:, None, None] * (0.6 + 0.4 * stripes)
    images += rng.normal(0, 12, images.shape)
    return np.clip(images, 0, 255).astype(np.uint8).reshape(len(labels), 3 * 32 * 32)


def make_split(per_class: int, rng: np.random.Generator) -> tuple[np.ndarray, list[int]]:
    labels = rng.permutation(np.repeat(np.arange(10), per_class))
    return make_images(labels, rng), [int(label) for label in labels]


def batch_dicts(train_per_class: int, test_per_class: int, seed: int) -> dict[str, dict]:
    """The unpickled content of every member, keyed by member name (without the folder)."""
    rng = np.random.default_rng(seed)
    train_images, train_labels = make_split(train_per_class, rng)
    test_images, test_labels = make_split(test_per_class, rng)
    bounds = np.linspace(0, len(train_labels), 6).astype(int)
    members = {}
    for b in range(5):
        part = slice(bounds[b], bounds[b + 1])
        members[f"data_batch_{b + 1}"] = _batch(
            f"training batch {b + 1} of 5", train_images[part], train_labels[part]
        )
    members["test_batch"] = _batch("testing batch 1 of 1", test_images, test_labels)
    members["batches.meta"] = {
        b"num_cases_per_batch": int(bounds[1]),
        b"label_names": [name.encode() for name in CLASSES],
        b"num_vis": 3072,
    }
    return members


def _batch(batch_label: str, images: np.ndarray, labels: list[int]) -> dict:
    return {
        b"batch_label": batch_label.encode(),
        b"labels": labels,
        b"data": np.ascontiguousarray(images),
        b"filenames": [f"img_{i:05d}.png".encode() for i in range(len(labels))],
    }


def write_cifar_archive(
    out_dir: Path,
    train_per_class: int = 10,
    test_per_class: int = 2,
    *,
    seed: int = 0,
    corrupt: dict | None = None,
) -> tuple[Path, str]:
    """Write `out_dir/cifar-10-python.tar.gz`; return (its path, its md5).

    `corrupt` breaks the archive for tests; every key is optional:
      "edit":     {member: function(dict) -> object}: replaces what gets pickled
      "payload":  {member: bytes}: stored instead of the member's pickle (hostile, garbage)
      "drop":     [member, ...]: left out
      "links":    {member: tarfile.SYMTYPE or LNKTYPE}: stored as a link to test_batch
      "extra":    {full tar name: bytes}: added as regular files under exactly these names
      "truncate": fraction of the finished .tar.gz to keep
    Members are named without the folder ("data_batch_3", "batches.meta").
    """
    corrupt = corrupt or {}
    contents = batch_dicts(train_per_class, test_per_class, seed)
    for member, edit in corrupt.get("edit", {}).items():
        contents[member] = edit(contents[member])
    files = {member: py2_pickle(content) for member, content in contents.items()}
    files |= corrupt.get("payload", {})
    files["readme.html"] = b"<html>tiny CIFAR-10 for tests</html>\n"
    for member in corrupt.get("drop", ()):
        del files[member]

    out_dir.mkdir(parents=True, exist_ok=True)
    archive = out_dir / "cifar-10-python.tar.gz"
    with (
        open(archive, "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.USTAR_FORMAT) as tar,
    ):
        tar.addfile(_info(FOLDER, tarfile.DIRTYPE))
        links = corrupt.get("links", {})
        for member, data in sorted(files.items()):
            if member in links:
                tar.addfile(_link(f"{FOLDER}/{member}", links[member]))
            else:
                tar.addfile(_info(f"{FOLDER}/{member}", size=len(data)), io.BytesIO(data))
        for name, data in corrupt.get("extra", {}).items():
            tar.addfile(_info(name, size=len(data)), io.BytesIO(data))
    if "truncate" in corrupt:
        data = archive.read_bytes()
        archive.write_bytes(data[: int(len(data) * corrupt["truncate"])])
    return archive, hashlib.md5(archive.read_bytes()).hexdigest()


def _info(name: str, kind: bytes = tarfile.REGTYPE, size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.size, info.mtime = kind, size, MTIME
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    return info


def _link(name: str, kind: bytes) -> tarfile.TarInfo:
    """A link to the archive's test_batch (symlinks point relative, hard links by tar name)."""
    info = _info(name, kind)
    info.linkname = "test_batch" if kind == tarfile.SYMTYPE else f"{FOLDER}/test_batch"
    return info


def hostile_pickle(marker: Path, how: str = "open") -> bytes:
    """A protocol-2 pickle of a batch-like dict that creates `marker` when unpickled.

    how: "open" calls builtins.open(marker, "w"); "system" runs os.system("touch marker").
    """
    call: tuple[Callable, tuple] = (
        (open, (str(marker), "w")) if how == "open" else (os.system, (f"touch '{marker}'",))
    )

    class Payload:
        def __reduce__(self):
            return call

    return pickle.dumps({b"data": Payload(), b"labels": [0]}, protocol=2)
