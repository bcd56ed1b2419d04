"""Write every output whole or not at all: write beside the target, then rename into place."""

import contextlib
import errno
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from cifarbench.errors import UserError
from cifarbench.units import MB

log = logging.getLogger("cifarbench.atomic")

FREE_MARGIN_BYTES = 64 * MB  # keep some room: a disk filled to the last byte breaks other jobs
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)  # a full disk, a full quota


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it to `target` only on success.

    A crash, an exception or a kill before the rename leaves the target untouched: a stale
    temporary file at worst, named `.<target>.<random>.tmp`, which the next write of the same
    target removes (Snakemake never runs two jobs for one output). The file gets the mode the
    umask gives new files, not mkstemp's owner-only 0600.
    """
    target = Path(target)
    with _one_line_when_full(target):
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
            tmp.unlink(missing_ok=True)  # before the free space is reported: it is free again


@contextlib.contextmanager
def _one_line_when_full(target: Path) -> Iterator[None]:
    """A disk (or quota) that fills while an output is written: one line naming the output
    and the space left, not the writer's traceback (numpy's, matplotlib's, json's)."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in NO_SPACE:
            raise
        raise UserError(
            f"{target}: the disk filled while writing it ({_free_mb(target.parent)} free in "
            f"{target.parent}); nothing was kept: free some space and rerun"
        ) from exc


def _free_mb(folder: Path) -> str:
    try:
        return f"{free_bytes(folder) / MB:.0f} MB"
    except OSError:
        return "unknown space"


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


def clear_the_way(path: str | os.PathLike) -> None:
    """Make `path` safe for a writer that follows links: Snakemake writes a job's benchmark
    file itself, after the job, with a plain open(); a symbolic link planted at that path
    would have it write wherever the link points. The link is removed (what it points to is
    left alone); a folder there is refused, before the job's work rather than after."""
    path = Path(path)
    if path.is_symlink():
        log.warning("%s: removed a symbolic link to %s planted there", path, os.readlink(path))
        path.unlink()
    elif path.exists() and not path.is_file():
        raise UserError(f"{path}: not a file (a folder?); remove it, then rerun")
