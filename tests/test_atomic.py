"""Outputs are written whole or not at all, with the mode the umask gives, and a killed run's
temporary files are cleaned up by the next write."""

import errno
import os
import re
import stat
import tempfile

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from cifarbench import atomic, figure_style, table
from cifarbench.atomic import atomic_path, clear_the_way, write_json
from cifarbench.cache import Cifar, save_cache
from cifarbench.errors import UserError


@pytest.fixture
def umask_022():
    before = os.umask(0o022)
    yield
    os.umask(before)


def test_an_output_gets_the_umasks_mode_not_owner_only(tmp_path, umask_022):
    target = tmp_path / "results" / "cpu.json"
    write_json(target, {"a": 1})
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_a_failed_write_leaves_neither_target_nor_temporary_file(tmp_path):
    target = tmp_path / "cpu.json"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_a_killed_runs_temporary_file_is_removed_by_the_next_write(tmp_path):
    stale = tmp_path / ".cifar-10-python.tar.gz.abc123.tmp"  # what SIGKILL left behind
    stale.write_bytes(b"x" * 1000)
    other = tmp_path / ".other.tar.gz.abc123.tmp"  # another target's: not ours to remove
    other.write_bytes(b"y")
    with atomic_path(tmp_path / "cifar-10-python.tar.gz") as tmp:
        tmp.write_bytes(b"archive")
    assert not stale.exists() and other.exists()
    assert (tmp_path / "cifar-10-python.tar.gz").read_bytes() == b"archive"


@pytest.fixture
def full_disk(monkeypatch):
    """Every temporary file atomic_path makes is /dev/full, where every write fails with
    ENOSPC, as on a full disk."""
    real_mkstemp = tempfile.mkstemp

    def on_a_full_disk(prefix, suffix, dir):
        fd, name = real_mkstemp(prefix=prefix, suffix=suffix, dir=dir)
        os.close(fd)
        os.unlink(name)
        os.symlink("/dev/full", name)
        return os.open(name, os.O_WRONLY), name

    def chmod(path, mode):  # a write that succeeded would chmod the device itself
        raise AssertionError(f"{path} was written on a full disk")

    monkeypatch.setattr(atomic.tempfile, "mkstemp", on_a_full_disk)
    monkeypatch.setattr(atomic.os, "chmod", chmod)


def _figure(path):
    figure, axis = plt.subplots()
    axis.plot([0, 1], [1, 0])
    figure_style.save(figure, path)


def _cache(path):
    images = np.zeros((2, 3, 32, 32), dtype=np.uint8)
    labels = np.zeros(2, dtype=np.int64)
    save_cache(Cifar(images, labels, images, labels, tuple("abcdefghij")), path)


WRITERS = {
    "training record": lambda path: write_json(path, {"loss": [1.5] * 1000}),
    "figure": _figure,
    "csv": lambda path: table.write_csv(pd.DataFrame({"a": range(1000)}), str(path)),
    "cache": _cache,
}


@pytest.mark.parametrize("writer", list(WRITERS))
def test_a_full_disk_is_one_line_naming_the_output_and_the_space_left(tmp_path, full_disk, writer):
    target = tmp_path / "results" / "out"
    with pytest.raises(UserError) as error:
        WRITERS[writer](target)
    assert re.fullmatch(
        rf"{re.escape(str(target))}: the disk filled while writing it \(\d+ MB free in "
        rf"{re.escape(str(target.parent))}\); nothing was kept: free some space and rerun",
        str(error.value),
    )
    assert list(target.parent.iterdir()) == []


def test_other_write_errors_are_not_called_a_full_disk(tmp_path):
    with pytest.raises(PermissionError), atomic_path(tmp_path / "out") as tmp:
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp))


def test_a_link_where_snakemake_will_write_is_removed_not_followed(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    planted = tmp_path / "benchmarks" / "seed0.tsv"
    planted.parent.mkdir()
    planted.symlink_to(victim)
    clear_the_way(planted)
    assert not planted.exists() and not planted.is_symlink()
    assert victim.read_text() == "precious"
    planted.write_text("an earlier benchmark")  # a file is Snakemake's to replace
    clear_the_way(planted)
    assert planted.read_text() == "an earlier benchmark"
    clear_the_way(tmp_path / "benchmarks" / "seed1.tsv")  # nothing there: nothing to do


def test_a_folder_where_snakemake_will_write_is_refused(tmp_path):
    (tmp_path / "seed0.tsv").mkdir()
    with pytest.raises(UserError, match=r"seed0.tsv: not a file \(a folder\?\); remove it"):
        clear_the_way(tmp_path / "seed0.tsv")
