"""Shared fixtures; test data is built at run time (tiny CIFAR-10 archives, official format)."""

import os
from pathlib import Path

import pytest

from cifar_archive import write_cifar_archive
from cifarbench.archive import Cifar, read_archive

# Where SLURM's client tools are installed (CI), the SLURM executor plugin asks `scontrol show
# config` each time Snakemake starts, which waits up to 10 s when no controller answers. Only the
# SLURM test starts a cluster, and it points its commands at that cluster's config; every other
# test's SLURM client reads this empty config and gives up at once.
os.environ["SLURM_CONF"] = os.devnull


@pytest.fixture
def tiny_archive(tmp_path: Path) -> tuple[Path, str]:
    """(path, md5) of a 200-train / 50-test image archive in the official layout and encoding."""
    return write_cifar_archive(tmp_path / "tiny", train_per_class=20, test_per_class=5)


@pytest.fixture(scope="session")
def learnable(tmp_path_factory) -> Cifar:
    """A small archive, read, whose classes a CNN can tell apart in a few epochs."""
    archive, _ = write_cifar_archive(tmp_path_factory.mktemp("learnable"), 40, 10)
    return read_archive(archive, expect_train=400, expect_test=100)
