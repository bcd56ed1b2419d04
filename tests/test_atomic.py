"""Outputs are written whole or not at all, with the mode the umask gives, and a killed run's
temporary files are cleaned up by the next write."""

import os
import stat

import pytest

from cifarbench.atomic import atomic_path, write_json


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
