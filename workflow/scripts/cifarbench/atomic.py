"""Write every output whole or not at all: write beside the target, then rename into place."""

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from cifarbench.errors import UserError
from cifarbench.units import MB

FREE_MARGIN_BYTES = 64 * MB  # keep some room: a disk filled to the last byte breaks other jobs


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it to `target` only on success.

    A crash, an exception or a kill before the rename leaves the target untouched: a stale
    temporary file at worst, named `.<target>.<random>.tmp`, which the next write of the same
    target removes (Snakemake never runs two jobs for one output). The file gets the mode the
    umask gives new files, not mkstemp's owner-only 0600.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(f".{target.name}.*.tmp"):
        stale.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _umask() -> int:
    """The process's umask (reading it means setting it: set it straight back)."""
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def write_json(target: str | os.PathLike, data: object) -> None:
    """Write `data` as indented JSON, atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n")


def free_bytes(folder: Path) -> int:
    """Free space in `folder`; a module function so that tests can pretend the disk is full."""
    return shutil.disk_usage(folder).free


def check_free_space(folder: str | os.PathLike, size: int, purpose: str) -> None:
    """Fail before writing `size` bytes into `folder` when they would not fit (with a margin)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    free, needed = free_bytes(folder), size + FREE_MARGIN_BYTES
    if free < needed:
        raise UserError(
            f"{folder}: not enough free space to {purpose}: "
            f"need {needed / MB:.0f} MB, {free / MB:.0f} MB free"
        )
